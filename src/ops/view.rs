//! Shape ops. The views (`t`, `transpose`, `permute`, `narrow`, `broadcast_to`, `squeeze`,
//! `unsqueeze`, `reshape` of contiguous data) share the buffer and copy nothing; `cat` and
//! `stack` copy. Each backward is the adjoint view or op.

use std::borrow::Borrow;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::kernels::slice::{add_strided, copy_strided};
use crate::tensor::element::Element;
use crate::tensor::handle::{Grad, Part, Tensor};
use crate::tensor::layout::Layout;
use crate::tensor::memory;
use crate::tensor::shape::{check_dim, numel};

impl<E: Element> Tensor<E> {
    /// A new tensor over the same buffer with another layout.
    fn view(&self, layout: Layout) -> Tensor<E> {
        Tensor::from_storage(Arc::clone(self.storage()), layout)
    }

    /// Transpose of a 2-D tensor (a view).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::arange(6).reshape(&[2, 3]);
    /// assert_eq!(x.t().to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn t(&self) -> Tensor<E> {
        if self.ndim() != 2 {
            panic!("t: expects a 2-D tensor, got shape {:?}; use transpose(a, b) for other ranks", self.shape());
        }
        self.transpose(0, 1)
    }

    /// Swaps dims `a` and `b` (a view). Its backward swaps them back.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::zeros(&[2, 3, 4]);
    /// assert_eq!(x.transpose(0, 2).shape(), &[4, 3, 2]);
    /// ```
    #[track_caller]
    pub fn transpose(&self, a: usize, b: usize) -> Tensor<E> {
        self.view(self.layout().transpose(a, b))
            .record("transpose", [self.clone()], move |c| vec![Some(c.grad().transpose(a, b))])
    }

    /// Reorders dims: dim `i` of the result is dim `perm[i]` of `self` (a view).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::zeros(&[2, 3, 4]);
    /// assert_eq!(x.permute(&[2, 0, 1]).shape(), &[4, 2, 3]);
    /// ```
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Tensor<E> {
        let layout = self.layout().permute(perm);
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        self.view(layout).record("permute", [self.clone()], move |c| vec![Some(c.grad().permute(&inverse))])
    }

    /// Elements `start..start + len` of `dim` (a view). Its backward places the gradient into a
    /// zero tensor of the input's shape.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0], &[2, 3]);
    /// assert_eq!(x.narrow(1, 1, 2).to_vec(), vec![1.0, 2.0, 4.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Tensor<E> {
        let layout = self.layout().narrow(dim, start, len);
        self.view(layout).record("narrow", [self.clone()], move |c| {
            vec![Some(Grad::part(NarrowPart { dim, start, values: c.grad().clone() }))]
        })
    }

    /// The adjoint of `narrow`: a zero tensor with `dim` of length `size` whose range
    /// `start..start + len` holds `self`. Its backward is `narrow`.
    #[track_caller]
    pub(crate) fn unnarrow(&self, dim: usize, start: usize, size: usize) -> Tensor<E> {
        let mut shape = self.shape().to_vec();
        let len = shape[dim];
        shape[dim] = size;
        let mut out = memory::zeroed(numel(&shape));
        let region = Layout::contiguous(&shape).narrow(dim, start, len);
        add_strided(&mut out, &region, &self.data(), self.layout());
        Tensor::from_data(out, &shape)
            .record("unnarrow", [self.clone()], move |c| vec![Some(c.grad().narrow(dim, start, len))])
    }

    /// Stretches dims of size 1 (and prepends dims) to `shape`, with stride 0 (a view).
    /// Its backward sums the gradient over the stretched dims.
    ///
    /// ```
    /// let b = tensorgrad::Tensor::from_vec(vec![1.0f32, 2.0], &[2]);
    /// assert_eq!(b.broadcast_to(&[2, 2]).to_vec(), vec![1.0, 2.0, 1.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor<E> {
        if self.shape() == shape {
            return self.clone();
        }
        let layout = self.layout().broadcast_to(shape);
        let in_shape = self.shape().to_vec();
        self.view(layout).record("broadcast_to", [self.clone()], move |c| vec![Some(c.grad().sum_to_shape(&in_shape))])
    }

    /// Inserts a dim of size 1 at `dim` (a view).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::zeros(&[3]);
    /// assert_eq!(x.unsqueeze(0).shape(), &[1, 3]);
    /// ```
    #[track_caller]
    pub fn unsqueeze(&self, dim: usize) -> Tensor<E> {
        let layout = self.layout().unsqueeze(dim);
        self.view(layout).record("unsqueeze", [self.clone()], move |c| vec![Some(c.grad().squeeze(dim))])
    }

    /// Removes dim `dim`, which must have size 1 (a view).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::zeros(&[3, 1]);
    /// assert_eq!(x.squeeze(1).shape(), &[3]);
    /// ```
    #[track_caller]
    pub fn squeeze(&self, dim: usize) -> Tensor<E> {
        let layout = self.layout().squeeze(dim);
        self.view(layout).record("squeeze", [self.clone()], move |c| vec![Some(c.grad().unsqueeze(dim))])
    }

    /// The same elements in a new shape with the same number of elements. A view whenever the
    /// strides can express it (always for contiguous data), otherwise a copy.
    ///
    /// This is PyTorch's `view` as well as its `reshape`: where `view` would refuse a layout the
    /// strides cannot express, this copies instead. There is no `-1` for an inferred dim: the
    /// shape is `&[usize]`; [`flatten`](Self::flatten) covers the common case.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::arange(6).reshape(&[2, 3]);
    /// assert_eq!(x.get(&[1, 0]), 3.0);
    /// ```
    #[doc(alias = "view")]
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Tensor<E> {
        if numel(shape) != self.numel() {
            panic!(
                "reshape: cannot reshape {:?} ({} elements) into {shape:?} ({} elements)",
                self.shape(),
                self.numel(),
                numel(shape)
            );
        }
        if self.shape() == shape {
            return self.clone();
        }
        let in_shape = self.shape().to_vec();
        let out = match self.layout().reshape(shape) {
            Some(layout) => self.view(layout),
            None => Tensor::from_data(self.to_vec(), shape),
        };
        out.record("reshape", [self.clone()], move |c| vec![Some(c.grad().reshape(&in_shape))])
    }

    /// Dims `start_dim..=end_dim` merged into one (PyTorch's `flatten`): `[N, C, H, W]` with
    /// `flatten(1, 3)` is `[N, C·H·W]`. A view for contiguous data, like [`reshape`](Self::reshape).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::zeros(&[2, 3, 4, 5]);
    /// assert_eq!(x.flatten(1, 3).shape(), &[2, 60]);
    /// assert_eq!(x.flatten(0, 1).shape(), &[6, 4, 5]);
    /// ```
    ///
    /// # Panics
    /// If `start_dim > end_dim` or `end_dim` is not a dim of the tensor.
    #[track_caller]
    pub fn flatten(&self, start_dim: usize, end_dim: usize) -> Tensor<E> {
        if self.ndim() == 0 && start_dim == 0 && end_dim == 0 {
            return self.reshape(&[1]);
        }
        check_dim("flatten", end_dim, self.shape());
        if start_dim > end_dim {
            panic!("flatten: start_dim {start_dim} is after end_dim {end_dim} (shape {:?})", self.shape());
        }
        let s = self.shape();
        let merged: usize = s[start_dim..=end_dim].iter().product();
        let shape: Vec<usize> =
            s[..start_dim].iter().copied().chain([merged]).chain(s[end_dim + 1..].iter().copied()).collect();
        self.reshape(&shape)
    }

    /// Splits dim `dim` into dims of `sizes` (PyTorch's `unflatten`, the inverse of
    /// [`flatten`](Self::flatten)): `[N, C·H·W]` with `unflatten(1, &[C, H, W])` is
    /// `[N, C, H, W]`. A view for contiguous data, like [`reshape`](Self::reshape).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::zeros(&[2, 60]);
    /// assert_eq!(x.unflatten(1, &[3, 4, 5]).shape(), &[2, 3, 4, 5]);
    /// ```
    ///
    /// # Panics
    /// If `dim` is not a dim of the tensor or `sizes` do not multiply to its size.
    #[track_caller]
    pub fn unflatten(&self, dim: usize, sizes: &[usize]) -> Tensor<E> {
        check_dim("unflatten", dim, self.shape());
        let s = self.shape();
        if numel(sizes) != s[dim] || sizes.is_empty() {
            panic!(
                "unflatten: sizes {sizes:?} multiply to {}, but dim {dim} of shape {s:?} has size {}",
                numel(sizes),
                s[dim]
            );
        }
        let shape: Vec<usize> = s[..dim].iter().chain(sizes).chain(&s[dim + 1..]).copied().collect();
        self.reshape(&shape)
    }

    /// Joins tensors along an existing dim; all other dims must agree. Takes owned handles
    /// (`&[a, b]`) or references (`&[&a, &b]`). Its backward hands each input its `narrow` of the
    /// gradient.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2]);
    /// let b = Tensor::from_vec(vec![3.0f32, 4.0], &[1, 2]);
    /// assert_eq!(Tensor::cat(&[&a, &b], 1).shape(), &[1, 4]);
    /// assert_eq!(Tensor::cat(&[a, b], 0).shape(), &[2, 2]);
    /// ```
    #[track_caller]
    pub fn cat<T: Borrow<Tensor<E>>>(tensors: &[T], dim: usize) -> Tensor<E> {
        let tensors: SmallVec<[&Tensor<E>; 8]> = tensors.iter().map(Borrow::borrow).collect();
        let Some(&first) = tensors.first() else {
            panic!("cat: needs at least one tensor");
        };
        check_dim("cat", dim, first.shape());
        let mut shape = first.shape().to_vec();
        shape[dim] = 0;
        for t in &tensors {
            let ok = t.ndim() == first.ndim()
                && t.shape().iter().zip(first.shape()).enumerate().all(|(d, (a, b))| d == dim || a == b);
            if !ok {
                let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
                panic!("cat: shapes {shapes:?} differ outside dim {dim}");
            }
            shape[dim] += t.shape()[dim];
        }
        let mut out = memory::take(numel(&shape));
        let full = Layout::contiguous(&shape);
        let mut starts = Vec::with_capacity(tensors.len());
        let mut start = 0;
        for t in &tensors {
            starts.push(start);
            copy_strided(&mut out, &full.narrow(dim, start, t.shape()[dim]), &t.data(), t.layout());
            start += t.shape()[dim];
        }
        let lens: Vec<usize> = tensors.iter().map(|t| t.shape()[dim]).collect();
        Tensor::from_data(out, &shape).record("cat", tensors.iter().map(|&t| t.clone()).collect::<Vec<_>>(), move |c| {
            (0..lens.len()).map(|i| c.needs(i).then(|| c.grad().narrow(dim, starts[i], lens[i]))).collect()
        })
    }

    /// Joins tensors of equal shape along a new dim `dim`; owned handles or references, as
    /// [`cat`](Self::cat).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let (a, b) = (Tensor::from_vec(vec![1.0f32, 2.0], &[2]), Tensor::from_vec(vec![3.0f32, 4.0], &[2]));
    /// assert_eq!(Tensor::stack(&[&a, &b], 0).shape(), &[2, 2]);
    /// assert_eq!(Tensor::stack(&[a, b], 1).to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn stack<T: Borrow<Tensor<E>>>(tensors: &[T], dim: usize) -> Tensor<E> {
        let tensors: SmallVec<[&Tensor<E>; 8]> = tensors.iter().map(Borrow::borrow).collect();
        let Some(&first) = tensors.first() else {
            panic!("stack: needs at least one tensor");
        };
        if let Some(t) = tensors.iter().find(|t| t.shape() != first.shape()) {
            panic!("stack: all tensors must have the same shape, got {:?} and {:?}", first.shape(), t.shape());
        }
        if dim > first.ndim() {
            panic!(
                "stack: dim {dim} is out of range for tensors of shape {:?} (valid: 0..={})",
                first.shape(),
                first.ndim()
            );
        }
        let parts: Vec<Tensor<E>> = tensors.iter().map(|t| t.unsqueeze(dim)).collect();
        Tensor::cat(&parts, dim)
    }
}

/// The gradient of `input.narrow(dim, start, values.shape()[dim])`: `values` belong in that
/// region of the input's gradient.
struct NarrowPart<E: Element> {
    dim: usize,
    start: usize,
    values: Tensor<E>,
}

impl<E: Element> Part<E> for NarrowPart<E> {
    fn values(&self) -> &Tensor<E> {
        &self.values
    }

    fn add_to(&self, buf: &mut [E], shape: &[usize]) {
        let len = self.values.shape()[self.dim];
        let region = Layout::contiguous(shape).narrow(self.dim, self.start, len);
        add_strided(buf, &region, &self.values.data(), self.values.layout());
    }

    fn materialize(self: Box<Self>, shape: &[usize]) -> Tensor<E> {
        self.values.unnarrow(self.dim, self.start, shape[self.dim])
    }
}
