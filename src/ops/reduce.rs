//! Reductions: `sum`, `sum_dim`, `mean`, `mean_dim`, `max_dim`, `min_dim`, `argmax`, `argmin`, and `sum_to_shape` (the backward
//! of broadcasting).

use crate::kernels::{Par, reduce};
use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;
use crate::tensor::shape::check_dim;

impl<E: Element> Tensor<E> {
    /// Sums over the given dims, keeping them with size 1 (the primitive behind every sum).
    /// ∂/∂x = the output gradient broadcast back to the input shape.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::ones(&[2, 3, 4]);
    /// assert_eq!(x.sum_dims_keepdim(&[0, 2]).to_vec(), vec![8.0, 8.0, 8.0]);
    /// ```
    #[track_caller]
    pub fn sum_dims_keepdim(&self, dims: &[usize]) -> Tensor<E> {
        let mut out_shape = self.shape().to_vec();
        for &d in dims {
            check_dim("sum", d, self.shape());
            out_shape[d] = 1;
        }
        let data = self.data();
        let out = reduce::sum_to(Par::current(), &data, self.layout(), &out_shape);
        let in_shape = self.shape().to_vec();
        Tensor::from_data(out, &out_shape)
            .record("sum", [self.clone()], move |c| vec![Some(c.grad().broadcast_to(&in_shape))])
    }

    /// Sum of all elements, as a tensor of shape `[]`.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
    /// assert_eq!(x.sum().item(), 10.0);
    /// ```
    #[track_caller]
    pub fn sum(&self) -> Tensor<E> {
        let dims: Vec<usize> = (0..self.ndim()).collect();
        self.sum_dims_keepdim(&dims).reshape(&[])
    }

    /// Sum over `dim`; with `keepdim` the dim stays with size 1.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
    /// assert_eq!(x.sum_dim(0, false).to_vec(), vec![4.0, 6.0]);
    /// assert_eq!(x.sum_dim(1, true).shape(), &[2, 1]);
    /// ```
    #[track_caller]
    pub fn sum_dim(&self, dim: usize, keepdim: bool) -> Tensor<E> {
        check_dim("sum_dim", dim, self.shape());
        let s = self.sum_dims_keepdim(&[dim]);
        if keepdim { s } else { s.squeeze(dim) }
    }

    /// Mean of all elements (shape `[]`).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 6.0], &[2, 2]);
    /// assert_eq!(x.mean().item(), 3.0);
    /// ```
    #[track_caller]
    pub fn mean(&self) -> Tensor<E> {
        let n = E::from_usize(self.numel()).unwrap_or_else(E::nan);
        self.sum().mul_scalar(E::one() / n)
    }

    /// Mean over `dim`.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 6.0], &[2, 2]);
    /// assert_eq!(x.mean_dim(1, false).to_vec(), vec![1.5, 4.5]);
    /// ```
    #[track_caller]
    pub fn mean_dim(&self, dim: usize, keepdim: bool) -> Tensor<E> {
        check_dim("mean_dim", dim, self.shape());
        let n = E::from_usize(self.shape()[dim]).unwrap_or_else(E::nan);
        self.sum_dim(dim, keepdim).mul_scalar(E::one() / n)
    }

    /// Max over `dim` and the position of the (first) max of each slice.
    /// ∂/∂x = the output gradient at each max's position, 0 elsewhere.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 2.0], &[2, 2]);
    /// let (m, idx) = x.max_dim(1, false);
    /// assert_eq!(m.to_vec(), vec![5.0, 3.0]);
    /// assert_eq!(idx, vec![1, 0]);
    /// ```
    #[track_caller]
    pub fn max_dim(&self, dim: usize, keepdim: bool) -> (Tensor<E>, Vec<usize>) {
        check_dim("max_dim", dim, self.shape());
        let size = self.shape()[dim];
        if size == 0 {
            panic!("max_dim: dim {dim} of shape {:?} is empty; the max of nothing is undefined", self.shape());
        }
        let data = self.data();
        let (vals, idx) = reduce::max_dim(&data, self.layout(), dim);
        let mut kshape = self.shape().to_vec();
        kshape[dim] = 1;
        let idx = std::sync::Arc::new(idx);
        let bidx = idx.clone();
        let out = Tensor::from_data(vals, &kshape)
            .record("max_dim", [self.clone()], move |c| vec![Some(c.grad().scatter(dim, &bidx, size))]);
        let out = if keepdim { out } else { out.squeeze(dim) };
        (out, std::sync::Arc::try_unwrap(idx).unwrap_or_else(|a| (*a).clone()))
    }

    /// Minimum along `dim` and the index of the minimum of each slice (the first one on ties);
    /// gradients flow to the minimum, like [`max_dim`](Self::max_dim)'s.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 2.0], &[2, 2]);
    /// let (m, idx) = x.min_dim(1, false);
    /// assert_eq!(m.to_vec(), vec![1.0, 2.0]);
    /// assert_eq!(idx, vec![0, 1]);
    /// ```
    #[track_caller]
    pub fn min_dim(&self, dim: usize, keepdim: bool) -> (Tensor<E>, Vec<usize>) {
        check_nonempty("min_dim", dim, self.shape());
        let (m, idx) = self.neg().max_dim(dim, keepdim);
        (m.neg(), idx)
    }

    /// The index of the largest value along `dim` (the first one on ties), as a tensor of whole
    /// numbers: `[N, C].argmax(1, false)` is the predicted class of each row, ready to compare
    /// with a tensor of class labels. Not differentiable (the result is a constant). Indices are
    /// exact up to 2²⁴ in `f32`.
    ///
    /// ```
    /// let logits = tensorgrad::Tensor::from_vec(vec![0.1f32, 2.0, -1.0, 3.0, 0.0, 1.0], &[2, 3]);
    /// assert_eq!(logits.argmax(1, false).to_vec(), vec![1.0, 0.0]);
    /// assert_eq!(logits.argmax(1, true).shape(), &[2, 1]);
    /// ```
    #[track_caller]
    pub fn argmax(&self, dim: usize, keepdim: bool) -> Tensor<E> {
        check_nonempty("argmax", dim, self.shape());
        let idx = crate::no_grad(|| self.max_dim(dim, keepdim).1);
        index_tensor(idx, self.shape(), dim, keepdim)
    }

    /// The index of the smallest value along `dim` (the first one on ties), as a tensor of whole
    /// numbers; see [`argmax`](Self::argmax).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![0.1f32, 2.0, -1.0, 3.0, 0.0, 1.0], &[2, 3]);
    /// assert_eq!(x.argmin(1, false).to_vec(), vec![2.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn argmin(&self, dim: usize, keepdim: bool) -> Tensor<E> {
        check_nonempty("argmin", dim, self.shape());
        let idx = crate::no_grad(|| self.min_dim(dim, keepdim).1);
        index_tensor(idx, self.shape(), dim, keepdim)
    }

    /// Sums a broadcast tensor back down to `shape` (the adjoint of
    /// [`broadcast_to`](Self::broadcast_to)).
    ///
    /// ```
    /// let g = tensorgrad::Tensor::<f32>::ones(&[4, 3]);
    /// assert_eq!(g.sum_to_shape(&[1, 3]).to_vec(), vec![4.0, 4.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn sum_to_shape(&self, shape: &[usize]) -> Tensor<E> {
        if self.shape() == shape {
            return self.clone();
        }
        let lead = self
            .ndim()
            .checked_sub(shape.len())
            .unwrap_or_else(|| panic!("sum_to_shape: cannot reduce shape {:?} to {shape:?}", self.shape()));
        let dims: Vec<usize> =
            (0..self.ndim()).filter(|&d| d < lead || (shape[d - lead] == 1 && self.shape()[d] != 1)).collect();
        self.sum_dims_keepdim(&dims).reshape(shape)
    }
}

/// Panics unless `dim` is a dim of `shape` with at least one element (the extreme of nothing
/// is undefined).
#[track_caller]
fn check_nonempty(op: &str, dim: usize, shape: &[usize]) {
    check_dim(op, dim, shape);
    if shape[dim] == 0 {
        panic!("{op}: dim {dim} of shape {shape:?} is empty; the extreme of nothing is undefined");
    }
}

/// Indices along `dim` of a tensor of `shape`, as a tensor of whole numbers shaped like the
/// reduction's output.
fn index_tensor<E: Element>(idx: Vec<usize>, shape: &[usize], dim: usize, keepdim: bool) -> Tensor<E> {
    let mut out_shape = shape.to_vec();
    if keepdim {
        out_shape[dim] = 1;
    } else {
        out_shape.remove(dim);
    }
    let values = idx.into_iter().map(|i| E::from_usize(i).unwrap_or_else(E::nan)).collect();
    Tensor::from_data(values, &out_shape)
}
