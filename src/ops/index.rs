//! Indexing: `index_select` and its adjoint `index_add` into zeros; `gather` (one index per
//! slice along a dim) and its adjoint `scatter`. Each pair is the other's backward, so both
//! can be differentiated any number of times.

use std::sync::Arc;

use crate::autograd::Grad;
use crate::layout::Layout;
use crate::shape::{check_dim, numel};
use crate::storage::Element;
use crate::tensor::Tensor;

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
        let data = self.data();
        let src = self.layout();
        let mut out = Vec::with_capacity(numel(&shape));
        // Outer dims before `dim`, then the selected slice, then the inner dims.
        let outer: usize = self.shape()[..dim].iter().product();
        let inner_shape = &self.shape()[dim + 1..];
        let inner_strides = &src.strides()[dim + 1..];
        let inner_len: usize = inner_shape.iter().product();
        let inner_contiguous = Layout::new(inner_shape.to_vec(), inner_strides.to_vec(), 0).is_contiguous();
        for o in 0..outer {
            // Offset of outer index `o` (row-major over dims before `dim`).
            let mut rem = o;
            let mut base = src.offset();
            for d in (0..dim).rev() {
                base += (rem % self.shape()[d]) * src.strides()[d];
                rem /= self.shape()[d];
            }
            if inner_contiguous {
                // Each selected slice is one run of memory (an embedding row, say): copy it whole.
                for &i in indices {
                    let start = base + i * src.strides()[dim];
                    out.extend_from_slice(&data[start..start + inner_len]);
                }
            } else {
                for &i in indices {
                    let l = Layout::new(inner_shape.to_vec(), inner_strides.to_vec(), base + i * src.strides()[dim]);
                    l.for_each_offset(|p| out.push(data[p]));
                }
            }
        }
        let idx: Arc<[usize]> = indices.into();
        Tensor::from_data(out, &shape).record_parts("index_select", vec![self.clone()], move |c| {
            vec![Some(Grad::IndexAdd { dim, indices: Arc::clone(&idx), part: c.grad.clone() })]
        })
    }

    /// The adjoint of `index_select`: zeros with `dim` of length `size`, into which slice `j` of
    /// `self` is added at position `indices[j]`. Its backward is `index_select`.
    #[track_caller]
    pub(crate) fn index_add_zeros(&self, dim: usize, indices: &Arc<[usize]>, size: usize) -> Tensor<E> {
        let mut shape = self.shape().to_vec();
        shape[dim] = size;
        let out = Tensor::zeros(&shape);
        out.add_part_(Grad::IndexAdd { dim, indices: Arc::clone(indices), part: self.detach() });
        let idx = Arc::clone(indices);
        out.record("index_add", vec![self.clone()], move |c| vec![Some(c.grad.index_select(dim, &idx))])
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
        let outer = self.layout().narrow(dim, 0, 1.min(size));
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
        let data = self.data();
        let stride = self.strides()[dim];
        let mut out = Vec::with_capacity(indices.len());
        let mut k = 0;
        outer.for_each_offset(|base| {
            out.push(data[base + indices[k] * stride]);
            k += 1;
        });
        let idx: Arc<[usize]> = indices.into();
        Tensor::from_data(out, &kshape)
            .record("gather", vec![self.clone()], move |c| vec![Some(c.grad.scatter(dim, &idx, size))])
    }

    /// The adjoint of `gather`: `self` has size 1 along `dim`; the result has size `size` there,
    /// zero except at the positions `indices` names. Its backward is `gather`.
    #[track_caller]
    pub(crate) fn scatter(&self, dim: usize, indices: &[usize], size: usize) -> Tensor<E> {
        let mut shape = self.shape().to_vec();
        shape[dim] = size;
        let mut out = crate::memory::zeroed(numel(&shape));
        let full = Layout::contiguous(&shape);
        let stride = full.strides()[dim];
        let vals = self.to_vec();
        let mut k = 0;
        full.narrow(dim, 0, 1).for_each_offset(|base| {
            out[base + indices[k] * stride] += vals[k];
            k += 1;
        });
        let idx: Arc<[usize]> = indices.into();
        Tensor::from_data(out, &shape)
            .record("scatter", vec![self.clone()], move |c| vec![Some(c.grad.gather(dim, &idx))])
    }
}
