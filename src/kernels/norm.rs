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

// ---------------------------------------------------------------------------------------------
// Per-channel normalisation (batch norm) over data laid out `[n, c, s]`, row-major: channel `ch`
// is the `n` blocks `x[i·c·s + ch·s ..][..s]`.
// ---------------------------------------------------------------------------------------------

/// The shape `[n, c, s]` of a batch-norm input: batch, channels, and spatial positions per
/// channel (1 for `[N, C]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Planes {
    pub(crate) n: usize,
    pub(crate) c: usize,
    pub(crate) s: usize,
}

impl Planes {
    fn len(self) -> usize {
        self.n * self.c * self.s
    }

    /// Channel `ch`'s blocks of `s` values in `x`.
    fn blocks<E: Copy>(self, x: &[E], ch: usize) -> impl Iterator<Item = &[E]> {
        (0..self.n).map(move |i| &x[(i * self.c + ch) * self.s..][..self.s])
    }

    /// Whether per-channel work should be split across threads.
    fn par(self, par: Par) -> bool {
        par.for_elems(self.len()).is_parallel() && self.c > 1
    }
}

/// Eight-lane sums of `f(a, b)` over two slices: the lanes let the compiler vectorise a sum whose
/// order of additions it may not change; they are added in a fixed order at the end.
#[inline(always)]
fn lane_sum<E: Element>(a: &[E], b: &[E], f: impl Fn(E, E) -> E) -> E {
    let mut acc = [E::zero(); 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += f(x[l], y[l]);
        }
    }
    let mut s = E::zero();
    for (&x, &y) in ar.iter().zip(br) {
        s += f(x, y);
    }
    acc.iter().fold(E::zero(), |t, &v| t + v) + s
}

/// Each channel's mean and biased variance (two passes: the mean, then the squared deviations
/// from it, so a large mean does not cost the variance its precision).
fn channel_moments<E: Element>(par: Par, x: &[E], p: Planes) -> (Vec<E>, Vec<E>) {
    type F<T> = fn(Par, &[T], Planes) -> (Vec<T>, Vec<T>);
    static F32: F<f32> = channel_moments_impl::<f32>;
    static F64: F<f64> = channel_moments_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, x, p)
}

fn channel_moments_impl<E: Element>(par: Par, x: &[E], p: Planes) -> (Vec<E>, Vec<E>) {
    let m = E::from_usize(p.n * p.s).unwrap_or_else(E::nan);
    let one = |ch: usize| {
        let mean = p.blocks(x, ch).map(|b| lane_sum(b, b, |v, _| v)).fold(E::zero(), |t, v| t + v) / m;
        let var =
            p.blocks(x, ch).map(|b| lane_sum(b, b, |v, _| (v - mean) * (v - mean))).fold(E::zero(), |t, v| t + v) / m;
        (mean, var)
    };
    let pairs: Vec<(E, E)> =
        if p.par(par) { (0..p.c).into_par_iter().map(one).collect() } else { (0..p.c).map(one).collect() };
    pairs.into_iter().unzip()
}

/// `a[ch]·(x − m[ch]) + k[ch] + b[ch]·y` elementwise over `[n, c, s]` arrays (`y` may be empty,
/// then `b` is unused): batch norm's affine step `(x − μ)·γ/σ + β` and its input gradient
/// `B·(x − μ) + K + A·g`, in one pass. Centring before scaling keeps the precision of a channel
/// whose mean is large against its spread.
struct Combine<'a, E> {
    a: &'a [E],
    m: &'a [E],
    k: &'a [E],
    b: &'a [E],
}

/// See [`Combine`].
fn channel_combine<E: Element>(par: Par, x: &[E], y: &[E], p: Planes, f: Combine<'_, E>) -> Vec<E> {
    type F<T> = fn(Par, &[T], &[T], Planes, Combine<'_, T>) -> Vec<T>;
    static F32: F<f32> = channel_combine_impl::<f32>;
    static F64: F<f64> = channel_combine_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, x, y, p, f)
}

fn channel_combine_impl<E: Element>(par: Par, x: &[E], y: &[E], p: Planes, f: Combine<'_, E>) -> Vec<E> {
    let mut out = memory::take(p.len());
    if p.len() == 0 {
        return out;
    }
    let s = p.s;
    let plane = |(idx, o): (usize, &mut [E])| {
        let ch = idx % p.c;
        let (av, mv, kv) = (f.a[ch], f.m[ch], f.k[ch]);
        let xs = &x[idx * s..][..s];
        if y.is_empty() {
            for (o, &xv) in o.iter_mut().zip(xs) {
                *o = av * (xv - mv) + kv;
            }
        } else {
            let (bv, ys) = (f.b[ch], &y[idx * s..][..s]);
            for ((o, &xv), &yv) in o.iter_mut().zip(xs).zip(ys) {
                *o = av * (xv - mv) + kv + bv * yv;
            }
        }
    };
    if par.for_elems(p.len()).is_parallel() {
        out.par_chunks_mut(s).enumerate().with_min_len((PAR_CHUNK / s).max(1)).for_each(plane);
    } else {
        out.chunks_mut(s).enumerate().for_each(plane);
    }
    out
}

/// Each channel's `Σ g` and `Σ g·(x − mean)`: what batch norm's backward pass needs.
fn channel_grad_sums<E: Element>(par: Par, g: &[E], x: &[E], p: Planes, mean: &[E]) -> (Vec<E>, Vec<E>) {
    type F<T> = fn(Par, &[T], &[T], Planes, &[T]) -> (Vec<T>, Vec<T>);
    static F32: F<f32> = channel_grad_sums_impl::<f32>;
    static F64: F<f64> = channel_grad_sums_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, g, x, p, mean)
}

fn channel_grad_sums_impl<E: Element>(par: Par, g: &[E], x: &[E], p: Planes, mean: &[E]) -> (Vec<E>, Vec<E>) {
    let one = |ch: usize| {
        let mu = mean[ch];
        let (mut sg, mut sgx) = (E::zero(), E::zero());
        for (gb, xb) in p.blocks(g, ch).zip(p.blocks(x, ch)) {
            sg += lane_sum(gb, gb, |v, _| v);
            sgx += lane_sum(gb, xb, |gv, xv| gv * (xv - mu));
        }
        (sg, sgx)
    };
    let pairs: Vec<(E, E)> =
        if p.par(par) { (0..p.c).into_par_iter().map(one).collect() } else { (0..p.c).map(one).collect() };
    pairs.into_iter().unzip()
}

/// Batch norm with the batch's own statistics over `x` `[n, c, s]`: the output
/// `(x − μ)·γ/σ + β` (`γ`, `β` of length `c`, or 1 and 0), and each channel's mean `μ`, biased
/// variance and `1/σ = 1/√(var + eps)`.
pub(crate) struct BatchStats<E> {
    pub(crate) y: Vec<E>,
    pub(crate) mean: Vec<E>,
    pub(crate) var: Vec<E>,
    pub(crate) rstd: Vec<E>,
}

/// See [`BatchStats`].
pub(crate) fn batch_norm_forward<E: Element>(
    par: Par,
    x: &[E],
    p: Planes,
    w: Option<&[E]>,
    b: Option<&[E]>,
    eps: E,
) -> BatchStats<E> {
    let (mean, var) = channel_moments(par, x, p);
    let rstd: Vec<E> = var.iter().map(|&v| E::one() / (v + eps).sqrt()).collect();
    let scale: Vec<E> = (0..p.c).map(|ch| w.map_or(E::one(), |w| w[ch]) * rstd[ch]).collect();
    let shift: Vec<E> = (0..p.c).map(|ch| b.map_or(E::zero(), |b| b[ch])).collect();
    let y = channel_combine(par, x, &[], p, Combine { a: &scale, m: &mean, k: &shift, b: &[] });
    BatchStats { y, mean, var, rstd }
}

/// The gradients of [`batch_norm_forward`] from the output gradient `g`: `(∂x, ∂γ, ∂β)`, with
/// `∂x = γ/σ·(g − mean(g) − x̂·mean(g·x̂))` as `B·(x − μ) + K + A·g` in one pass after the
/// per-channel sums `Σg` (= `∂β`) and `Σg·(x − μ)` (`∂γ = Σg·(x − μ)/σ`).
pub(crate) fn batch_norm_backward<E: Element>(
    par: Par,
    g: &[E],
    x: &[E],
    p: Planes,
    mean: &[E],
    rstd: &[E],
    w: Option<&[E]>,
) -> (Vec<E>, Vec<E>, Vec<E>) {
    let count = E::from_usize(p.n * p.s).unwrap_or_else(E::nan);
    let (sg, sgx) = channel_grad_sums(par, g, x, p, mean);
    let a: Vec<E> = (0..p.c).map(|ch| w.map_or(E::one(), |w| w[ch]) * rstd[ch]).collect();
    let bb: Vec<E> = (0..p.c).map(|ch| -(a[ch] * rstd[ch] * rstd[ch] * sgx[ch]) / count).collect();
    let k: Vec<E> = (0..p.c).map(|ch| -(a[ch] * sg[ch]) / count).collect();
    let dx = channel_combine(par, x, g, p, Combine { a: &bb, m: mean, k: &k, b: &a });
    let dw = sgx.iter().zip(rstd).map(|(&s, &r)| s * r).collect();
    (dx, dw, sg)
}

/// PyTorch's running-statistics update: `running ← (1 − momentum)·running + momentum·scale·batch`
/// (`scale` turns the biased variance into the unbiased one, 1 for the mean).
pub(crate) fn update_running<E: Element>(running: &mut [E], batch: &[E], momentum: E, scale: E) {
    for (r, &v) in running.iter_mut().zip(batch) {
        *r = (E::one() - momentum) * *r + momentum * v * scale;
    }
}

#[cfg(test)]
mod channel_tests {
    use super::*;

    #[test]
    fn moments_and_sums_match_a_direct_loop() {
        let p = Planes { n: 3, c: 2, s: 11 };
        let x: Vec<f64> = (0..p.len()).map(|i| 1e3 + ((i * 37 % 17) as f64) * 0.25).collect();
        let g: Vec<f64> = (0..p.len()).map(|i| ((i * 13 % 7) as f64) - 3.0).collect();
        for par in [Par::Seq, Par::Rayon { threads: 2 }] {
            let (mean, var) = channel_moments(par, &x, p);
            let (sg, sgx) = channel_grad_sums(par, &g, &x, p, &mean);
            for ch in 0..p.c {
                let vals: Vec<(f64, f64)> = (0..p.n)
                    .flat_map(|i| (0..p.s).map(move |j| (i * p.c + ch) * p.s + j))
                    .map(|k| (x[k], g[k]))
                    .collect();
                let mu = vals.iter().map(|v| v.0).sum::<f64>() / vals.len() as f64;
                let v = vals.iter().map(|v| (v.0 - mu).powi(2)).sum::<f64>() / vals.len() as f64;
                assert!((mean[ch] - mu).abs() < 1e-10 && (var[ch] - v).abs() < 1e-10);
                assert!((sg[ch] - vals.iter().map(|v| v.1).sum::<f64>()).abs() < 1e-10);
                assert!((sgx[ch] - vals.iter().map(|v| v.1 * (v.0 - mu)).sum::<f64>()).abs() < 1e-9);
            }
            let f = Combine { a: &[2.0, 3.0], m: &mean, k: &[1.0, -2.0], b: &[0.5, -1.0] };
            let out = channel_combine(par, &x, &g, p, f);
            for (k, o) in out.iter().enumerate() {
                let ch = (k / p.s) % p.c;
                let want = [2.0, 3.0][ch] * (x[k] - mean[ch]) + [1.0, -2.0][ch] + [0.5, -1.0][ch] * g[k];
                assert_eq!(*o, want);
            }
        }
    }
}
