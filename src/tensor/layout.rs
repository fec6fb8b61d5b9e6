//! `Layout`: how a tensor's logical indices map onto its buffer (shape, strides, offset), the
//! view constructors that make new layouts over the same buffer, and strided iteration.

use smallvec::SmallVec;

use crate::tensor::shape::{check_dim, numel};

/// A shape or a list of strides. Up to four dims sit inline, so making the layout of a tensor of
/// the usual ranks allocates nothing (two heap `Vec`s per tensor were a sixth of a tiny op).
type Dims = SmallVec<[usize; 4]>;

/// Row-major strides of `shape`, inline for small ranks.
fn row_major_strides(shape: &[usize]) -> Dims {
    let mut strides = Dims::from_elem(0, shape.len());
    let mut acc = 1;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d;
    }
    strides
}

/// Shape, strides (in elements) and the offset of element `[0, 0, …]` in the buffer.
///
/// Invariant: for every in-range index `i`, `offset + Σ i[d]·strides[d]` is in bounds of the
/// buffer the layout is used with. A stride of 0 marks a broadcast dimension.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Dims,
    strides: Dims,
    offset: usize,
}

impl Layout {
    /// A row-major layout starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        let n = shape.len();
        if n <= 4 {
            // Built in plain arrays and moved in whole: this runs for every new tensor, and
            // the general path below costs several times more for the usual small ranks.
            let (mut dims, mut strides) = ([0; 4], [0; 4]);
            dims[..n].copy_from_slice(shape);
            let mut acc = 1;
            for d in (0..n).rev() {
                strides[d] = acc;
                acc *= dims[d];
            }
            return Layout {
                shape: Dims::from_buf_and_len(dims, n),
                strides: Dims::from_buf_and_len(strides, n),
                offset: 0,
            };
        }
        Layout { shape: Dims::from_slice(shape), strides: row_major_strides(shape), offset: 0 }
    }

    pub(crate) fn new(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Self {
        debug_assert_eq!(shape.len(), strides.len());
        // `from_vec` moves short vectors inline (and frees them), so every layout is alike.
        Layout { shape: Dims::from_vec(shape), strides: Dims::from_vec(strides), offset }
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The stride of each dimension, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Position of the first element in the buffer.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// True when the elements sit in row-major order with no gaps (dims of size 1 may have any
    /// stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// Buffer position of a logical index.
    pub fn offset_of(&self, index: &[usize]) -> usize {
        self.offset + index.iter().zip(&self.strides).map(|(i, s)| i * s).sum::<usize>()
    }

    /// Swaps two dimensions.
    #[track_caller]
    pub fn transpose(&self, a: usize, b: usize) -> Layout {
        check_dim("transpose", a, &self.shape);
        check_dim("transpose", b, &self.shape);
        let mut l = self.clone();
        l.shape.swap(a, b);
        l.strides.swap(a, b);
        l
    }

    /// Reorders the dimensions: dimension `i` of the result is dimension `perm[i]` of `self`.
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Layout {
        let n = self.ndim();
        let mut seen: SmallVec<[bool; 8]> = smallvec::smallvec![false; n];
        let valid = perm.len() == n && perm.iter().all(|&p| p < n && !std::mem::replace(&mut seen[p], true));
        if !valid {
            panic!("permute: {perm:?} is not a permutation of the {n} dims of a tensor of shape {:?}", self.shape);
        }
        Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        }
    }

    /// The sub-range `start..start + len` of dimension `dim`.
    #[track_caller]
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Layout {
        check_dim("narrow", dim, &self.shape);
        let size = self.shape[dim];
        if start.checked_add(len).is_none_or(|end| end > size) {
            panic!(
                "narrow: range {start}..{} is out of bounds for dim {dim} of size {size} (shape {:?})",
                start.saturating_add(len),
                self.shape
            );
        }
        let mut l = self.clone();
        if len > 0 {
            l.offset += start * self.strides[dim];
        }
        l.shape[dim] = len;
        l
    }

    /// Stretches dims of size 1 (and adds leading dims) to `shape` with stride 0.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Layout {
        let fail = || -> ! { panic!("broadcast_to: cannot broadcast shape {:?} to {shape:?}", self.shape) };
        if shape.len() < self.ndim() {
            fail();
        }
        let lead = shape.len() - self.ndim();
        let mut strides: Dims = smallvec::smallvec![0; shape.len()];
        for (i, &target) in shape.iter().enumerate().skip(lead) {
            let (d, s) = (self.shape[i - lead], self.strides[i - lead]);
            strides[i] = if d == target {
                s
            } else if d == 1 {
                0
            } else {
                fail()
            };
        }
        Layout { shape: Dims::from_slice(shape), strides, offset: self.offset }
    }

    /// Inserts a dimension of size 1 at position `dim` (`0..=ndim`).
    #[track_caller]
    pub fn unsqueeze(&self, dim: usize) -> Layout {
        if dim > self.ndim() {
            panic!(
                "unsqueeze: dim {dim} is out of range for a tensor of shape {:?} (valid: 0..={})",
                self.shape,
                self.ndim()
            );
        }
        let stride = if dim < self.ndim() { self.strides[dim] * self.shape[dim] } else { 1 };
        let mut l = self.clone();
        l.shape.insert(dim, 1);
        l.strides.insert(dim, stride);
        l
    }

    /// Removes dimension `dim`, which must have size 1.
    #[track_caller]
    pub fn squeeze(&self, dim: usize) -> Layout {
        check_dim("squeeze", dim, &self.shape);
        if self.shape[dim] != 1 {
            panic!("squeeze: dim {dim} has size {}, not 1 (shape {:?})", self.shape[dim], self.shape);
        }
        let mut l = self.clone();
        l.shape.remove(dim);
        l.strides.remove(dim);
        l
    }

    /// The same elements seen with a new shape, if strides can express it without a copy.
    ///
    /// Works dimension group by group: each run of old dims that merges into (or splits into)
    /// new dims must itself be contiguous relative to its innermost stride.
    pub fn reshape(&self, shape: &[usize]) -> Option<Layout> {
        debug_assert_eq!(numel(shape), self.numel());
        if self.is_contiguous() {
            let mut l = Layout::contiguous(shape);
            l.offset = self.offset;
            return Some(l);
        }
        // Drop size-1 dims of the old layout; they constrain nothing.
        let old: SmallVec<[(usize, usize); 4]> =
            self.shape.iter().zip(&self.strides).filter(|(d, _)| **d != 1).map(|(&d, &s)| (d, s)).collect();
        let mut new_strides: Dims = smallvec::smallvec![0; shape.len()];
        let (mut i, mut j) = (0, 0);
        while j < shape.len() {
            if shape[j] == 1 {
                new_strides[j] = 0;
                j += 1;
                continue;
            }
            if i >= old.len() {
                return None;
            }
            // Grow a group on each side until the element counts agree.
            let (i0, j0) = (i, j);
            let (mut po, mut pn) = (old[i].0, shape[j]);
            i += 1;
            j += 1;
            while po != pn {
                if po < pn {
                    if i >= old.len() {
                        return None;
                    }
                    po *= old[i].0;
                    i += 1;
                } else {
                    while j < shape.len() && shape[j] == 1 {
                        j += 1;
                    }
                    if j >= shape.len() {
                        return None;
                    }
                    pn *= shape[j];
                    j += 1;
                }
            }
            // The old group must be mergeable: stride[k] == stride[k+1] * size[k+1].
            for k in i0..i - 1 {
                if old[k].1 != old[k + 1].1 * old[k + 1].0 {
                    return None;
                }
            }
            let mut stride = old[i - 1].1;
            for jj in (j0..j).rev() {
                new_strides[jj] = stride;
                stride *= shape[jj];
            }
        }
        if i < old.len() {
            return None;
        }
        Some(Layout { shape: Dims::from_slice(shape), strides: new_strides, offset: self.offset })
    }

    /// Calls `f(offset)` for every element, in logical (row-major) order.
    pub fn for_each_offset(&self, mut f: impl FnMut(usize)) {
        for_each_row(&self.shape, [&self.strides], [self.offset], |[o], len, [s]| {
            for k in 0..len {
                f(o + k * s);
            }
        });
    }

    /// All buffer offsets, in logical order.
    pub fn offsets(&self) -> Vec<usize> {
        let mut v = Vec::with_capacity(self.numel());
        self.for_each_offset(|o| v.push(o));
        v
    }
}

/// Walks `K` layouts of the same `shape` in lockstep, one innermost row at a time.
///
/// `f(offsets, len, inner_strides)` is called once per row, in logical order. Adjacent dims that
/// every layout stores contiguously relative to each other are merged first, so a contiguous
/// tensor is a single row and a broadcast bias is a row per outer index.
pub(crate) fn for_each_row<const K: usize>(
    shape: &[usize],
    strides: [&[usize]; K],
    offsets: [usize; K],
    mut f: impl FnMut([usize; K], usize, [usize; K]),
) {
    if shape.contains(&0) {
        return;
    }
    // Merge dims (innermost first) where all K layouts agree they are contiguous.
    // Inline for small ranks: the strided path of a small op should not allocate.
    let mut dims: SmallVec<[(usize, [usize; K]); 4]> = SmallVec::with_capacity(shape.len());
    for d in (0..shape.len()).rev() {
        if shape[d] == 1 {
            continue;
        }
        let s: [usize; K] = std::array::from_fn(|k| strides[k][d]);
        if let Some(last) = dims.last_mut()
            && (0..K).all(|k| s[k] == last.1[k] * last.0)
        {
            last.0 *= shape[d];
            continue;
        }
        dims.push((shape[d], s));
    }
    dims.reverse();
    let Some(&(inner_len, inner_strides)) = dims.last() else {
        f(offsets, 1, [0; K]);
        return;
    };
    let outer = &dims[..dims.len() - 1];
    let mut idx: Dims = smallvec::smallvec![0; outer.len()];
    let mut offs = offsets;
    loop {
        f(offs, inner_len, inner_strides);
        // Odometer increment over the outer dims.
        let mut d = outer.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            for (o, s) in offs.iter_mut().zip(outer[d].1) {
                *o += s;
            }
            if idx[d] < outer[d].0 {
                break;
            }
            for (o, s) in offs.iter_mut().zip(outer[d].1) {
                *o -= s * outer[d].0;
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_of_transposed_needs_copy() {
        let l = Layout::contiguous(&[2, 3]).transpose(0, 1);
        assert!(l.reshape(&[6]).is_none());
        assert!(l.reshape(&[3, 2, 1]).is_some());
    }

    #[test]
    fn reshape_splits_a_narrowed_dim_group() {
        // [4, 6] narrowed to columns 0..6 of an [4, 8] buffer: rows are not adjacent.
        let l = Layout::contiguous(&[4, 8]).narrow(1, 0, 6);
        let r = l.reshape(&[2, 2, 2, 3]).unwrap();
        assert_eq!(r.strides(), &[16, 8, 3, 1]);
        assert!(l.reshape(&[24]).is_none());
    }

    #[test]
    fn rows_merge_contiguous_dims() {
        let l = Layout::contiguous(&[2, 3, 4]);
        let mut rows = 0;
        for_each_row(l.shape(), [l.strides()], [0], |_, len, _| {
            rows += 1;
            assert_eq!(len, 24);
        });
        assert_eq!(rows, 1);
    }
}
