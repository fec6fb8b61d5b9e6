//! `Sequential`: modules applied one after another.

use super::module::{Mask, Module, Param, derive_seed, join};
use crate::{Element, Tensor};

/// Applies its modules in order, passing a padding [`Mask`] along (so an `Embedding` with
/// `mask_zero` feeds its mask to the `Lstm` after it, as in Keras).
///
/// Parameter names are `<child name>.<parameter>`; a child added with [`add`](Self::add) is named
/// by its position (`0.weight`, as in PyTorch), one added with [`add_named`](Self::add_named) by
/// the given name (`lstm.weight_ih_l0`).
///
/// ```
/// use rand::SeedableRng;
/// use tensorgrad::{Tensor, nn::{Linear, Module, Relu, Sequential}};
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mlp: Sequential = Sequential::new()
///     .add(Linear::new(4, 8, &mut rng))
///     .add(Relu)
///     .add(Linear::new(8, 2, &mut rng));
/// assert_eq!(mlp.forward(&Tensor::zeros(&[5, 4])).shape(), &[5, 2]);
/// let names: Vec<String> = mlp.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// ```
pub struct Sequential<E: Element = f32> {
    layers: Vec<(String, Box<dyn Module<E>>)>,
}

impl<E: Element> Default for Sequential<E> {
    fn default() -> Self {
        Sequential { layers: Vec::new() }
    }
}

impl<E: Element> std::fmt::Debug for Sequential<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.layers.iter().map(|(n, _)| n)).finish()
    }
}

impl<E: Element> Sequential<E> {
    /// An empty sequence (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a module named by its position (Keras's `model.add`).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, module: impl Module<E> + 'static) -> Self {
        let name = self.layers.len().to_string();
        self.layers.push((name, Box::new(module)));
        self
    }

    /// Appends a module under a name (used in parameter names).
    #[track_caller]
    pub fn add_named(mut self, name: &str, module: impl Module<E> + 'static) -> Self {
        if name.is_empty() || name.contains('.') || self.layers.iter().any(|(n, _)| n == name) {
            panic!("Sequential: layer name {name:?} must be non-empty, without dots, and unique");
        }
        self.layers.push((name.to_string(), Box::new(module)));
        self
    }

    /// The module called `name` (Keras's `model.get_layer(name)`), e.g. to run part of a model.
    pub fn get(&self, name: &str) -> Option<&dyn Module<E>> {
        self.layers.iter().find(|(n, _)| n == name).map(|(_, m)| &**m as &dyn Module<E>)
    }

    /// The names of the modules, in order.
    pub fn names(&self) -> Vec<&str> {
        self.layers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when there are no modules.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl<E: Element> Module<E> for Sequential<E> {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.forward_masked(x, None).0
    }

    /// Several inputs go to the first module (say an attention layer); its output goes on
    /// through the others as in [`forward`](Module::forward). One input is `forward`.
    ///
    /// # Panics
    /// If the first module does not take that many inputs, or the sequence is empty and given
    /// more than one.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        if let [x] = inputs {
            return self.forward(x);
        }
        let Some(((_, first), rest)) = self.layers.split_first() else {
            panic!("forward_many: an empty Sequential takes one input, got {}", inputs.len());
        };
        let mut h = first.forward_many(inputs);
        let mut m = None;
        for (_, layer) in rest {
            let (y, next) = layer.forward_masked(&h, m.as_ref());
            h = y;
            m = next;
        }
        h
    }

    fn forward_masked(&self, x: &Tensor<E>, mask: Option<&Mask<E>>) -> (Tensor<E>, Option<Mask<E>>) {
        let mut h = x.clone();
        let mut m = mask.cloned();
        for (_, layer) in &self.layers {
            let (y, next) = layer.forward_masked(&h, m.as_ref());
            h = y;
            m = next;
        }
        (h, m)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        for (name, layer) in &self.layers {
            layer.visit_params(&join(prefix, name), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        for (_, layer) in &mut self.layers {
            layer.set_training(training);
        }
    }

    fn reseed(&mut self, seed: u64) {
        for (i, (_, layer)) in self.layers.iter_mut().enumerate() {
            layer.reseed(derive_seed(seed, i as u64));
        }
    }
}
