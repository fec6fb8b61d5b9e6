//! The `Module` trait, `Param` (a parameter that can be frozen) and `Buffer` (state that is saved
//! with the weights but not trained).

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Element, Tensor};

/// A learnable tensor owned by a module.
///
/// The value is a leaf that requires a gradient; an optimizer overwrites it in place between
/// steps. A frozen parameter takes part in the forward pass as a constant: no gradient reaches
/// it, and [`Module::parameters`] leaves it out.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::Param;
///
/// let p = Param::new(Tensor::from_vec(vec![1.0f32, 2.0], &[2]));
/// // Use `tensor()` in the forward pass; `value()` is the leaf its gradient is keyed by.
/// let grads = (p.tensor() * 3.0).sum().backward();
/// assert_eq!(grads.get(&p.value()).unwrap().to_vec(), [3.0, 3.0]);
///
/// // Frozen, it is a constant: no gradient.
/// p.set_trainable(false);
/// assert!(!p.tensor().needs_grad());
/// assert!((p.tensor() * 3.0).sum().backward().is_empty());
///
/// // A clone is a deep copy: updating one leaves the other alone.
/// let copy = p.clone();
/// p.value().update_(|v| v[0] = 10.0);
/// assert_eq!(copy.value().to_vec(), [1.0, 2.0]);
/// assert!(!copy.is_trainable());
/// ```
#[derive(Debug)]
pub struct Param<E: Element = f32> {
    value: RwLock<Tensor<E>>,
    trainable: AtomicBool,
}

/// A leaf that requires a gradient: `t` itself if it already is one, else a new leaf over its data.
fn as_leaf<E: Element>(t: Tensor<E>) -> Tensor<E> {
    if t.is_leaf() && t.needs_grad() { t } else { t.detach().requires_grad() }
}

impl<E: Element> Param<E> {
    /// Wraps a tensor as a trainable parameter. A tensor that is already a leaf requiring a
    /// gradient is used as it is (same identity); anything else becomes a new leaf.
    pub fn new(value: Tensor<E>) -> Self {
        Param { value: RwLock::new(as_leaf(value)), trainable: AtomicBool::new(true) }
    }

    /// The tensor to use in a forward pass (a constant view when frozen).
    pub fn tensor(&self) -> Tensor<E> {
        let v = self.value();
        if self.is_trainable() { v } else { v.detach() }
    }

    /// The leaf itself: the key of its gradient in [`Gradients`](crate::Gradients), and the
    /// handle an optimizer updates in place.
    pub fn value(&self) -> Tensor<E> {
        self.value.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `value` the parameter (same identity if it is a leaf requiring a gradient).
    /// For functional use — evaluating a module at given parameter tensors, as `gradcheck`
    /// does. An optimizer built earlier keeps updating the previous tensor.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::nn::{Linear, Module};
    /// let fc: Linear = Linear::new(2, 1, 0);
    /// fc.weight().bind(Tensor::from_vec(vec![1.0, 2.0], &[1, 2]));
    /// fc.bias().unwrap().bind(Tensor::zeros(&[1]));
    /// assert_eq!(fc.forward(&Tensor::from_vec(vec![3.0, 4.0], &[1, 2])).to_vec(), [11.0]);
    /// ```
    ///
    /// # Panics
    /// If `value` does not have the parameter's shape.
    #[track_caller]
    pub fn bind(&self, value: Tensor<E>) {
        let mut v = self.value.write().unwrap_or_else(|e| e.into_inner());
        if v.shape() != value.shape() {
            panic!("Param::bind: new value has shape {:?}, the parameter has {:?}", value.shape(), v.shape());
        }
        *v = as_leaf(value);
    }

    /// Whether gradients flow to this parameter.
    pub fn is_trainable(&self) -> bool {
        self.trainable.load(Ordering::Relaxed)
    }

    /// Freezes (`false`) or unfreezes (`true`) the parameter.
    pub fn set_trainable(&self, trainable: bool) {
        self.trainable.store(trainable, Ordering::Relaxed);
    }
}

impl<E: Element> Clone for Param<E> {
    /// A deep copy: the clone has its own buffer, so training one does not move the other.
    fn clone(&self) -> Self {
        let v = self.value();
        let p = Param::new(Tensor::from_vec(v.to_vec(), v.shape()));
        p.set_trainable(self.is_trainable());
        p
    }
}

/// State a module keeps besides its parameters, saved and loaded with them but never trained
/// (PyTorch's buffers): batch norm's `running_mean`, `running_var` and `num_batches_tracked`.
///
/// A buffer is a constant: no gradient reaches it, no optimizer sees it. The module replaces its
/// value in the forward pass ([`set`](Self::set)) or updates it in place; weight files,
/// checkpoints and [`EarlyStopping`](crate::train::EarlyStopping)'s best weights carry it through
/// [`Module::state_dict`]. A buffer that counts (`num_batches_tracked`) is written to a file as
/// an `I64` tensor, as PyTorch keeps it, and read back from `I64` or floats.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::Buffer;
///
/// let mean = Buffer::new(Tensor::<f32>::zeros(&[3]));
/// mean.set(Tensor::ones(&[3]));
/// assert_eq!(mean.value().to_vec(), [1.0; 3]);
/// assert!(!mean.value().needs_grad());
/// assert!(Buffer::<f32>::counter().is_count());
/// ```
#[derive(Debug)]
pub struct Buffer<E: Element = f32> {
    value: RwLock<Tensor<E>>,
    count: bool,
}

impl<E: Element> Buffer<E> {
    /// A buffer holding `value` (detached: a buffer is never part of a graph).
    pub fn new(value: Tensor<E>) -> Self {
        Buffer { value: RwLock::new(value.detach()), count: false }
    }

    /// A scalar counter starting at 0, stored as `I64` in files (`num_batches_tracked`).
    pub fn counter() -> Self {
        Buffer { value: RwLock::new(Tensor::scalar(E::zero())), count: true }
    }

    /// The current value.
    pub fn value(&self) -> Tensor<E> {
        self.value.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the value (detached).
    ///
    /// # Panics
    /// If `value` does not have the buffer's shape.
    #[track_caller]
    pub fn set(&self, value: Tensor<E>) {
        let mut v = self.value.write().unwrap_or_else(|e| e.into_inner());
        if v.shape() != value.shape() {
            panic!("Buffer::set: new value has shape {:?}, the buffer has {:?}", value.shape(), v.shape());
        }
        *v = value.detach();
    }

    /// Whether the buffer holds a count (written to files as `I64`).
    pub fn is_count(&self) -> bool {
        self.count
    }
}

impl<E: Element> Clone for Buffer<E> {
    /// A deep copy, as for [`Param`].
    fn clone(&self) -> Self {
        let v = self.value();
        Buffer { value: RwLock::new(Tensor::from_vec(v.to_vec(), v.shape())), count: self.count }
    }
}

/// A padding mask travelling with a batch of sequences: shape `[batch, seq]`, 1 for a real
/// step and 0 for padding (Keras `mask_zero` semantics).
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Embedding, Mask, Module};
///
/// let mask = Mask::<f32>::from_lengths(&[3, 1], 4);
/// assert_eq!(mask.0.to_vec(), [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
/// assert_eq!(mask.lengths(), [3, 1]);
///
/// // An embedding with `mask_zero` makes one from the padding ids (0).
/// let emb: Embedding = Embedding::new(10, 4, 0).with_mask_zero(true);
/// let ids = Tensor::from_vec(vec![5.0, 2.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0], &[2, 4]);
/// let (vectors, mask) = emb.forward_masked(&ids, None);
/// assert_eq!(vectors.shape(), &[2, 4, 4]);
/// assert_eq!(mask.unwrap().lengths(), [2, 1]);
/// ```
#[derive(Clone, Debug)]
pub struct Mask<E: Element = f32>(pub Tensor<E>);

impl<E: Element> Mask<E> {
    /// A mask from each sequence's length: steps `0..len` are real, the rest padding.
    #[track_caller]
    pub fn from_lengths(lengths: &[usize], seq_len: usize) -> Self {
        if let Some((i, &l)) = lengths.iter().enumerate().find(|&(_, &l)| l > seq_len) {
            panic!("Mask::from_lengths: length {l} of sequence {i} exceeds the sequence length {seq_len}");
        }
        let data = lengths.iter().flat_map(|&l| (0..seq_len).map(move |t| if t < l { E::one() } else { E::zero() }));
        Mask(Tensor::from_vec(data.collect(), &[lengths.len(), seq_len]))
    }

    /// The number of real steps of each sequence (the mask's row sums).
    pub fn lengths(&self) -> Vec<usize> {
        let (b, seq) = (self.0.shape()[0], self.0.shape()[1]);
        let v = self.0.to_vec();
        (0..b).map(|i| v[i * seq..(i + 1) * seq].iter().filter(|&&m| m > E::zero()).count()).collect()
    }
}

/// A layer or a model: a forward pass plus named parameters.
///
/// Implementors write [`forward`](Module::forward) and
/// [`visit_params`](Module::visit_params); everything else has a default.
///
/// # Several inputs
/// A module whose forward pass takes several tensors (attention: query, key, value and a mask;
/// a layer merging two branches) overrides [`forward_many`](Module::forward_many) and documents
/// the order of its inputs; its `forward(x)` is its one-input form (self-attention:
/// `forward_many(&[x, x, x])`), or a panic naming the module if it has none. Every other module
/// takes exactly one input, which the default `forward_many` checks before calling `forward`.
///
/// Several inputs are a method of `Module` rather than a second trait so that one kind of
/// object, `Box<dyn Module<E>>`, holds every layer: containers ([`Sequential`](super::Sequential),
/// a future graph of layers) store and call multi-input modules like any other, and parameter
/// names, training mode and seeding work unchanged. The inputs are a slice, as Keras passes a
/// list of tensors to a merging layer, so the method stays object-safe; the price is that a
/// wrong number of inputs is a panic at the call rather than a compile error.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Module, Param};
///
/// /// `a·x + y·z`, three inputs of one shape.
/// struct MulAdd {
///     a: Param<f32>,
/// }
///
/// impl Module for MulAdd {
///     #[track_caller]
///     fn forward(&self, _x: &Tensor) -> Tensor {
///         panic!("MulAdd: takes 3 inputs (x, y, z); call forward_many");
///     }
///     #[track_caller]
///     fn forward_many(&self, inputs: &[&Tensor]) -> Tensor {
///         let [x, y, z] = inputs else { panic!("MulAdd: takes 3 inputs (x, y, z), got {}", inputs.len()) };
///         *x * &self.a.tensor() + *y * *z
///     }
///     fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<f32>)) {
///         f(if prefix.is_empty() { "a".into() } else { format!("{prefix}.a") }, &self.a);
///     }
/// }
///
/// let m = MulAdd { a: Param::new(Tensor::scalar(2.0)) };
/// let (x, y, z) = (Tensor::from_slice(&[1.0, 2.0]), Tensor::from_slice(&[3.0, 4.0]), Tensor::from_slice(&[5.0, 6.0]));
/// assert_eq!(m.forward_many(&[&x, &y, &z]).to_vec(), [17.0, 28.0]);
/// // A one-input module called through the same method:
/// assert_eq!(tensorgrad::nn::Relu.forward_many(&[&x]).to_vec(), [1.0, 2.0]);
/// ```
pub trait Module<E: Element = f32>: Send + Sync {
    /// The forward pass. Shapes are documented on each module.
    ///
    /// Every implementation is `#[track_caller]` (the attribute on this declaration applies to
    /// all of them), so a panic over a wrong input reports the line that called `forward`, also
    /// through containers and `dyn Module`.
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E>;

    /// The forward pass of a module with several inputs, in the order the module documents
    /// (see [Several inputs](#several-inputs)). The default is for one-input modules: it calls
    /// [`forward`](Module::forward) on the single input.
    ///
    /// # Panics
    /// The default panics unless exactly one input is given, naming the module's type.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        match inputs {
            [x] => self.forward(x),
            _ => panic!(
                "forward_many: {} takes one input, got {}",
                short_type_name(std::any::type_name::<Self>()),
                inputs.len()
            ),
        }
    }

    /// The forward pass with a padding mask alongside the input (Keras masking). Modules that
    /// make a mask (an `Embedding` with `mask_zero`) or consume one (an `Lstm`) override this;
    /// the default passes the mask through unchanged.
    #[track_caller]
    fn forward_masked(&self, x: &Tensor<E>, mask: Option<&Mask<E>>) -> (Tensor<E>, Option<Mask<E>>) {
        (self.forward(x), mask.cloned())
    }

    /// Calls `f` with each parameter and its dotted name (`prefix` + local name, joined with
    /// [`param_name`](super::param_name)), in a fixed order.
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>));

    /// Calls `f` with each buffer (state saved with the weights but not trained, such as batch
    /// norm's running statistics) and its dotted name, in a fixed order. The default has none;
    /// containers visit their children's.
    fn visit_buffers(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Buffer<E>)) {}

    /// A one-line description in PyTorch's style, `Linear(in_features=4, out_features=2,
    /// bias=true)`, used by `Display` and [`summary`](super::Sequential::summary) of containers.
    /// The default is the type's name without its path; containers describe their children on
    /// the following lines.
    fn describe(&self) -> String {
        short_type_name(std::any::type_name::<Self>())
    }

    /// Switches training behaviour (dropout) on or off. Containers forward it to children.
    fn set_training(&mut self, _training: bool) {}

    /// Gives the module's random streams (dropout masks) the seed `seed`, and restarts them.
    /// Containers give each child a seed derived from `seed` and the child's position, so the
    /// seed of every dropout in a model says where it sits.
    ///
    /// [`Trainer::fit`](crate::train::Trainer::fit) reseeds the model with
    /// [`FitOptions::seed`](crate::train::FitOptions::seed) when it starts, then runs each step
    /// in the scope of a [`StepKey`](super::StepKey) `(seed, epoch, step, rank)`: each mask
    /// depends on the step's key and the module's seed only, so a run resumed at an epoch draws
    /// the same masks as one that never stopped, and no mask depends on thread timing.
    fn reseed(&mut self, _seed: u64) {}

    /// Training mode (dropout active).
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode (dropout off).
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Every parameter (frozen ones too) with its dotted name, as in a PyTorch `state_dict`.
    fn named_parameters(&self) -> Vec<(String, Tensor<E>)> {
        let mut out = Vec::new();
        self.visit_params("", &mut |name, p| out.push((name, p.value())));
        out
    }

    /// Every buffer with its dotted name (see [`Buffer`]).
    fn named_buffers(&self) -> Vec<(String, Tensor<E>)> {
        let mut out = Vec::new();
        self.visit_buffers("", &mut |name, b| out.push((name, b.value())));
        out
    }

    /// Everything a weight file holds, as PyTorch's `state_dict`: the parameters
    /// ([`named_parameters`](Module::named_parameters)), then the buffers
    /// ([`named_buffers`](Module::named_buffers)).
    ///
    /// ```
    /// use tensorgrad::nn::{BatchNorm2d, Module};
    /// let bn: BatchNorm2d = BatchNorm2d::new(4);
    /// let names: Vec<String> = bn.state_dict().into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
    /// ```
    fn state_dict(&self) -> Vec<(String, Tensor<E>)> {
        let mut out = self.named_parameters();
        out.extend(self.named_buffers());
        out
    }

    /// The trainable parameters, in order: what an optimizer updates.
    fn parameters(&self) -> Vec<Tensor<E>> {
        let mut out = Vec::new();
        self.visit_params("", &mut |_, p| {
            if p.is_trainable() {
                out.push(p.value());
            }
        });
        out
    }

    /// Freezes or unfreezes the parameter called `name`; returns false if there is none.
    fn set_trainable(&self, name: &str, trainable: bool) -> bool {
        let mut found = false;
        self.visit_params("", &mut |n, p| {
            if n == name {
                p.set_trainable(trainable);
                found = true;
            }
        });
        found
    }

    /// Binds the parameters, in the order of [`named_parameters`](Module::named_parameters), to
    /// the given tensors (see [`Param::bind`]).
    #[track_caller]
    fn bind_parameters(&self, tensors: &[Tensor<E>]) {
        // Check the count and every shape first, so a bad call binds nothing.
        let mut shapes = Vec::new();
        self.visit_params("", &mut |name, p| shapes.push((name, p.value().shape().to_vec())));
        if shapes.len() != tensors.len() {
            panic!("bind_parameters: {} tensors given for {} parameters", tensors.len(), shapes.len());
        }
        for ((name, shape), t) in shapes.iter().zip(tensors) {
            if t.shape() != shape.as_slice() {
                panic!("bind_parameters: tensor for {name} has shape {:?}, the parameter has {shape:?}", t.shape());
            }
        }
        let mut k = 0;
        self.visit_params("", &mut |_, p| {
            p.bind(tensors[k].clone());
            k += 1;
        });
    }

    /// Total number of scalar parameters.
    fn num_parameters(&self) -> usize {
        let mut n = 0;
        self.visit_params("", &mut |_, p| n += p.value().numel());
        n
    }
}

/// `tensorgrad::nn::Linear<f32>` → `Linear`: a type's name without its module path and, for the
/// default description, without its element type.
pub(crate) fn short_type_name(full: &str) -> String {
    let name = short_type_path(full);
    match name.split_once('<') {
        Some((base, _)) if !base.is_empty() => base.to_string(),
        _ => name,
    }
}

/// `tensorgrad::nn::Linear<f32>` → `Linear<f32>`: a type's name without its module path.
fn short_type_path(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        match c {
            ':' => segment.clear(),
            '<' | '>' | ',' | ' ' | '(' | ')' | '[' | ']' | '&' | ';' => {
                out.push_str(&segment);
                segment.clear();
                out.push(c);
            }
            _ => segment.push(c),
        }
    }
    out.push_str(&segment);
    out
}

/// Joins a prefix and a local name with a dot (`"" + "weight"` → `"weight"`).
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// The dotted name of a parameter or child called `name` inside a module whose own name is
/// `prefix`, as [`Module::visit_params`] passes it on: `"" + "weight"` → `"weight"`,
/// `"encoder.0" + "bias"` → `"encoder.0.bias"`. Use it in a hand-written `visit_params` so names
/// match PyTorch's `state_dict` keys.
///
/// ```
/// use tensorgrad::nn::{Linear, Module, Param, param_name};
/// use tensorgrad::Tensor;
///
/// /// A linear layer plus a learned offset.
/// struct Shifted {
///     inner: Linear,
///     shift: Param,
/// }
///
/// impl Module for Shifted {
///     fn forward(&self, x: &Tensor) -> Tensor {
///         self.inner.forward(x) + &self.shift.tensor()
///     }
///     fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param)) {
///         self.inner.visit_params(&param_name(prefix, "inner"), f);
///         f(param_name(prefix, "shift"), &self.shift);
///     }
/// }
///
/// let m = Shifted { inner: Linear::new(3, 2, 0), shift: Param::new(Tensor::zeros(&[2])) };
/// let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["inner.weight", "inner.bias", "shift"]);
/// ```
pub fn param_name(prefix: &str, name: &str) -> String {
    join(prefix, name)
}

/// `Module` for a pointer to a module (`Box<M>`, `&mut M`): every method forwards to the module,
/// so containers hold `Box<dyn Module<E>>` and a `Trainer` can borrow a model the caller keeps.
/// Methods whose defaults are built on these (`named_parameters`, `train`, …) need no forwarding.
macro_rules! forward_module {
    ($($ptr:ty),*) => {$(
        impl<E: Element, M: Module<E> + ?Sized> Module<E> for $ptr {
            fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
                (**self).forward(x)
            }
            fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
                (**self).forward_many(inputs)
            }
            fn forward_masked(&self, x: &Tensor<E>, mask: Option<&Mask<E>>) -> (Tensor<E>, Option<Mask<E>>) {
                (**self).forward_masked(x, mask)
            }
            fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
                (**self).visit_params(prefix, f)
            }
            fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer<E>)) {
                (**self).visit_buffers(prefix, f)
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn set_training(&mut self, training: bool) {
                (**self).set_training(training)
            }
            fn reseed(&mut self, seed: u64) {
                (**self).reseed(seed)
            }
        }
    )*};
}

forward_module!(Box<M>, &mut M);

/// A well-mixed seed for child `index` of a module seeded with `seed` (SplitMix64's finaliser).
pub(crate) fn derive_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One entry of a module's state as weight files see it.
pub(crate) struct StateEntry<E: Element> {
    /// The dotted name.
    pub(crate) name: String,
    /// The current value.
    pub(crate) tensor: Tensor<E>,
    /// A counting buffer, stored as `I64`.
    pub(crate) count: bool,
}

/// The parameters, then the buffers, of `model`.
pub(crate) fn state_entries<E: Element, M: Module<E> + ?Sized>(model: &M) -> Vec<StateEntry<E>> {
    let mut out = Vec::new();
    model.visit_params("", &mut |name, p| out.push(StateEntry { name, tensor: p.value(), count: false }));
    model.visit_buffers("", &mut |name, b| out.push(StateEntry { name, tensor: b.value(), count: b.is_count() }));
    out
}

/// Writes `values` (one per entry of [`state_entries`], in its order, already checked) into the
/// model: parameters in place, buffers replaced.
pub(crate) fn write_state<E: Element, M: Module<E> + ?Sized>(model: &M, values: Vec<Vec<E>>) {
    let mut values = values.into_iter();
    model.visit_params("", &mut |_, p| {
        if let Some(v) = values.next() {
            p.value().update_(|d| d.copy_from_slice(&v));
        }
    });
    model.visit_buffers("", &mut |_, b| {
        if let Some(v) = values.next() {
            let shape = b.value().shape().to_vec();
            b.set(Tensor::from_vec(v, &shape));
        }
    });
}
