//! The parameters given to an optimizer, and the keys their state is saved under.

use crate::{Element, Tensor};

/// The parameters an optimizer updates, each with the key its state is saved under.
///
/// Every optimizer's `new` takes `impl Into<ParamList<E>>`, so it accepts either form
/// `torch.optim` accepts:
///
/// - [`Module::named_parameters`](crate::nn::Module::named_parameters) — `(name, tensor)`
///   pairs: the state is keyed by the dotted parameter names (`"lstm.weight_ih_l0.exp_avg"`,
///   `"dense.bias.step"`). The keys mean the same thing in every process and survive changes to
///   the model that reorder, add or freeze other parameters, so this is the form to use for
///   checkpoints and for anything that moves state between processes.
/// - [`Module::parameters`](crate::nn::Module::parameters) — tensors alone: the state is keyed
///   by position in the list (`"0.exp_avg"`, `"1.step"`), as it always was.
///
/// A frozen parameter among the named ones is harmless: it never gets a gradient, so the
/// optimizer neither moves it nor keeps state for it (PyTorch skips parameters without a
/// `.grad` the same way).
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::Gradients;
/// use tensorgrad::nn::{Linear, Module, Sequential};
/// use tensorgrad::optim::{Adam, AdamConfig, Optimizer, ParamList};
/// let mut rng = StdRng::seed_from_u64(0);
/// let model: Sequential = Sequential::new().add_named("fc", Linear::new(3, 2, &mut rng));
///
/// let by_name = ParamList::from(model.named_parameters());
/// assert_eq!(by_name.names(), ["fc.weight", "fc.bias"]);
/// assert_eq!(ParamList::from(model.parameters()).names(), ["0", "1"]);
///
/// let mut opt = Adam::new(model.named_parameters(), AdamConfig::default());
/// let grads = model.forward(&tensorgrad::Tensor::ones(&[4, 3])).sum().backward();
/// opt.step(&grads);
/// let keys: Vec<String> = opt.state_dict().into_iter().map(|(k, _)| k).collect();
/// assert_eq!(keys[..3], ["fc.weight.step", "fc.weight.exp_avg", "fc.weight.exp_avg_sq"]);
/// ```
#[derive(Clone, Debug)]
pub struct ParamList<E: Element = f32> {
    names: Vec<String>,
    tensors: Vec<Tensor<E>>,
}

impl<E: Element> ParamList<E> {
    /// The key of each parameter's state: its dotted name, or its position as text.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The parameters, in order.
    pub fn tensors(&self) -> &[Tensor<E>] {
        &self.tensors
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The names and the tensors, for an optimizer to keep.
    pub(crate) fn into_parts(self) -> (Vec<String>, Vec<Tensor<E>>) {
        (self.names, self.tensors)
    }
}

impl<E: Element> From<Vec<Tensor<E>>> for ParamList<E> {
    /// Parameters keyed by their position: `"0"`, `"1"`, …
    fn from(tensors: Vec<Tensor<E>>) -> Self {
        ParamList { names: (0..tensors.len()).map(|i| i.to_string()).collect(), tensors }
    }
}

impl<E: Element> From<Vec<(String, Tensor<E>)>> for ParamList<E> {
    /// Parameters keyed by their names (as [`Module::named_parameters`](crate::nn::Module::named_parameters)
    /// gives them).
    fn from(named: Vec<(String, Tensor<E>)>) -> Self {
        let (names, tensors) = named.into_iter().unzip();
        ParamList { names, tensors }
    }
}
