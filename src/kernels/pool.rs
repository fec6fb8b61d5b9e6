//! Pooling loops over planes: max pooling (values and the flat index of each maximum in its
//! input plane), the gather by those indices and its adjoint (the scatter-add that is max
//! pooling's backward), and average pooling with its adjoint. Inputs are row-major
//! `planes × h × w` buffers the op made contiguous; 1-D pooling is 2-D pooling with `h = 1`.
//!
//! Work is split across threads by whole planes (every plane is computed by one call running
//! the same loop), so results do not depend on the number of threads.

use rayon::prelude::*;

use super::entry::instance;
use super::simd_dispatch;
use super::slice::add_assign;
use super::{PAR_CHUNK, Par};
use crate::tensor::element::Element;
use crate::tensor::memory;

/// One output position's window along one axis: the input positions `start`, `start + step`,
/// … (`count` of them), all inside the input (padding already cut off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Win {
    /// The first input position inside the input.
    pub start: usize,
    /// How many positions of the window are inside the input.
    pub count: usize,
    /// The distance between two positions (the dilation; 1 for average pooling).
    pub step: usize,
}

/// The shape of a pooling: the input plane (`h × w`) and each output row's and column's window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Input plane height.
    pub h: usize,
    /// Input plane width.
    pub w: usize,
    /// The window of each output row (its length is the output height).
    pub rows: Vec<Win>,
    /// The window of each output column (its length is the output width).
    pub cols: Vec<Win>,
}

impl Geometry {
    /// Elements of an input plane.
    pub(crate) fn in_plane(&self) -> usize {
        self.h * self.w
    }

    /// Elements of an output plane.
    pub(crate) fn out_plane(&self) -> usize {
        self.rows.len() * self.cols.len()
    }

    /// Input elements visited per output plane (for the parallel split).
    fn visits(&self) -> usize {
        let r: usize = self.rows.iter().map(|w| w.count).sum();
        let c: usize = self.cols.iter().map(|w| w.count).sum();
        r * c
    }
}

/// How many planes one task takes, and whether to split at all, for `planes` planes of `work`
/// element visits each.
fn split(par: Par, planes: usize, work: usize) -> (Par, usize) {
    let work = work.max(1);
    (par.for_elems(planes * work), (PAR_CHUNK / work).max(1))
}

/// The output columns `lo..hi` whose windows are whole and evenly spaced (`cs` apart), so
/// that they can be computed together; `(0, 0, 1)` when there are none.
fn interior(cols: &[Win]) -> (usize, usize, usize) {
    let full = cols.iter().map(|c| c.count).max().unwrap_or(0);
    let Some(lo) = cols.iter().position(|c| c.count == full) else { return (0, 0, 1) };
    let hi = lo + cols[lo..].iter().take_while(|c| c.count == full).count();
    let cs = if hi - lo >= 2 { cols[lo + 1].start.saturating_sub(cols[lo].start).max(1) } else { 1 };
    let regular =
        cols[lo..hi].iter().enumerate().all(|(c, w)| w.start == cols[lo].start + c * cs && w.step == cols[lo].step);
    if full == 0 || !regular { (0, 0, 1) } else { (lo, hi, cs) }
}

simd_dispatch! {
    /// One position of the window for evenly spaced windows: `vals[c]` (at `first + c · cs` in
    /// the plane) replaces `best[c]` and `at[c]` where it is greater or NaN.
    fn max_columns<const FMA: bool, E: Element>(best: &mut [E], at: &mut [usize], vals: &[E], first: usize, cs: usize) {
        // Bitwise `|`, not `||`, over contiguous slices: a loop of selects that the compiler
        // vectorises rather than a branch per element.
        let n = best.len();
        let (at, vals) = (&mut at[..n], &vals[..n]);
        for c in 0..n {
            let v = vals[c];
            let better = (v > best[c]) | v.is_nan();
            best[c] = if better { v } else { best[c] };
            at[c] = if better { first + c * cs } else { at[c] };
        }
    }
}

/// Max pooling of `planes` row-major planes of `x`: the maxima and, for each, its flat index in
/// its input plane. The first maximum in row-major order wins ties; a NaN is a maximum and the
/// last NaN of a window gives the index (as in PyTorch).
pub(crate) fn max_pool<E: Element>(par: Par, x: &[E], planes: usize, g: &Geometry) -> (Vec<E>, Vec<usize>) {
    type F<T> = fn(Par, &[T], usize, &Geometry) -> (Vec<T>, Vec<usize>);
    static F32: F<f32> = max_pool_impl::<f32>;
    static F64: F<f64> = max_pool_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, x, planes, g)
}

/// [`max_pool`]'s body, instantiated in this crate only.
fn max_pool_impl<E: Element>(par: Par, x: &[E], planes: usize, g: &Geometry) -> (Vec<E>, Vec<usize>) {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let mut vals: Vec<E> = memory::take(planes * op);
    let mut idx = vec![0usize; planes * op];
    if op == 0 {
        return (vals, idx);
    }
    let (w, ow) = (g.w, g.cols.len());
    let (lo, hi, cs) = interior(&g.cols);
    let plane = |(p, (v, ix)): (usize, (&mut [E], &mut [usize]))| {
        let src = &x[p * ip..(p + 1) * ip];
        let mut tmp: Vec<E> = Vec::new();
        for (ri, r) in g.rows.iter().enumerate() {
            let (ov, oi) = (&mut v[ri * ow..(ri + 1) * ow], &mut ix[ri * ow..(ri + 1) * ow]);
            // The columns whose windows the padding cuts: one window at a time.
            for ci in (0..lo).chain(hi..ow) {
                let c = &g.cols[ci];
                // Row-major order, replacing only on a greater value: the first maximum wins.
                let (mut best, mut at) = (E::neg_infinity(), r.start * w + c.start);
                for i in 0..r.count {
                    let row = (r.start + i * r.step) * w + c.start;
                    for j in 0..c.count {
                        let pos = row + j * c.step;
                        let val = src[pos];
                        let better = val > best || val.is_nan();
                        best = if better { val } else { best };
                        at = if better { pos } else { at };
                    }
                }
                ov[ci] = best;
                oi[ci] = at;
            }
            // The others: each position of the window at once for all of them (vectorised
            // over the output columns), in the same row-major order.
            if lo < hi {
                let c0 = &g.cols[lo];
                let (bv, bi) = (&mut ov[lo..hi], &mut oi[lo..hi]);
                bv.fill(E::neg_infinity());
                tmp.resize(hi - lo, E::zero());
                for (c, a) in bi.iter_mut().enumerate() {
                    *a = r.start * w + c0.start + c * cs;
                }
                for i in 0..r.count {
                    let row = (r.start + i * r.step) * w;
                    for j in 0..c0.count {
                        let first = row + c0.start + j * c0.step;
                        for (t, v) in tmp.iter_mut().zip(src[first..].iter().step_by(cs)) {
                            *t = *v;
                        }
                        max_columns(bv, bi, &tmp, first, cs);
                    }
                }
            }
        }
    };
    let (par, per_task) = split(par, planes, g.visits());
    if par.is_parallel() && planes > per_task {
        vals.par_chunks_mut(op).zip(idx.par_chunks_mut(op)).enumerate().with_min_len(per_task).for_each(plane);
    } else {
        vals.chunks_mut(op).zip(idx.chunks_mut(op)).enumerate().for_each(plane);
    }
    (vals, idx)
}

/// `out[p, i] = x[p, idx[p, i]]` for `planes` planes of `in_plane` input and `out_plane`
/// output elements (max pooling's values read through its indices).
pub(crate) fn plane_gather<E: Element>(par: Par, x: &[E], in_plane: usize, idx: &[usize], out_plane: usize) -> Vec<E> {
    type F<T> = fn(Par, &[T], usize, &[usize], usize) -> Vec<T>;
    static F32: F<f32> = plane_gather_impl::<f32>;
    static F64: F<f64> = plane_gather_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, x, in_plane, idx, out_plane)
}

/// Max pooling's indices as whole numbers of the element type (for `*_with_indices`).
pub(crate) fn indices_as<E: Element>(idx: &[usize]) -> Vec<E> {
    let mut out: Vec<E> = memory::take(idx.len());
    for (o, &i) in out.iter_mut().zip(idx) {
        *o = E::from_usize(i).unwrap_or_else(E::nan);
    }
    out
}

/// [`plane_gather`]'s body, instantiated in this crate only.
fn plane_gather_impl<E: Element>(par: Par, x: &[E], in_plane: usize, idx: &[usize], out_plane: usize) -> Vec<E> {
    let mut out: Vec<E> = memory::take(idx.len());
    if out_plane == 0 {
        return out;
    }
    let planes = idx.len() / out_plane;
    let plane = |(p, (o, ix)): (usize, (&mut [E], &[usize]))| {
        let src = &x[p * in_plane..(p + 1) * in_plane];
        for (o, &i) in o.iter_mut().zip(ix) {
            *o = src[i];
        }
    };
    let (par, per_task) = split(par, planes, out_plane);
    if par.is_parallel() && planes > per_task {
        out.par_chunks_mut(out_plane).zip(idx.par_chunks(out_plane)).enumerate().with_min_len(per_task).for_each(plane);
    } else {
        out.chunks_mut(out_plane).zip(idx.chunks(out_plane)).enumerate().for_each(plane);
    }
    out
}

/// The adjoint of [`plane_gather`]: zero planes of `in_plane` elements into which `g[p, i]` is
/// added at `idx[p, i]` (in order of `i`; repeated indices add up). Max pooling's backward.
pub(crate) fn plane_scatter<E: Element>(par: Par, g: &[E], idx: &[usize], out_plane: usize, in_plane: usize) -> Vec<E> {
    type F<T> = fn(Par, &[T], &[usize], usize, usize) -> Vec<T>;
    static F32: F<f32> = plane_scatter_impl::<f32>;
    static F64: F<f64> = plane_scatter_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, g, idx, out_plane, in_plane)
}

/// [`plane_scatter`]'s body, instantiated in this crate only.
fn plane_scatter_impl<E: Element>(par: Par, g: &[E], idx: &[usize], out_plane: usize, in_plane: usize) -> Vec<E> {
    let planes = idx.len().checked_div(out_plane).unwrap_or(0);
    let mut out: Vec<E> = memory::zeroed(planes * in_plane);
    if in_plane == 0 || out_plane == 0 {
        return out;
    }
    let plane = |(p, o): (usize, &mut [E])| {
        let (gs, ix) = (&g[p * out_plane..(p + 1) * out_plane], &idx[p * out_plane..(p + 1) * out_plane]);
        for (&gv, &i) in gs.iter().zip(ix) {
            o[i] += gv;
        }
    };
    let (par, per_task) = split(par, planes, in_plane + out_plane);
    if par.is_parallel() && planes > per_task {
        out.par_chunks_mut(in_plane).enumerate().with_min_len(per_task).for_each(plane);
    } else {
        out.chunks_mut(in_plane).enumerate().for_each(plane);
    }
    out
}

/// Average pooling of `planes` row-major planes of `x`: each output is the sum of its window
/// times `scale[k]` (one factor per output position `k` of a plane, `1 / divisor`).
pub(crate) fn avg_pool<E: Element>(par: Par, x: &[E], planes: usize, g: &Geometry, scale: &[E]) -> Vec<E> {
    type F<T> = fn(Par, &[T], usize, &Geometry, &[T]) -> Vec<T>;
    static F32: F<f32> = avg_pool_impl::<f32>;
    static F64: F<f64> = avg_pool_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, x, planes, g, scale)
}

/// [`avg_pool`]'s body, instantiated in this crate only.
fn avg_pool_impl<E: Element>(par: Par, x: &[E], planes: usize, g: &Geometry, scale: &[E]) -> Vec<E> {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let mut out: Vec<E> = memory::take(planes * op);
    if op == 0 {
        return out;
    }
    let w = g.w;
    let plane = |(p, o): (usize, &mut [E])| {
        let src = &x[p * ip..(p + 1) * ip];
        // Per output row: the sum of the window's rows (a vector add), then each window's
        // columns of that sum.
        let mut rs = vec![E::zero(); w];
        let mut k = 0;
        for r in &g.rows {
            if r.count == 0 {
                rs.fill(E::zero());
            } else {
                rs.copy_from_slice(&src[r.start * w..][..w]);
            }
            for i in 1..r.count {
                add_assign(&mut rs, &src[(r.start + i * r.step) * w..][..w]);
            }
            for c in &g.cols {
                let mut s = E::zero();
                for j in 0..c.count {
                    s += rs[c.start + j * c.step];
                }
                o[k] = s * scale[k];
                k += 1;
            }
        }
    };
    let (par, per_task) = split(par, planes, g.visits());
    if par.is_parallel() && planes > per_task {
        out.par_chunks_mut(op).enumerate().with_min_len(per_task).for_each(plane);
    } else {
        out.chunks_mut(op).enumerate().for_each(plane);
    }
    out
}

/// The adjoint of [`avg_pool`] (its backward): zero input planes into which each output
/// gradient times its `scale` is added over its window.
pub(crate) fn avg_pool_adjoint<E: Element>(par: Par, gr: &[E], planes: usize, g: &Geometry, scale: &[E]) -> Vec<E> {
    type F<T> = fn(Par, &[T], usize, &Geometry, &[T]) -> Vec<T>;
    static F32: F<f32> = avg_pool_adjoint_impl::<f32>;
    static F64: F<f64> = avg_pool_adjoint_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, gr, planes, g, scale)
}

/// [`avg_pool_adjoint`]'s body, instantiated in this crate only.
fn avg_pool_adjoint_impl<E: Element>(par: Par, gr: &[E], planes: usize, g: &Geometry, scale: &[E]) -> Vec<E> {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let mut out: Vec<E> = memory::zeroed(planes * ip);
    if op == 0 || ip == 0 {
        return out;
    }
    let w = g.w;
    let plane = |(p, o): (usize, &mut [E])| {
        let src = &gr[p * op..(p + 1) * op];
        // Per output row: its gradients spread over their windows' columns in one row, which
        // is then added to each of the window's rows (a vector add).
        let mut rs = vec![E::zero(); w];
        let mut k = 0;
        for r in &g.rows {
            rs.fill(E::zero());
            for c in &g.cols {
                let v = src[k] * scale[k];
                for j in 0..c.count {
                    rs[c.start + j * c.step] += v;
                }
                k += 1;
            }
            for i in 0..r.count {
                add_assign(&mut o[(r.start + i * r.step) * w..][..w], &rs);
            }
        }
    };
    let (par, per_task) = split(par, planes, g.visits());
    if par.is_parallel() && planes > per_task {
        out.par_chunks_mut(ip).enumerate().with_min_len(per_task).for_each(plane);
    } else {
        out.chunks_mut(ip).enumerate().for_each(plane);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(h: usize, w: usize, k: usize, s: usize) -> Geometry {
        let wins = |l: usize| (0..(l - k) / s + 1).map(|o| Win { start: o * s, count: k, step: 1 }).collect();
        Geometry { h, w, rows: wins(h), cols: wins(w) }
    }

    #[test]
    fn max_pool_picks_the_first_maximum_and_scatter_is_the_gathers_adjoint() {
        let x = [1.0f64, 3.0, 3.0, 0.0, 2.0, -1.0, 5.0, 5.0, 0.0, 0.0, 4.0, 6.0, 1.0, 1.0, 1.0, 1.0];
        let g = geo(4, 4, 2, 2);
        let (v, i) = max_pool(Par::Seq, &x, 1, &g);
        assert_eq!(v, vec![3.0, 5.0, 1.0, 6.0]);
        assert_eq!(i, vec![1, 6, 12, 11]);
        assert_eq!(plane_gather(Par::Seq, &x, 16, &i, 4), v);
        let back = plane_scatter(Par::Seq, &[1.0f64, 2.0, 3.0, 4.0], &i, 4, 16);
        assert_eq!(back.iter().sum::<f64>(), 10.0);
        assert_eq!((back[1], back[6], back[12], back[11]), (1.0, 2.0, 3.0, 4.0));
        let nan = [1.0f64, f64::NAN, 7.0, 2.0];
        let (v, i) = max_pool(Par::Seq, &nan, 1, &geo(2, 2, 2, 2));
        assert!(v[0].is_nan() && i[0] == 1);
    }

    #[test]
    fn max_pool_matches_a_plain_loop_on_data_full_of_ties() {
        // Windows cut by padding (edges, one window at a time) and whole ones (together), with
        // dilation: the first maximum in row-major order, as a plain loop over each window.
        let (h, w) = (7, 9);
        let x: Vec<f32> = (0..3 * h * w).map(|i| ((i * 7) % 5) as f32).collect();
        for (k, s, p, d) in [(2, 1, 1, 1), (3, 2, 1, 1), (3, 1, 1, 2), (2, 2, 0, 1), (3, 3, 1, 1)] {
            let wins = |l: usize| -> Vec<Win> {
                let out = (l + 2 * p - d * (k - 1) - 1) / s + 1;
                (0..out)
                    .map(|o| {
                        let pos: Vec<usize> = (0..k)
                            .map(|j| (o * s + j * d) as isize - p as isize)
                            .filter(|&q| q >= 0 && q < l as isize)
                            .map(|q| q as usize)
                            .collect();
                        Win { start: pos[0], count: pos.len(), step: d }
                    })
                    .collect()
            };
            let g = Geometry { h, w, rows: wins(h), cols: wins(w) };
            let (v, i) = max_pool(Par::Seq, &x, 3, &g);
            let mut k_out = 0;
            for pl in 0..3 {
                for r in &g.rows {
                    for c in &g.cols {
                        let mut best = (f32::NEG_INFINITY, usize::MAX);
                        for a in 0..r.count {
                            for b in 0..c.count {
                                let pos = (r.start + a * r.step) * w + c.start + b * c.step;
                                if x[pl * h * w + pos] > best.0 {
                                    best = (x[pl * h * w + pos], pos);
                                }
                            }
                        }
                        assert_eq!((v[k_out], i[k_out]), best, "k {k} s {s} p {p} d {d}");
                        k_out += 1;
                    }
                }
            }
        }
    }

    #[test]
    fn avg_pool_and_its_adjoint_agree_and_do_not_depend_on_the_split() {
        let planes = 300;
        let x: Vec<f64> = (0..planes * 36).map(|i| ((i * 7919) % 101) as f64 / 10.0).collect();
        let g = geo(6, 6, 3, 1);
        let scale = vec![1.0 / 9.0; g.out_plane()];
        let a = avg_pool(Par::Seq, &x, planes, &g, &scale);
        let b = avg_pool(Par::Rayon { threads: 2 }, &x, planes, &g, &scale);
        assert_eq!(a, b);
        // <A x, y> = <x, Aᵀ y>
        let y: Vec<f64> = (0..a.len()).map(|i| (i % 13) as f64 - 6.0).collect();
        let aty = avg_pool_adjoint(Par::Seq, &y, planes, &g, &scale);
        let lhs: f64 = a.iter().zip(&y).map(|(p, q)| p * q).sum();
        let rhs: f64 = x.iter().zip(&aty).map(|(p, q)| p * q).sum();
        assert!((lhs - rhs).abs() < 1e-9 * lhs.abs().max(1.0));
        let (v1, i1) = max_pool(Par::Seq, &x, planes, &g);
        let (v2, i2) = max_pool(Par::Rayon { threads: 2 }, &x, planes, &g);
        assert_eq!((v1, i1), (v2, i2));
    }
}
