//! The `Tensor` handle and the op contract: a tensor is a value (a buffer and a layout) plus,
//! when it was computed from tensors that need gradients, the recorded op that made it.
//!
//! **The op contract.** Every differentiable primitive is a value implementing [`Op`]: its name,
//! how many outputs it has, whether its backward can itself be differentiated, and its backward
//! rule, written with tensor ops. The forward is the method that computes the values with a
//! kernel and records the op on its outputs ([`Tensor::record`] for a rule written as a closure,
//! [`Tensor::record_op`] / [`record_outputs`] for an op that is a struct). A backward rule returns
//! one [`Grad`] per input: a whole gradient, or a [`Part`] of one (the slice a `narrow` or an
//! `index_select` selected), which the walk adds straight into the input's gradient buffer.
//! The contract's types live here, next to the handle, because a tensor holds its node and the
//! node holds its input tensors (one recursive type); the ops implement it in `src/ops/`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::tensor::rng::RngSource;
use rand_distr::{Distribution, Normal, StandardNormal, Uniform};
use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::kernels::{self, Par};
use crate::tensor::element::Element;
use crate::tensor::layout::Layout;
use crate::tensor::memory;
use crate::tensor::mode;
use crate::tensor::shape::{check_dim, numel};
use crate::tensor::storage::Storage;

/// A process-unique identity of a tensor handle, the key of [`Gradients`](crate::Gradients).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(usize);

impl TensorId {
    fn fresh() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// An n-dimensional array of `f32` (default) or `f64` that can take part in differentiation.
///
/// A `Tensor` is a cheap handle: cloning it clones an `Arc`. It holds a shared buffer, a
/// [`Layout`] (shape, strides, offset) and, when it was computed from tensors that need
/// gradients, the op that made it. Views (`t`, `transpose`, `permute`, `narrow`,
/// `broadcast_to`, `squeeze`, `unsqueeze`, `reshape` of contiguous data) share the buffer.
///
/// ```
/// use tensorgrad::Tensor;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).requires_grad();
/// let y = (&x * &x).sum();
/// let grads = y.backward();
/// assert_eq!(grads.get(&x).unwrap().to_vec(), vec![2.0, 4.0, 6.0, 8.0]);
/// ```
pub struct Tensor<E: Element = f32> {
    inner: Arc<Inner<E>>,
}

pub(crate) enum GradState<E: Element> {
    /// A constant: no gradient flows to or through it.
    None,
    /// A leaf the user asked gradients for.
    Leaf,
    /// Output `output` of a recorded op.
    Op { node: Arc<Node<E>>, output: usize },
}

pub(crate) struct Inner<E: Element> {
    id: TensorId,
    storage: Arc<Storage<E>>,
    layout: Layout,
    grad: GradState<E>,
}

impl<E: Element> Drop for Inner<E> {
    /// Frees a long chain of graph nodes iteratively, so dropping the loss of a 100-step
    /// unrolled network cannot overflow the stack. A node shared by several outputs is freed
    /// with the last of them.
    fn drop(&mut self) {
        let GradState::Op { mut node, .. } = std::mem::replace(&mut self.grad, GradState::None) else {
            return;
        };
        // An input that nobody else holds and that was made by an op would free that op's node
        // inside this drop, and so on down the graph: its node is taken out and freed here, in
        // turn. The stack is inline for short chains, and the plain `strong_count` test spares
        // the atomic read-modify-write of `Arc::get_mut` for the usual shared input, so dropping
        // the output of an op allocates nothing and takes as few atomics as it can.
        let mut stack: SmallVec<[Arc<Node<E>>; 8]> = SmallVec::new();
        loop {
            let frees_more = node.inputs.iter().any(|t| Arc::strong_count(&t.inner) == 1 && !t.is_leaf());
            if frees_more && let Some(unique) = Arc::get_mut(&mut node) {
                for t in unique.inputs.iter_mut() {
                    if let Some(inner) = Arc::get_mut(&mut t.inner)
                        && let GradState::Op { node, .. } = std::mem::replace(&mut inner.grad, GradState::None)
                    {
                        stack.push(node);
                    }
                }
            }
            drop(node);
            let Some(next) = stack.pop() else { return };
            node = next;
        }
    }
}

impl<E: Element> Clone for Tensor<E> {
    fn clone(&self) -> Self {
        Tensor { inner: Arc::clone(&self.inner) }
    }
}

// ---------------------------------------------------------------------------------------------
// The op contract
// ---------------------------------------------------------------------------------------------

/// A differentiable primitive, as the graph records it (see the module doc).
pub(crate) trait Op<E: Element>: Send + Sync + 'static {
    /// The op's name, for messages and [`Tensor::op_name`].
    fn name(&self) -> &'static str;

    /// How many tensors the forward returns (the backward receives one gradient per output).
    fn outputs(&self) -> usize {
        1
    }

    /// `None` when the backward is written with tensor ops, so it can be recorded and
    /// differentiated again; otherwise the reason it cannot and what to use instead, which
    /// `backward_with_graph` reports in its panic.
    fn not_twice(&self) -> Option<&'static str> {
        None
    }

    /// One gradient (or none) per input, given the gradients of the outputs.
    fn backward(&self, c: &Ctx<'_, E>) -> Vec<Option<Grad<E>>>;
}

/// What a backward rule sees: the op's outputs and the gradients flowing into them, and its
/// inputs.
pub(crate) struct Ctx<'a, E: Element> {
    /// Each output, where the walk reached it (an output nobody used is `None`).
    pub outs: &'a [Option<Tensor<E>>],
    /// The gradient of each output, `None` where no gradient flows into that output.
    pub grads: &'a [Option<Tensor<E>>],
    pub inputs: &'a [Tensor<E>],
}

impl<'a, E: Element> Ctx<'a, E> {
    /// The output of a one-output op.
    pub fn out(&self) -> &'a Tensor<E> {
        self.outs[0].as_ref().expect("backward: the output of a one-output op is always reached")
    }

    /// The gradient of the output of a one-output op.
    pub fn grad(&self) -> &'a Tensor<E> {
        self.grads[0].as_ref().expect("backward: a one-output op runs only with its output's gradient")
    }

    /// Whether input `i` wants a gradient (others may return `None`).
    pub fn needs(&self, i: usize) -> bool {
        self.inputs[i].needs_grad()
    }
}

/// A gradient flowing to one input: the whole of it, or a part that belongs in a region of it.
pub(crate) enum Grad<E: Element> {
    Full(Tensor<E>),
    Part(Box<dyn Part<E>>),
}

impl<E: Element> From<Tensor<E>> for Grad<E> {
    fn from(t: Tensor<E>) -> Self {
        Grad::Full(t)
    }
}

impl<E: Element> Grad<E> {
    /// A part of a gradient (see [`Part`]).
    pub fn part(p: impl Part<E>) -> Self {
        Grad::Part(Box::new(p))
    }

    /// The values this gradient carries (the whole gradient or the part).
    pub fn values(&self) -> &Tensor<E> {
        match self {
            Grad::Full(t) => t,
            Grad::Part(p) => p.values(),
        }
    }

    /// The whole gradient for an input of `shape`, built with differentiable ops.
    pub fn materialize(self, shape: &[usize]) -> Tensor<E> {
        match self {
            Grad::Full(t) => t,
            Grad::Part(p) => p.materialize(shape),
        }
    }
}

/// A sparse gradient: values that belong in one region of an input's gradient. Slicing ops
/// return parts, so that a loop over the 100 steps of a sequence adds 100 slices into one
/// buffer instead of building 100 full-size zero tensors. When the backward pass is recorded,
/// the walk materialises a part with its differentiable adjoint op instead.
pub(crate) trait Part<E: Element>: Send + 'static {
    /// The values of the part.
    fn values(&self) -> &Tensor<E>;

    /// Adds the values into their region of `buf`, a row-major gradient buffer of `shape`
    /// (nothing is recorded).
    fn add_to(&self, buf: &mut [E], shape: &[usize]);

    /// The whole gradient of `shape`: zeros with the values in their region, as a recorded,
    /// differentiable op.
    fn materialize(self: Box<Self>, shape: &[usize]) -> Tensor<E>;
}

/// A backward rule written as a closure, for a one-output op.
struct Rule<F> {
    name: &'static str,
    f: F,
}

impl<E: Element, G: Into<Grad<E>>, F> Op<E> for Rule<F>
where
    F: Fn(&Ctx<'_, E>) -> Vec<Option<G>> + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn backward(&self, c: &Ctx<'_, E>) -> Vec<Option<Grad<E>>> {
        (self.f)(c).into_iter().map(|g| g.map(Into::into)).collect()
    }
}

/// The inputs of a recorded op: up to two inline, as most ops have one or two.
pub(crate) type Inputs<E> = SmallVec<[Tensor<E>; 2]>;

/// What an op may give as its inputs when it records itself: an array of one or two tensors
/// (moved in place, with no allocation), or a `Vec` of any length.
pub(crate) trait IntoInputs<E: Element> {
    /// The inputs as the node keeps them.
    fn into_inputs(self) -> Inputs<E>;
}

impl<E: Element> IntoInputs<E> for [Tensor<E>; 1] {
    fn into_inputs(self) -> Inputs<E> {
        let [a] = self;
        let mut v = Inputs::new();
        v.push(a);
        v
    }
}

impl<E: Element> IntoInputs<E> for [Tensor<E>; 2] {
    fn into_inputs(self) -> Inputs<E> {
        Inputs::from_buf(self)
    }
}

impl<E: Element> IntoInputs<E> for Vec<Tensor<E>> {
    fn into_inputs(self) -> Inputs<E> {
        // Up to two tensors move inline (and the `Vec` is freed); more keep the `Vec`'s buffer.
        Inputs::from_vec(self)
    }
}

/// One recorded op: the op, its inputs, and what the walk needs to know of its outputs.
///
/// `O` is the op's type while the node is built and `dyn Op<E>` once it is in its `Arc`; the op
/// sits inside the node (it must be the last field), so recording an op allocates once for
/// both instead of once for the node and once for a `Box` around the op. The short lists are
/// inline for the same reason.
pub(crate) struct Node<E: Element, O: ?Sized = dyn Op<E>> {
    pub inputs: Inputs<E>,
    /// The buffer version of each input when the op was recorded.
    pub versions: SmallVec<[u64; 2]>,
    /// Where the op was called (for anomaly reports).
    pub location: &'static std::panic::Location<'static>,
    /// The id of each output (the walk finds their gradients by it).
    pub outputs: SmallVec<[TensorId; 1]>,
    pub op: O,
}

impl<E: Element> Node<E> {
    /// The op's name.
    pub fn name(&self) -> &'static str {
        self.op.name()
    }

    /// Panics if an input was overwritten in place (`update_`) after this op was recorded: its
    /// backward would silently use the new values.
    #[track_caller]
    pub fn check_versions(&self) {
        for (input, &v) in self.inputs.iter().zip(&self.versions) {
            let now = input.storage().version();
            if now != v {
                panic!(
                    "backward: an input of shape {:?} to `{}` was modified in place (update_) after the op was \
                     recorded (version {now}, recorded at {v}); compute the output again after updating the tensor",
                    input.shape(),
                    self.name()
                );
            }
        }
    }
}

/// The first non-finite element of `t`, as (logical index, value).
pub(crate) fn first_non_finite<E: Element>(t: &Tensor<E>) -> Option<(usize, E)> {
    t.to_vec().into_iter().enumerate().find(|(_, v)| !v.is_finite())
}

/// Records `op` on freshly computed `outputs` if recording is on and some input needs a
/// gradient; otherwise returns the outputs unchanged. The op's one-output form is
/// [`Tensor::record_op`].
#[track_caller]
pub(crate) fn record_outputs<E: Element>(
    mut outputs: Vec<Tensor<E>>,
    op: impl Op<E>,
    inputs: impl IntoInputs<E>,
) -> Vec<Tensor<E>> {
    record_on(&mut outputs, op, inputs.into_inputs(), std::panic::Location::caller());
    outputs
}

/// [`record_outputs`] on outputs in place (a one-output op passes a one-element slice, with no
/// `Vec` around it).
fn record_on<E: Element>(
    outputs: &mut [Tensor<E>],
    op: impl Op<E>,
    inputs: Inputs<E>,
    location: &'static std::panic::Location<'static>,
) {
    debug_assert_eq!(outputs.len(), op.outputs(), "{}: number of outputs", op.name());
    if mode::is_anomaly_enabled() {
        for out in outputs.iter() {
            if let Some((k, v)) = first_non_finite(out)
                && inputs.iter().all(|t| first_non_finite(t).is_none())
            {
                panic!(
                    "anomaly: `{}` produced {v} at element {k} from finite inputs (called at {location})",
                    op.name()
                );
            }
        }
    }
    if !mode::is_grad_enabled() || !inputs.iter().any(Tensor::needs_grad) {
        return;
    }
    // Each output gets a handle of its own (a fresh one if the tensor is shared).
    for t in outputs.iter_mut() {
        if Arc::strong_count(&t.inner) != 1 {
            *t = Tensor::from_storage(Arc::clone(&t.inner.storage), t.inner.layout.clone());
        }
    }
    // Pushed one by one: `SmallVec`'s `collect` costs several times more for two elements.
    let mut versions = SmallVec::new();
    for t in &inputs {
        versions.push(t.storage().version());
    }
    let mut ids = SmallVec::new();
    for t in outputs.iter() {
        ids.push(t.id());
    }
    let node: Arc<Node<E>> = Arc::new(Node { op, inputs, versions, location, outputs: ids });
    // The last output takes the node itself: one fewer atomic increment and decrement.
    let last = outputs.len().saturating_sub(1);
    for (output, t) in outputs.iter_mut().enumerate().take(last) {
        Arc::get_mut(&mut t.inner).expect("an output handle is unique").grad =
            GradState::Op { node: Arc::clone(&node), output };
    }
    if let Some(t) = outputs.last_mut() {
        Arc::get_mut(&mut t.inner).expect("an output handle is unique").grad = GradState::Op { node, output: last };
    }
}

// ---------------------------------------------------------------------------------------------
// Construction
// ---------------------------------------------------------------------------------------------

impl<E: Element> Tensor<E> {
    pub(crate) fn from_storage(storage: Arc<Storage<E>>, layout: Layout) -> Self {
        Tensor { inner: Arc::new(Inner { id: TensorId::fresh(), storage, layout, grad: GradState::None }) }
    }

    /// A row-major tensor over fresh data; `data.len()` must equal the shape's element count.
    pub(crate) fn from_data(data: Vec<E>, shape: &[usize]) -> Self {
        debug_assert_eq!(data.len(), numel(shape));
        Self::from_storage(Arc::new(Storage::new(data)), Layout::contiguous(shape))
    }

    /// A tensor of the given shape over `data` in row-major order.
    ///
    /// # Panics
    /// If `data.len()` is not the number of elements of `shape`; use
    /// [`try_from_vec`](Self::try_from_vec) for data that comes from users.
    ///
    /// ```
    /// let t = tensorgrad::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// assert_eq!(t.shape(), &[2, 3]);
    /// ```
    #[track_caller]
    pub fn from_vec(data: Vec<E>, shape: &[usize]) -> Self {
        match Self::try_from_vec(data, shape) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`from_vec`](Self::from_vec), but returns an error when the length is wrong.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// assert!(Tensor::<f32>::try_from_vec(vec![1.0, 2.0, 3.0], &[2, 2]).is_err());
    /// ```
    pub fn try_from_vec(data: Vec<E>, shape: &[usize]) -> Result<Self> {
        let expected = numel(shape);
        if data.len() != expected {
            return Err(Error::DataLength { op: "Tensor::from_vec", len: data.len(), shape: shape.to_vec(), expected });
        }
        Ok(Self::from_data(data, shape))
    }

    /// A tensor from a slice of values, with shape `[len]`.
    pub fn from_slice(data: &[E]) -> Self {
        Self::from_data(data.to_vec(), &[data.len()])
    }

    /// A tensor filled with `value`.
    pub fn full(shape: &[usize], value: E) -> Self {
        let mut data = memory::take(numel(shape));
        data.fill(value);
        Self::from_data(data, shape)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, E::zero())
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, E::one())
    }

    /// A 0-dimensional tensor (shape `[]`) holding one value.
    pub fn scalar(value: E) -> Self {
        Self::from_data(vec![value], &[])
    }

    /// `0, 1, …, n − 1` as a 1-D tensor.
    pub fn arange(n: usize) -> Self {
        Self::from_data((0..n).map(|i| E::from_usize(i).expect("arange: index not representable")).collect(), &[n])
    }

    /// Values drawn uniformly from `[low, high)` with the given random number generator.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let w = tensorgrad::Tensor::<f32>::rand_uniform(&[3, 4], -0.1, 0.1, &mut rng);
    /// assert!(w.to_vec().iter().all(|x| (-0.1..0.1).contains(x)));
    /// ```
    #[track_caller]
    pub fn rand_uniform(shape: &[usize], low: E, high: E, rng: impl RngSource) -> Self
    where
        E: rand_distr::uniform::SampleUniform,
    {
        let dist =
            Uniform::new(low, high).unwrap_or_else(|e| panic!("rand_uniform: invalid range [{low}, {high}): {e}"));
        let mut rng = rng.into_rng();
        Self::from_data((0..numel(shape)).map(|_| dist.sample(&mut rng)).collect(), shape)
    }

    /// Values drawn from a normal distribution with the given mean and standard deviation.
    #[track_caller]
    pub fn randn(shape: &[usize], mean: E, std: E, rng: impl RngSource) -> Self
    where
        StandardNormal: Distribution<E>,
    {
        let dist = Normal::new(mean, std).unwrap_or_else(|e| panic!("randn: invalid standard deviation {std}: {e}"));
        let mut rng = rng.into_rng();
        Self::from_data((0..numel(shape)).map(|_| dist.sample(&mut rng)).collect(), shape)
    }
}

// ---------------------------------------------------------------------------------------------
// Accessors
// ---------------------------------------------------------------------------------------------

impl<E: Element> Tensor<E> {
    /// The identity used to key [`Gradients`](crate::Gradients).
    pub fn id(&self) -> TensorId {
        self.inner.id
    }

    /// The shape (PyTorch's `x.shape` or `x.size()`).
    pub fn shape(&self) -> &[usize] {
        self.inner.layout.shape()
    }

    /// The strides of each dimension, in elements (0 for a broadcast dimension).
    pub fn strides(&self) -> &[usize] {
        self.inner.layout.strides()
    }

    /// The layout (shape, strides, offset) over the shared buffer.
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.inner.layout.ndim()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.inner.layout.numel()
    }

    /// Size of dimension `dim`; the same as [`size`](Self::size).
    #[track_caller]
    pub fn dim(&self, dim: usize) -> usize {
        check_dim("dim", dim, self.shape());
        self.shape()[dim]
    }

    /// Size of dimension `dim` (PyTorch's `x.size(dim)`; `x.size()` with no argument is
    /// [`shape`](Self::shape), and PyTorch's `x.dim()` is [`ndim`](Self::ndim)).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::zeros(&[4, 3]);
    /// assert_eq!((x.size(0), x.size(1), x.ndim(), x.numel()), (4, 3, 2, 12));
    /// ```
    #[track_caller]
    pub fn size(&self, dim: usize) -> usize {
        check_dim("size", dim, self.shape());
        self.shape()[dim]
    }

    /// True when the elements are stored in row-major order without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.inner.layout.is_contiguous()
    }

    /// A snapshot of the whole underlying buffer (index it through [`layout`](Self::layout)).
    pub(crate) fn data(&self) -> Arc<Vec<E>> {
        self.inner.storage.read()
    }

    pub(crate) fn storage(&self) -> &Arc<Storage<E>> {
        &self.inner.storage
    }

    /// The elements in logical (row-major) order.
    pub fn to_vec(&self) -> Vec<E> {
        let data = self.data();
        let l = self.layout();
        if l.is_contiguous() {
            return memory::copied(&data[l.offset()..l.offset() + l.numel()]);
        }
        kernels::map::gather_contiguous(Par::current(), &data, l)
    }

    /// The element at a multi-dimensional index.
    #[track_caller]
    pub fn get(&self, index: &[usize]) -> E {
        if index.len() != self.ndim() || index.iter().zip(self.shape()).any(|(i, d)| i >= d) {
            panic!("get: index {index:?} is out of bounds for shape {:?}", self.shape());
        }
        self.data()[self.layout().offset_of(index)]
    }

    /// The value of a tensor with exactly one element.
    ///
    /// # Panics
    /// If the tensor has more or fewer than one element.
    #[track_caller]
    pub fn item(&self) -> E {
        if self.numel() != 1 {
            panic!(
                "item: expected a tensor with one element, got shape {:?} ({} elements)",
                self.shape(),
                self.numel()
            );
        }
        self.data()[self.layout().offset()]
    }

    /// The same tensor on a fresh row-major buffer (or `self` if already contiguous).
    pub fn contiguous(&self) -> Self {
        if self.is_contiguous() {
            return self.clone();
        }
        Self::from_data(self.to_vec(), self.shape())
            .record("contiguous", vec![self.clone()], |c| vec![Some(c.grad().clone())])
    }

    /// Overwrites the values of this tensor in place (for optimizers and weight loading), as
    /// PyTorch does under `no_grad`. The tensor must be contiguous and `f` sees its elements in
    /// row-major order. A graph recorded before the update cannot be backpropagated afterwards:
    /// `backward` panics naming the op whose input changed (PyTorch's version counter), instead
    /// of silently using the new values.
    #[track_caller]
    pub fn update_(&self, f: impl FnOnce(&mut [E])) {
        assert!(self.is_contiguous(), "update_: tensor of shape {:?} is not contiguous", self.shape());
        let (off, n) = (self.layout().offset(), self.numel());
        self.inner.storage.write(|d| f(&mut d[off..off + n]));
    }
}

// ---------------------------------------------------------------------------------------------
// Graph bookkeeping
// ---------------------------------------------------------------------------------------------

impl<E: Element> Tensor<E> {
    /// Whether gradients flow to this tensor: a leaf marked with
    /// [`requires_grad`](Self::requires_grad), or the result of a recorded op.
    pub fn needs_grad(&self) -> bool {
        !matches!(self.inner.grad, GradState::None)
    }

    /// True for a tensor not made by a recorded op (a constant or a marked leaf).
    pub fn is_leaf(&self) -> bool {
        !matches!(self.inner.grad, GradState::Op { .. })
    }

    /// The name of the op that made this tensor, if it was recorded.
    pub fn op_name(&self) -> Option<&'static str> {
        self.node().map(|(n, _)| n.name())
    }

    /// The recorded op that made this tensor, and which of its outputs this is.
    pub(crate) fn node(&self) -> Option<(&Arc<Node<E>>, usize)> {
        match &self.inner.grad {
            GradState::Op { node, output } => Some((node, *output)),
            _ => None,
        }
    }

    /// Marks this tensor as a leaf whose gradient [`backward`](Self::backward) computes.
    ///
    /// Returns a handle that shares the data; the handle is a new leaf with its own identity if
    /// `self` was the result of an op or was shared with other handles.
    pub fn requires_grad(mut self) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner)
            && !matches!(inner.grad, GradState::Op { .. })
        {
            inner.grad = GradState::Leaf;
            return self;
        }
        let mut t = Self::from_storage(Arc::clone(&self.inner.storage), self.inner.layout.clone());
        Arc::get_mut(&mut t.inner).expect("fresh tensor is unique").grad = GradState::Leaf;
        t
    }

    /// A handle over the same data that is cut from the graph: no gradient flows through it.
    pub fn detach(&self) -> Self {
        Self::from_storage(Arc::clone(&self.inner.storage), self.inner.layout.clone())
    }

    /// Records a one-output op whose backward rule is the closure `backward` (returning whole
    /// gradients or [`Grad`]s); see [`record_outputs`].
    #[track_caller]
    pub(crate) fn record<G, F>(self, name: &'static str, inputs: impl IntoInputs<E>, backward: F) -> Self
    where
        G: Into<Grad<E>>,
        F: Fn(&Ctx<'_, E>) -> Vec<Option<G>> + Send + Sync + 'static,
    {
        self.record_op(Rule { name, f: backward }, inputs)
    }

    /// Records a one-output [`Op`] on this freshly computed tensor (see [`record_outputs`]).
    #[track_caller]
    pub(crate) fn record_op(self, op: impl Op<E>, inputs: impl IntoInputs<E>) -> Self {
        let mut out = self;
        record_on(std::slice::from_mut(&mut out), op, inputs.into_inputs(), std::panic::Location::caller());
        out
    }

    /// True when nobody else can observe this tensor's buffer and it is a plain row-major
    /// buffer with no graph: it may then be updated in place.
    fn is_unique_buffer(&self) -> bool {
        Arc::strong_count(&self.inner) == 1
            && Arc::strong_count(&self.inner.storage) == 1
            && self.is_contiguous()
            && self.layout().offset() == 0
            && self.is_leaf()
    }

    /// `self` if its buffer is unique (see `is_unique_buffer`), else a fresh row-major copy.
    pub(crate) fn into_unique(self) -> Tensor<E> {
        if self.is_unique_buffer() && self.inner.storage.try_write_unique(|_| ()).is_some() {
            return self;
        }
        Tensor::from_data(self.to_vec(), self.shape())
    }

    /// Runs `f` on this tensor's buffer if nobody else can observe it (see
    /// `is_unique_buffer`); `None` otherwise.
    pub(crate) fn write_unique<R>(&self, f: impl FnOnce(&mut [E]) -> R) -> Option<R> {
        if !self.is_unique_buffer() {
            return None;
        }
        self.inner.storage.try_write_unique(f)
    }
}

// ---------------------------------------------------------------------------------------------
// Display
// ---------------------------------------------------------------------------------------------

impl<E: Element> fmt::Debug for Tensor<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}>{:?} ", E::NAME, self.shape())?;
        fmt::Display::fmt(self, f)
    }
}

impl<E: Element> fmt::Display for Tensor<E> {
    /// Nested brackets like PyTorch; `{:.3}` sets the precision.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.to_vec();
        fn rec<E: Element>(f: &mut fmt::Formatter<'_>, v: &[E], shape: &[usize]) -> fmt::Result {
            let Some((&d, rest)) = shape.split_first() else {
                return match f.precision() {
                    Some(p) => write!(f, "{:.*}", p, v[0]),
                    None => write!(f, "{}", v[0]),
                };
            };
            let step = numel(rest);
            write!(f, "[")?;
            for i in 0..d {
                if i > 0 {
                    write!(f, ", ")?;
                }
                rec(f, &v[i * step..(i + 1) * step], rest)?;
            }
            write!(f, "]")
        }
        if v.is_empty() {
            return write!(f, "[]");
        }
        rec(f, &v, self.shape())
    }
}
