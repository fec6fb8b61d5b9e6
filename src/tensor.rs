//! The `Tensor` handle: constructors, accessors, graph bookkeeping and `Display`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;
use rand_distr::{Distribution, Normal, StandardNormal, Uniform};

use crate::autograd::{self, Backward, Ctx, Grad, Gradients, Node};
use crate::error::{Error, Result};
use crate::kernels;
use crate::layout::Layout;
use crate::shape::numel;
use crate::storage::{Element, Storage};

/// A process-unique identity of a tensor handle, the key of [`Gradients`].
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
    /// The result of a recorded op.
    Op(Node<E>),
}

pub(crate) struct Inner<E: Element> {
    id: TensorId,
    storage: Arc<Storage<E>>,
    layout: Layout,
    grad: GradState<E>,
}

impl<E: Element> Drop for Inner<E> {
    /// Frees a long chain of graph nodes iteratively, so dropping the loss of a 100-step
    /// unrolled network cannot overflow the stack.
    fn drop(&mut self) {
        let GradState::Op(node) = std::mem::replace(&mut self.grad, GradState::None) else {
            return;
        };
        let mut stack = node.inputs;
        drop(node.backward);
        while let Some(mut t) = stack.pop() {
            if let Some(inner) = Arc::get_mut(&mut t.inner) {
                if let GradState::Op(n) = std::mem::replace(&mut inner.grad, GradState::None) {
                    stack.extend(n.inputs);
                }
            }
        }
    }
}

impl<E: Element> Clone for Tensor<E> {
    fn clone(&self) -> Self {
        Tensor { inner: Arc::clone(&self.inner) }
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
        let mut data = crate::memory::take(numel(shape));
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
    pub fn rand_uniform(shape: &[usize], low: E, high: E, rng: &mut impl Rng) -> Self
    where
        E: rand_distr::uniform::SampleUniform,
    {
        let dist =
            Uniform::new(low, high).unwrap_or_else(|e| panic!("rand_uniform: invalid range [{low}, {high}): {e}"));
        Self::from_data((0..numel(shape)).map(|_| dist.sample(rng)).collect(), shape)
    }

    /// Values drawn from a normal distribution with the given mean and standard deviation.
    #[track_caller]
    pub fn randn(shape: &[usize], mean: E, std: E, rng: &mut impl Rng) -> Self
    where
        StandardNormal: Distribution<E>,
    {
        let dist = Normal::new(mean, std).unwrap_or_else(|e| panic!("randn: invalid standard deviation {std}: {e}"));
        Self::from_data((0..numel(shape)).map(|_| dist.sample(rng)).collect(), shape)
    }
}

// ---------------------------------------------------------------------------------------------
// Accessors
// ---------------------------------------------------------------------------------------------

impl<E: Element> Tensor<E> {
    /// The identity used to key [`Gradients`].
    pub fn id(&self) -> TensorId {
        self.inner.id
    }

    /// The shape.
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

    /// Size of dimension `dim`.
    #[track_caller]
    pub fn dim(&self, dim: usize) -> usize {
        crate::shape::check_dim("dim", dim, self.shape());
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
            return crate::memory::copied(&data[l.offset()..l.offset() + l.numel()]);
        }
        kernels::map::gather_contiguous(&data, l)
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

    /// Whether gradients flow to this tensor: a leaf marked with
    /// [`requires_grad`](Self::requires_grad), or the result of a recorded op.
    pub fn needs_grad(&self) -> bool {
        !matches!(self.inner.grad, GradState::None)
    }

    /// True for a tensor not made by a recorded op (a constant or a marked leaf).
    pub fn is_leaf(&self) -> bool {
        !matches!(self.inner.grad, GradState::Op(_))
    }

    /// The name of the op that made this tensor, if it was recorded.
    pub fn op_name(&self) -> Option<&'static str> {
        self.node().map(|n| n.op)
    }

    pub(crate) fn node(&self) -> Option<&Node<E>> {
        match &self.inner.grad {
            GradState::Op(n) => Some(n),
            _ => None,
        }
    }

    /// Marks this tensor as a leaf whose gradient [`backward`](Self::backward) computes.
    ///
    /// Returns a handle that shares the data; the handle is a new leaf with its own identity if
    /// `self` was the result of an op or was shared with other handles.
    pub fn requires_grad(mut self) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            if !matches!(inner.grad, GradState::Op(_)) {
                inner.grad = GradState::Leaf;
                return self;
            }
        }
        let mut t = Self::from_storage(Arc::clone(&self.inner.storage), self.inner.layout.clone());
        Arc::get_mut(&mut t.inner).expect("fresh tensor is unique").grad = GradState::Leaf;
        t
    }

    /// A handle over the same data that is cut from the graph: no gradient flows through it.
    pub fn detach(&self) -> Self {
        Self::from_storage(Arc::clone(&self.inner.storage), self.inner.layout.clone())
    }

    /// The same tensor on a fresh row-major buffer (or `self` if already contiguous).
    pub fn contiguous(&self) -> Self {
        if self.is_contiguous() {
            return self.clone();
        }
        Self::from_data(self.to_vec(), self.shape())
            .record("contiguous", vec![self.clone()], |c| vec![Some(c.grad.clone())])
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

    /// Attaches a backward rule to a freshly computed tensor if recording is on and some input
    /// needs a gradient; otherwise returns the tensor unchanged.
    #[track_caller]
    pub(crate) fn record(
        self,
        op: &'static str,
        inputs: Vec<Tensor<E>>,
        backward: impl Fn(&Ctx<'_, E>) -> Vec<Option<Tensor<E>>> + Send + Sync + 'static,
    ) -> Self {
        self.record_node(op, inputs, || Backward::Dense(Box::new(backward)))
    }

    /// Like [`record`](Self::record) for slicing ops whose backward returns parts of the input
    /// gradient (see [`Grad`]).
    #[track_caller]
    pub(crate) fn record_parts(
        self,
        op: &'static str,
        inputs: Vec<Tensor<E>>,
        backward: impl Fn(&Ctx<'_, E>) -> Vec<Option<Grad<E>>> + Send + Sync + 'static,
    ) -> Self {
        self.record_node(op, inputs, || Backward::Parts(Box::new(backward)))
    }

    #[track_caller]
    fn record_node(mut self, op: &'static str, inputs: Vec<Tensor<E>>, backward: impl FnOnce() -> Backward<E>) -> Self {
        let location = std::panic::Location::caller();
        if autograd::is_anomaly_enabled() {
            if let Some((k, v)) = autograd::first_non_finite(&self) {
                if inputs.iter().all(|t| autograd::first_non_finite(t).is_none()) {
                    panic!("anomaly: `{op}` produced {v} at element {k} from finite inputs (called at {location})");
                }
            }
        }
        if !autograd::is_grad_enabled() || !inputs.iter().any(Tensor::needs_grad) {
            return self;
        }
        let backward = backward();
        let versions = inputs.iter().map(|t| t.storage().version()).collect();
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.grad = GradState::Op(Node { op, inputs, versions, location, backward });
                self
            }
            None => {
                let mut t = Self::from_storage(Arc::clone(&self.inner.storage), self.inner.layout.clone());
                Arc::get_mut(&mut t.inner).expect("fresh tensor is unique").grad =
                    GradState::Op(Node { op, inputs, versions, location, backward });
                t
            }
        }
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

    /// Adds a part of a gradient into the region of this (unique, row-major) buffer it belongs to.
    pub(crate) fn add_part_(&self, part: Grad<E>) {
        let full = Layout::contiguous(self.shape());
        let shape = self.shape();
        self.inner
            .storage
            .try_write_unique(|buf| match part {
                Grad::Full(t) => crate::ops::add_into(buf, &full, &t),
                Grad::Narrow { dim, start, part } => {
                    let len = part.shape()[dim];
                    crate::ops::add_into(buf, &full.narrow(dim, start, len), &part);
                }
                Grad::IndexAdd { dim, indices, part } => {
                    // Slice j of `part` along `dim` goes to slice indices[j]: with both row-major,
                    // those are runs of `inner` elements (e.g. one embedding row per token).
                    let outer: usize = shape[..dim].iter().product();
                    let inner: usize = shape[dim + 1..].iter().product();
                    let (size, count) = (shape[dim], indices.len());
                    let data = part.data();
                    let copy;
                    let src: &[E] = if part.is_contiguous() {
                        &data[part.layout().offset()..part.layout().offset() + part.numel()]
                    } else {
                        copy = part.to_vec();
                        &copy
                    };
                    for o in 0..outer {
                        for (j, &i) in indices.iter().enumerate() {
                            let dst = &mut buf[(o * size + i) * inner..][..inner];
                            let s = &src[(o * count + j) * inner..][..inner];
                            dst.iter_mut().zip(s).for_each(|(d, &x)| *d += x);
                        }
                    }
                }
            })
            .expect("add_part_: the accumulation buffer must be unique");
    }

    /// `self + g`, in place when `self` is a contiguous buffer nobody else can see.
    pub(crate) fn add_assign_owned(self, g: &Tensor<E>) -> Tensor<E> {
        if self.is_unique_buffer() && self.shape() == g.shape() {
            let gd = g.data();
            let gl = g.layout().clone();
            let done = self.inner.storage.try_write_unique(|d| {
                if gl.is_contiguous() {
                    for (x, &y) in d.iter_mut().zip(&gd[gl.offset()..gl.offset() + gl.numel()]) {
                        *x += y;
                    }
                } else {
                    let mut i = 0;
                    gl.for_each_offset(|o| {
                        d[i] += gd[o];
                        i += 1;
                    });
                }
            });
            if done.is_some() {
                return self;
            }
        }
        &self + g
    }

    /// Backpropagates from this scalar (one-element) tensor and returns the gradient of every
    /// leaf it depends on.
    ///
    /// # Panics
    /// If the tensor has more than one element: give the output gradient with
    /// [`backward_with_grad`](Self::backward_with_grad).
    #[track_caller]
    pub fn backward(&self) -> Gradients<E> {
        if self.numel() != 1 {
            panic!(
                "backward: can only start from a tensor with one element, got shape {:?}; use backward_with_grad to give the output gradient",
                self.shape()
            );
        }
        autograd::run_backward(self, Tensor::ones(self.shape()), false)
    }

    /// Backpropagates from this tensor with an explicit output gradient of the same shape
    /// (a vector–Jacobian product).
    #[track_caller]
    pub fn backward_with_grad(&self, grad: &Tensor<E>) -> Gradients<E> {
        autograd::run_backward(self, grad.clone(), false)
    }

    /// Like [`backward`](Self::backward), but records the backward pass itself, so the returned
    /// gradients can be differentiated again (PyTorch's `create_graph=True`).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// // y = x³, dy/dx = 3x², d²y/dx² = 6x
    /// let x = Tensor::from_vec(vec![2.0f64], &[1]).requires_grad();
    /// let y = x.powf(3.0).sum();
    /// let dx = y.backward_with_graph().get(&x).unwrap().clone();
    /// assert_eq!(dx.to_vec(), vec![12.0]);
    /// let d2x = dx.sum().backward();
    /// assert_eq!(d2x.get(&x).unwrap().to_vec(), vec![12.0]);
    /// ```
    #[track_caller]
    pub fn backward_with_graph(&self) -> Gradients<E> {
        if self.numel() != 1 {
            panic!("backward_with_graph: can only start from a tensor with one element, got shape {:?}", self.shape());
        }
        autograd::run_backward(self, Tensor::ones(self.shape()), true)
    }

    /// [`backward_with_grad`](Self::backward_with_grad) that records the backward pass.
    #[track_caller]
    pub fn backward_with_grad_and_graph(&self, grad: &Tensor<E>) -> Gradients<E> {
        autograd::run_backward(self, grad.clone(), true)
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
