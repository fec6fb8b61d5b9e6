//! Indexing: `index_select` and its adjoint `index_add` into zeros; `gather` (one index per
//! slice along a dim) and its adjoint `scatter`. Each pair is the other's backward, so both
//! can be differentiated any number of times.

use std::sync::Arc;

use crate::kernels::index;
use crate::tensor::element::Element;
use crate::tensor::handle::{Grad, Part, Tensor};
use crate::tensor::memory;
use crate::tensor::shape::{check_dim, numel};

#[track_caller]
fn check_indices(op: &str, indices: &[usize], dim: usize, size: usize) {
    if let Some((pos, &i)) = indices.iter().enumerate().find(|&(_, &i)| i >= size) {
        panic!("{op}: index {i} at position {pos} is out of range for dim {dim} of size {size}");
    }
}

impl<E: Element> Tensor<E> {
    /// The slices `indices[0], indices[1], …` of `dim`, in that order (repeats allowed).
    /// ∂/∂x adds each output slice's gradient into the slice it came from.
    ///
    /// ```
    /// let table = tensorgrad::Tensor::<f32>::arange(6).reshape(&[3, 2]);
    /// assert_eq!(table.index_select(0, &[2, 0, 2]).to_vec(), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn index_select(&self, dim: usize, indices: &[usize]) -> Tensor<E> {
        check_dim("index_select", dim, self.shape());
        let size = self.shape()[dim];
        check_indices("index_select", indices, dim, size);
        let mut shape = self.shape().to_vec();
        shape[dim] = indices.len();
        let out = index::index_select(&self.data(), self.layout(), dim, indices);
        let idx: Arc<[usize]> = indices.into();
        Tensor::from_data(out, &shape).record("index_select", [self.clone()], move |c| {
            vec![Some(Grad::part(IndexAddPart { dim, indices: Arc::clone(&idx), values: c.grad().clone() }))]
        })
    }

    /// The adjoint of `index_select`: zeros with `dim` of length `size`, into which slice `j` of
    /// `self` is added at position `indices[j]`. Its backward is `index_select`.
    #[track_caller]
    pub(crate) fn index_add_zeros(&self, dim: usize, indices: &Arc<[usize]>, size: usize) -> Tensor<E> {
        let mut shape = self.shape().to_vec();
        shape[dim] = size;
        let mut out = memory::zeroed(numel(&shape));
        index::index_add(&mut out, &shape, dim, indices, &self.to_vec());
        let idx = Arc::clone(indices);
        Tensor::from_data(out, &shape)
            .record("index_add", [self.clone()], move |c| vec![Some(c.grad().index_select(dim, &idx))])
    }

    /// Picks one element from each slice along `dim`: the result has the shape of `self` with
    /// `dim` of size 1, and `indices` lists, in row-major order of that shape, which position
    /// of each slice to take. ∂/∂x puts each gradient back at the picked position.
    ///
    /// ```
    /// let logits = tensorgrad::Tensor::from_vec(vec![0.1f32, 0.9, 0.7, 0.3], &[2, 2]);
    /// assert_eq!(logits.gather(1, &[1, 0]).to_vec(), vec![0.9, 0.7]);
    /// ```
    #[track_caller]
    pub fn gather(&self, dim: usize, indices: &[usize]) -> Tensor<E> {
        check_dim("gather", dim, self.shape());
        let size = self.shape()[dim];
        let mut kshape = self.shape().to_vec();
        kshape[dim] = 1;
        if indices.len() != numel(&kshape) {
            panic!(
                "gather: {} indices given, but a tensor of shape {:?} has {} slices along dim {dim}",
                indices.len(),
                self.shape(),
                numel(&kshape)
            );
        }
        check_indices("gather", indices, dim, size);
        let out = index::gather(&self.data(), self.layout(), dim, indices);
        let idx: Arc<[usize]> = indices.into();
        Tensor::from_data(out, &kshape)
            .record("gather", [self.clone()], move |c| vec![Some(c.grad().scatter(dim, &idx, size))])
    }

    /// The adjoint of `gather`: `self` has size 1 along `dim`; the result has size `size` there,
    /// zero except at the positions `indices` names. Its backward is `gather`.
    #[track_caller]
    pub(crate) fn scatter(&self, dim: usize, indices: &[usize], size: usize) -> Tensor<E> {
        let mut shape = self.shape().to_vec();
        shape[dim] = size;
        let out = index::scatter(&shape, dim, indices, &self.to_vec());
        let idx: Arc<[usize]> = indices.into();
        Tensor::from_data(out, &shape)
            .record("scatter", [self.clone()], move |c| vec![Some(c.grad().gather(dim, &idx))])
    }
}

/// The gradient of `input.index_select(dim, indices)`: slice `j` of `values` along `dim` belongs
/// at position `indices[j]` of the input's gradient (repeats add up).
struct IndexAddPart<E: Element> {
    dim: usize,
    indices: Arc<[usize]>,
    values: Tensor<E>,
}

impl<E: Element> Part<E> for IndexAddPart<E> {
    fn values(&self) -> &Tensor<E> {
        &self.values
    }

    fn add_to(&self, buf: &mut [E], shape: &[usize]) {
        let data = self.values.data();
        let l = self.values.layout();
        let copy;
        let src: &[E] = if l.is_contiguous() {
            &data[l.offset()..l.offset() + l.numel()]
        } else {
            copy = self.values.to_vec();
            &copy
        };
        index::index_add(buf, shape, self.dim, &self.indices, src);
    }

    fn materialize(self: Box<Self>, shape: &[usize]) -> Tensor<E> {
        self.values.index_add_zeros(self.dim, &self.indices, shape[self.dim])
    }
}
