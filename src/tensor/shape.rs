//! Shape arithmetic and the shape checks, with their error messages.
//!
//! Everything here is pure index arithmetic: no data is touched. Every check panics with a
//! message that names the operation and the shapes involved; the public entry points carry
//! `#[track_caller]`, so the report points at the user's line.

/// Number of elements of a shape (1 for a scalar of shape `[]`).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major ("C") strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d;
    }
    strides
}

/// The shape both operands broadcast to, with NumPy's rules (align from the right; a dim of 1
/// stretches). Panics, naming `op`, when the shapes are incompatible.
#[track_caller]
pub fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    // A `match`, not a closure: a panic inside a closure would report the closure's line.
    match try_broadcast_shapes(a, b) {
        Some(shape) => shape,
        None => panic!("{op}: shapes {a:?} and {b:?} cannot be broadcast together"),
    }
}

/// Like [`broadcast_shapes`] but returns `None` instead of panicking.
pub fn try_broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Checks that `dim` is a valid dimension index for a tensor of rank `ndim`.
#[track_caller]
pub(crate) fn check_dim(op: &str, dim: usize, shape: &[usize]) -> usize {
    if dim >= shape.len() {
        panic!("{op}: dim {dim} is out of range for a tensor of shape {shape:?} (rank {})", shape.len());
    }
    dim
}
