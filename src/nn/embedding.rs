//! `Embedding`: a lookup table of vectors indexed by token id.

use crate::RngSource;

use super::init::Init;
use super::module::{Mask, Module, Param, join};
use crate::{Element, Tensor};

/// A table of `num_embeddings` vectors of size `embedding_dim`; the input holds ids.
///
/// # Shapes
/// - input: ids of any shape `[…]`, stored as whole numbers in a float tensor
/// - output: `[…, embedding_dim]`
/// - `weight`: `[num_embeddings, embedding_dim]`, initialised `N(0, 1)` as in PyTorch.
///
/// Options: a padding id whose row starts at zero and never receives a gradient
/// (PyTorch's `padding_idx`), and `mask_zero` (Keras): id 0 is padding, and
/// [`forward_masked`](Module::forward_masked) emits a [`Mask`] that a following `Lstm` uses to
/// skip the padded steps.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::{Tensor, nn::{Embedding, Module}};
/// let mut rng = StdRng::seed_from_u64(0);
/// let emb = Embedding::new(10, 4, &mut rng);
/// let ids = Tensor::from_vec(vec![1.0f32, 5.0, 9.0, 0.0], &[2, 2]);
/// assert_eq!(emb.forward(&ids).shape(), &[2, 2, 4]);
/// ```
#[derive(Clone, Debug)]
pub struct Embedding<E: Element = f32> {
    weight: Param<E>,
    padding_idx: Option<usize>,
    mask_zero: bool,
}

impl<E: Element> Embedding<E> {
    /// A table with PyTorch's initialisation, `N(0, 1)`.
    pub fn new(num_embeddings: usize, embedding_dim: usize, rng: impl RngSource) -> Self {
        Self::with_init(num_embeddings, embedding_dim, Init::Normal(0.0, 1.0), rng)
    }

    /// A table with the given initialiser (Keras uses `Init::Uniform(-0.05, 0.05)`).
    #[track_caller]
    pub fn with_init(num_embeddings: usize, embedding_dim: usize, init: Init, rng: impl RngSource) -> Self {
        let mut rng = rng.into_rng();
        if num_embeddings == 0 || embedding_dim == 0 {
            panic!(
                "Embedding: needs a vocabulary and a dimension of at least 1, got {num_embeddings} × {embedding_dim}"
            );
        }
        Embedding {
            weight: Param::new(init.tensor(&[num_embeddings, embedding_dim], &mut rng)),
            padding_idx: None,
            mask_zero: false,
        }
    }

    /// A table over a given `[num_embeddings, embedding_dim]` tensor, e.g. pretrained word
    /// vectors (PyTorch's `Embedding.from_pretrained` with `freeze=False`).
    ///
    /// ```
    /// use tensorgrad::{Tensor, nn::{Embedding, Module}};
    /// let vectors = Tensor::from_vec(vec![0.0f32, 0.0, 0.5, -0.5, 1.0, 2.0], &[3, 2]);
    /// let emb = Embedding::from_tensor(vectors);
    /// let ids = Tensor::from_vec(vec![2.0, 1.0], &[1, 2]);
    /// assert_eq!(emb.forward(&ids).to_vec(), vec![1.0, 2.0, 0.5, -0.5]);
    /// ```
    #[track_caller]
    pub fn from_tensor(weight: Tensor<E>) -> Self {
        assert_eq!(weight.ndim(), 2, "Embedding: weight must be 2-D, got {:?}", weight.shape());
        Embedding { weight: Param::new(weight), padding_idx: None, mask_zero: false }
    }

    /// Sets the padding id: its row is zeroed now and gets no gradient (PyTorch's `padding_idx`).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::nn::{Embedding, Module};
    /// let emb: Embedding = Embedding::new(5, 3, 0).with_padding_idx(0);
    /// let ids = Tensor::from_vec(vec![2.0, 0.0], &[1, 2]);
    /// let out = emb.forward(&ids);
    /// assert_eq!(out.narrow(1, 1, 1).to_vec(), [0.0; 3]); // the padding row is zero
    /// let grads = out.sum().backward();
    /// let g = grads.get(&emb.weight().value()).unwrap();
    /// assert_eq!(g.narrow(0, 0, 1).to_vec(), [0.0; 3]); // and learns nothing
    /// assert_eq!(g.narrow(0, 2, 1).to_vec(), [1.0; 3]);
    /// ```
    ///
    /// # Panics
    /// If `id` is not below the vocabulary size.
    #[track_caller]
    pub fn with_padding_idx(mut self, id: usize) -> Self {
        let (n, d) = (self.num_embeddings(), self.embedding_dim());
        if id >= n {
            panic!("Embedding: padding id {id} is out of range for a vocabulary of {n}");
        }
        self.weight.value().update_(|w| w[id * d..(id + 1) * d].fill(E::zero()));
        self.padding_idx = Some(id);
        self
    }

    /// Treats id 0 as padding and emits a mask from `forward_masked` (Keras's `mask_zero=True`).
    pub fn with_mask_zero(mut self, mask_zero: bool) -> Self {
        self.mask_zero = mask_zero;
        self
    }

    /// Vocabulary size.
    pub fn num_embeddings(&self) -> usize {
        self.weight.value().shape()[0]
    }

    /// Vector size.
    pub fn embedding_dim(&self) -> usize {
        self.weight.value().shape()[1]
    }

    /// The table parameter.
    pub fn weight(&self) -> &Param<E> {
        &self.weight
    }

    /// Looks up integer ids; `shape` is the shape of the id array.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::nn::Embedding;
    /// let emb = Embedding::from_tensor(Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 1.0, 2.0, 2.0], &[3, 2]));
    /// let out = emb.forward_ids(&[2, 1, 1, 0], &[2, 2]);
    /// assert_eq!(out.shape(), &[2, 2, 2]);
    /// assert_eq!(out.to_vec(), [2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If an id is not below the vocabulary size, or the ids do not fill `shape`.
    #[track_caller]
    pub fn forward_ids(&self, ids: &[usize], shape: &[usize]) -> Tensor<E> {
        let n = self.num_embeddings();
        if let Some((pos, &id)) = ids.iter().enumerate().find(|&(_, &id)| id >= n) {
            panic!("Embedding: id {id} at position {pos} is out of range for a vocabulary of {n}");
        }
        assert_eq!(
            ids.len(),
            shape.iter().product::<usize>(),
            "Embedding: {} ids do not fill shape {shape:?}",
            ids.len()
        );
        let w = self.weight.tensor();
        let mut rows = w.index_select(0, ids);
        if let Some(pad) = self.padding_idx
            && ids.contains(&pad)
            && rows.needs_grad()
        {
            // Padding positions read the table as a constant, so that row gets no gradient.
            let keep: Vec<E> = ids.iter().map(|&i| if i == pad { E::zero() } else { E::one() }).collect();
            let keep = Tensor::from_vec(keep, &[ids.len(), 1]);
            let constant = w.detach().index_select(0, ids);
            rows = &(&rows * &keep) + &(&constant * &(keep.neg() + E::one()));
        }
        rows.reshape(&[shape, &[self.embedding_dim()]].concat())
    }
}

/// Converts a float tensor of ids into `usize`s, naming the module and position of a bad one.
#[track_caller]
pub(crate) fn ids_of<E: Element>(module: &str, x: &Tensor<E>) -> Vec<usize> {
    match crate::kernels::index::whole_numbers(&x.to_vec()) {
        Ok(ids) => ids,
        Err((pos, v)) => panic!("{module}: id {v} at position {pos} is not a non-negative whole number"),
    }
}

impl<E: Element> Module<E> for Embedding<E> {
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.forward_ids(&ids_of("Embedding", x), x.shape())
    }

    #[track_caller]
    fn forward_masked(&self, x: &Tensor<E>, mask: Option<&Mask<E>>) -> (Tensor<E>, Option<Mask<E>>) {
        let ids = ids_of("Embedding", x);
        let out = self.forward_ids(&ids, x.shape());
        if !self.mask_zero {
            return (out, mask.cloned());
        }
        let m = ids.iter().map(|&i| if i == 0 { E::zero() } else { E::one() }).collect();
        (out, Some(Mask(Tensor::from_vec(m, x.shape()))))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        f(join(prefix, "weight"), &self.weight);
    }

    fn describe(&self) -> String {
        let mut s = format!("Embedding({}, {}", self.num_embeddings(), self.embedding_dim());
        if let Some(p) = self.padding_idx {
            s += &format!(", padding_idx={p}");
        }
        if self.mask_zero {
            s += ", mask_zero=true";
        }
        s + ")"
    }
}
