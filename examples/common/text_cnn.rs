//! The convolutional sentence classifier (Kim, 2014) trained by `text_classification --model cnn`
//! and by `text_cnn`.
//!
//! `Embedding(vocab, 128) → Conv1d(128, 100, k) + ReLU for k = 3, 4, 5 → max over time → concat
//! (300) → Dropout(0.5) → Dense(1, sigmoid)`. The ids `[N, T]` are embedded to `[N, T, 128]`
//! and transposed to PyTorch's `[N, channels, length]` layout for the convolutions; each filter
//! keeps its largest response anywhere in the snippet.

use tensorgrad::Tensor;
use tensorgrad::nn::{Activation, Conv1d, Dense, Dropout, Embedding, Module, Param, param_name};
use tensorgrad::rand::rngs::StdRng;

/// The embedding size, the filters per width and the widths.
const EMBED: usize = 128;
const FILTERS: usize = 100;
const WIDTHS: [usize; 3] = [3, 4, 5];

/// The classifier (see the module documentation).
pub struct CnnClassifier {
    embedding: Embedding,
    convs: Vec<Conv1d>,
    dropout: Dropout,
    dense: Dense,
}

impl CnnClassifier {
    /// A fresh model for ids below `vocab`; `seed` seeds the dropout masks.
    pub fn new(vocab: usize, seed: u64, rng: &mut StdRng) -> Self {
        CnnClassifier {
            embedding: Embedding::new(vocab, EMBED, &mut *rng),
            convs: WIDTHS.iter().map(|&k| Conv1d::new(EMBED, FILTERS, [k], &mut *rng)).collect(),
            dropout: Dropout::new(0.5, seed),
            dense: Dense::new(FILTERS * WIDTHS.len(), 1, Some(Activation::Sigmoid), &mut *rng),
        }
    }
}

impl Module for CnnClassifier {
    /// Padded ids `[N, T]` (T ≥ 5) → probabilities `[N, 1]`.
    fn forward(&self, ids: &Tensor) -> Tensor {
        let x = self.embedding.forward(ids).transpose(1, 2); // [N, 128, T]
        let pooled: Vec<Tensor> = self.convs.iter().map(|c| c.forward(&x).relu().max_dim(2, false).0).collect();
        self.dense.forward(&self.dropout.forward(&Tensor::cat(&pooled, 1)))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<f32>)) {
        self.embedding.visit_params(&param_name(prefix, "embedding"), f);
        for (i, c) in self.convs.iter().enumerate() {
            c.visit_params(&param_name(prefix, &format!("convs.{i}")), f);
        }
        self.dense.visit_params(&param_name(prefix, "dense"), f);
    }

    fn set_training(&mut self, training: bool) {
        Module::<f32>::set_training(&mut self.dropout, training);
    }

    fn reseed(&mut self, seed: u64) {
        Module::<f32>::reseed(&mut self.dropout, seed);
    }

    fn describe(&self) -> String {
        format!(
            "Embedding({}, {EMBED}) → Conv1d({EMBED}, {FILTERS}, k) + ReLU for k in {WIDTHS:?} → max over time → \
             Dropout(0.5) → Dense(1, sigmoid)",
            self.embedding.num_embeddings()
        )
    }
}
