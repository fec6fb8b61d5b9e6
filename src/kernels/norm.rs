//! Row normalisation (layer norm, RMS norm) over the last `n` elements of each row, one pass per
//! row over data the caller made contiguous.

use super::entry::instance;
use super::{PAR_CHUNK, Par};
use crate::tensor::element::Element;
use crate::tensor::memory;
use rayon::prelude::*;

/// Which normalisation: subtract the mean and divide by the standard deviation (layer norm), or
/// only divide by the root mean square (RMS norm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NormKind {
    /// `(x − mean) / √(var + eps)`, the biased variance as PyTorch's `layer_norm` uses.
    Layer,
    /// `x / √(mean(x²) + eps)`.
    Rms,
}

/// The normalised rows `x̂` of `x` (`rows × n`, row-major) and each row's `1/√(var + eps)` (or
/// `1/√(mean(x²) + eps)`); the mean is recentred in two passes over the row (mean first, then the
/// squared deviations), which keeps the variance accurate when the mean is large.
pub(crate) fn normalize<E: Element>(par: Par, x: &[E], n: usize, eps: E, kind: NormKind) -> (Vec<E>, Vec<E>) {
    type F<T> = fn(Par, &[T], usize, T, NormKind) -> (Vec<T>, Vec<T>);
    static F32: F<f32> = normalize_impl::<f32>;
    static F64: F<f64> = normalize_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, x, n, eps, kind)
}

/// [`normalize`]'s body, instantiated in this crate only.
fn normalize_impl<E: Element>(par: Par, x: &[E], n: usize, eps: E, kind: NormKind) -> (Vec<E>, Vec<E>) {
    let rows = x.len().checked_div(n).unwrap_or(0);
    let mut out = memory::take(rows * n);
    let mut rstd = vec![E::zero(); rows];
    if n == 0 {
        return (out, rstd);
    }
    let inv_n = E::one() / E::from_usize(n).unwrap_or_else(E::nan);
    let row = |(o, (src, r)): (&mut [E], (&[E], &mut E))| {
        let mean = if kind == NormKind::Layer { src.iter().copied().sum::<E>() * inv_n } else { E::zero() };
        let mut ss = E::zero();
        for &v in src {
            let d = v - mean;
            ss += d * d;
        }
        let s = E::one() / (ss * inv_n + eps).sqrt();
        for (o, &v) in o.iter_mut().zip(src) {
            *o = (v - mean) * s;
        }
        *r = s;
    };
    // Rows are independent, and each is computed the same way whatever the split.
    let rows_per_task = (PAR_CHUNK / n).max(1);
    if par.for_elems(rows * n).is_parallel() && rows > rows_per_task {
        out.par_chunks_mut(n).zip(x.par_chunks(n).zip(rstd.par_iter_mut())).with_min_len(rows_per_task).for_each(row);
    } else {
        out.chunks_mut(n).zip(x.chunks(n).zip(rstd.iter_mut())).for_each(row);
    }
    (out, rstd)
}

/// The input gradient of [`normalize`] from the output gradient `g`, the normalised rows `xhat`
/// and each row's `rstd` (all row-major, `rows × n`), one pass per row:
/// `rstd · (g − mean(g) − x̂ · mean(g · x̂))` for layer norm, without `mean(g)` for RMS norm.
pub(crate) fn normalize_backward<E: Element>(
    par: Par,
    g: &[E],
    xhat: &[E],
    rstd: &[E],
    n: usize,
    kind: NormKind,
) -> Vec<E> {
    type F<T> = fn(Par, &[T], &[T], &[T], usize, NormKind) -> Vec<T>;
    static F32: F<f32> = normalize_backward_impl::<f32>;
    static F64: F<f64> = normalize_backward_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, g, xhat, rstd, n, kind)
}

/// One row of the backward pass: its input gradient, and its output gradient, normalised values
/// and `rstd`.
type BackRow<'a, E> = (&'a mut [E], ((&'a [E], &'a [E]), &'a E));

/// [`normalize_backward`]'s body, instantiated in this crate only.
fn normalize_backward_impl<E: Element>(par: Par, g: &[E], xhat: &[E], rstd: &[E], n: usize, kind: NormKind) -> Vec<E> {
    let rows = rstd.len();
    let mut out = memory::take(rows * n);
    if n == 0 {
        return out;
    }
    let inv_n = E::one() / E::from_usize(n).unwrap_or_else(E::nan);
    let row = |(o, ((g, xh), &s)): BackRow<'_, E>| {
        let (mut sg, mut sgx) = (E::zero(), E::zero());
        for (&gi, &xi) in g.iter().zip(xh) {
            sg += gi;
            sgx += gi * xi;
        }
        let mg = if kind == NormKind::Layer { sg * inv_n } else { E::zero() };
        let mgx = sgx * inv_n;
        for ((o, &gi), &xi) in o.iter_mut().zip(g).zip(xh) {
            *o = s * (gi - mg - xi * mgx);
        }
    };
    let rows_per_task = (PAR_CHUNK / n).max(1);
    if par.for_elems(rows * n).is_parallel() && rows > rows_per_task {
        out.par_chunks_mut(n)
            .zip(g.par_chunks(n).zip(xhat.par_chunks(n)).zip(rstd.par_iter()))
            .with_min_len(rows_per_task)
            .for_each(row);
    } else {
        out.chunks_mut(n).zip(g.chunks(n).zip(xhat.chunks(n)).zip(rstd.iter())).for_each(row);
    }
    out
}
