//! The Transformer sentiment classifier shared by `text_classification --model transformer`
//! (which trains it) and `explain` (which shows where it looks).
//!
//! `Embedding(vocab, 64)·√64 + sinusoidal positions → TransformerEncoder (2 pre-norm layers, 4
//! heads, feed-forward 128, GELU, dropout 0.1) → attention pooling → Dense(1, sigmoid)`. The
//! padding ids (0) are masked out of every attention (`src_key_padding_mask`). Attention pooling
//! is one learned query attending over the encoded tokens: its attention weights say how much
//! each token contributes to the sentence's vector, which `explain` prints as an attention map.

use tensorgrad::Tensor;
use tensorgrad::nn::Embedding;
use tensorgrad::nn::{
    Activation, Dense, EncoderArgs, Init, MhaArgs, MhaMask, Module, MultiheadAttention, MultiheadAttentionConfig,
    Param, SinusoidalPositionalEncoding, TransformerActivation, TransformerEncoder, TransformerEncoderLayer,
    TransformerLayerConfig, param_name,
};
use tensorgrad::rand::rngs::StdRng;

/// The model size.
pub const D_MODEL: usize = 64;
const HEADS: usize = 4;
const LAYERS: usize = 2;

/// The classifier (see the module documentation).
pub struct TransformerClassifier {
    embedding: Embedding,
    positions: SinusoidalPositionalEncoding,
    encoder: TransformerEncoder,
    /// The pooling query `[1, 1, D]`.
    query: Param<f32>,
    pool: MultiheadAttention,
    dense: Dense,
}

impl TransformerClassifier {
    /// A fresh model for ids below `vocab` and sequences of at most `max_len` tokens.
    pub fn new(vocab: usize, max_len: usize, seed: u64, rng: &mut StdRng) -> Self {
        let layer = TransformerLayerConfig {
            dim_feedforward: 2 * D_MODEL,
            activation: TransformerActivation::Gelu,
            batch_first: true,
            norm_first: true,
            seed,
            ..TransformerLayerConfig::new(D_MODEL, HEADS)
        };
        let pool = MultiheadAttentionConfig { batch_first: true, ..MultiheadAttentionConfig::new(D_MODEL, HEADS) };
        TransformerClassifier {
            embedding: Embedding::new(vocab, D_MODEL, &mut *rng),
            positions: SinusoidalPositionalEncoding::new(max_len, D_MODEL).batch_first(true),
            encoder: TransformerEncoder::new(TransformerEncoderLayer::new(layer, &mut *rng), LAYERS, None),
            query: Param::new(Init::Normal(0.0, 0.02).tensor(&[1, 1, D_MODEL], &mut *rng)),
            pool: MultiheadAttention::new(pool, &mut *rng),
            dense: Dense::new(D_MODEL, 1, Some(Activation::Sigmoid), &mut *rng),
        }
    }

    /// The probability of "positive" `[B, 1]` for padded ids `[B, T]` (as floats), and the
    /// pooling weights `[B, T]` when `weights` is set.
    pub fn run(&self, ids: &Tensor, weights: bool) -> (Tensor, Option<Tensor>) {
        let (b, t) = (ids.shape()[0], ids.shape()[1]);
        // 1 where the id is padding: MultiheadAttention's convention (1 = may not attend).
        let pad: Vec<f32> = ids.to_vec().iter().map(|&id| if id == 0.0 { 1.0 } else { 0.0 }).collect();
        let pad = Tensor::from_vec(pad, &[b, t]);
        let x = self.embedding.forward(ids).mul_scalar((D_MODEL as f32).sqrt());
        let x = self.positions.forward(&x);
        let padding = Some(MhaMask::Blocked(&pad));
        let h = self.encoder.forward_with(&x, EncoderArgs { src_key_padding_mask: padding, ..Default::default() });
        let q = self.query.tensor().broadcast_to(&[b, 1, D_MODEL]);
        let (pooled, w) = self.pool.forward_with(
            &q,
            &h,
            &h,
            MhaArgs { key_padding_mask: padding, need_weights: weights, ..Default::default() },
        );
        let p = self.dense.forward(&pooled.reshape(&[b, D_MODEL]));
        (p, w.map(|w| w.reshape(&[b, t])))
    }
}

impl Module<f32> for TransformerClassifier {
    fn forward(&self, ids: &Tensor) -> Tensor {
        self.run(ids, false).0
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<f32>)) {
        self.embedding.visit_params(&param_name(prefix, "embedding"), f);
        self.encoder.visit_params(&param_name(prefix, "encoder"), f);
        f(param_name(prefix, "pool_query"), &self.query);
        self.pool.visit_params(&param_name(prefix, "pool"), f);
        self.dense.visit_params(&param_name(prefix, "dense"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.encoder.set_training(training);
        self.pool.set_training(training);
    }

    fn reseed(&mut self, seed: u64) {
        self.encoder.reseed(seed);
        self.pool.reseed(seed);
    }

    fn describe(&self) -> String {
        format!(
            "TransformerClassifier(embedding {}, {LAYERS} pre-norm layers of {HEADS} heads, attention pooling, dense sigmoid)",
            D_MODEL
        )
    }
}
