//! Padding loops: a constant border around a strided input, and the index-map form used by
//! reflect, replicate and circular padding (each output position along each dim reads one input
//! position) with its adjoint, the scatter-add that is its backward.

use rayon::prelude::*;

use super::Par;
use super::slice::copy_strided;
use crate::tensor::element::Element;
use crate::tensor::layout::Layout;
use crate::tensor::memory;

/// A row-major buffer of `shape` filled with `value`, with the strided `x` copied into the
/// region `region` (a layout of `shape`'s buffer).
pub(crate) fn pad_constant<E: Element>(x: &[E], lx: &Layout, shape: &[usize], region: &Layout, value: E) -> Vec<E> {
    let n: usize = shape.iter().product();
    let mut out: Vec<E> = memory::take(n);
    out.fill(value);
    copy_strided(&mut out, region, x, lx);
    out
}

/// Calls `f(base, k)` for each innermost row of a row-major output of shape `maps[d].len()`:
/// `base` is `offset + Σ maps[d][o_d] · strides[d]` over all dims but the last, `k` the row's
/// first element in the output.
fn for_each_row(maps: &[Vec<usize>], strides: &[usize], offset: usize, mut f: impl FnMut(usize, usize)) {
    let nd = maps.len();
    let outer = &maps[..nd - 1];
    if outer.iter().any(|m| m.is_empty()) || maps[nd - 1].is_empty() {
        return;
    }
    let row_len = maps[nd - 1].len();
    let mut pos = vec![0usize; nd - 1];
    let mut k = 0;
    loop {
        let base = offset + outer.iter().zip(&pos).zip(strides).map(|((m, &o), &s)| m[o] * s).sum::<usize>();
        f(base, k);
        k += row_len;
        // Odometer over the outer dims, last fastest.
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            pos[d] += 1;
            if pos[d] < outer[d].len() {
                break;
            }
            pos[d] = 0;
        }
    }
}

/// The row-major output whose element `(o_0, …, o_{n−1})` is the strided `x` at
/// `(maps[0][o_0], …, maps[n−1][o_{n−1}])`.
pub(crate) fn map_gather<E: Element>(par: Par, x: &[E], lx: &Layout, maps: &[Vec<usize>]) -> Vec<E> {
    let n: usize = maps.iter().map(Vec::len).product();
    let mut out: Vec<E> = memory::take(n);
    if maps.is_empty() {
        out[0] = x[lx.offset()];
        return out;
    }
    if n == 0 {
        return out;
    }
    let last = &maps[maps.len() - 1];
    let ls = lx.strides()[maps.len() - 1];
    // One slab per position along dim 0, each filled by one call.
    let slab = n / maps[0].len();
    let fill = |(o0, chunk): (usize, &mut [E])| {
        let base0 = lx.offset() + maps[0][o0] * lx.strides()[0];
        if maps.len() == 1 {
            chunk[0] = x[base0];
            return;
        }
        for_each_row(&maps[1..], &lx.strides()[1..], base0, |base, k| {
            for (o, &m) in chunk[k..k + last.len()].iter_mut().zip(last) {
                *o = x[base + m * ls];
            }
        });
    };
    if par.for_elems(n).is_parallel() && maps[0].len() > 1 {
        out.par_chunks_mut(slab).enumerate().for_each(fill);
    } else {
        out.chunks_mut(slab).enumerate().for_each(fill);
    }
    out
}

/// The adjoint of [`map_gather`]: a zero row-major buffer of `in_shape` into which each element
/// of the row-major `g` (shape `maps[d].len()`) is added at the position the maps send it to.
pub(crate) fn map_scatter<E: Element>(par: Par, g: &[E], maps: &[Vec<usize>], in_shape: &[usize]) -> Vec<E> {
    let n: usize = in_shape.iter().product();
    let mut out: Vec<E> = memory::zeroed(n);
    if maps.is_empty() {
        out[0] += g[0];
        return out;
    }
    if n == 0 || g.is_empty() {
        return out;
    }
    let strides = crate::tensor::shape::contiguous_strides(in_shape);
    let last = &maps[maps.len() - 1];
    let add = |out: &mut [E], g: &[E], maps: &[Vec<usize>], strides: &[usize]| {
        if maps.len() == 1 {
            for (&gv, &m) in g.iter().zip(last) {
                out[m] += gv;
            }
            return;
        }
        for_each_row(maps, strides, 0, |base, k| {
            for (&gv, &m) in g[k..k + last.len()].iter().zip(last) {
                out[base + m] += gv;
            }
        });
    };
    // Where dim 0 is not padded, each input slab along it takes the gradient of one output
    // slab, so the slabs can be filled in parallel.
    let dim0_identity = maps[0].iter().enumerate().all(|(i, &m)| i == m) && maps[0].len() == in_shape[0];
    if dim0_identity && maps.len() > 1 && par.for_elems(g.len()).is_parallel() && in_shape[0] > 1 {
        let (in_slab, out_slab) = (n / in_shape[0], g.len() / in_shape[0]);
        out.par_chunks_mut(in_slab)
            .zip(g.par_chunks(out_slab))
            .for_each(|(o, gs)| add(o, gs, &maps[1..], &strides[1..]));
    } else {
        add(&mut out, g, maps, &strides);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_and_scatter_are_adjoint() {
        let x: Vec<f64> = (0..6).map(f64::from).collect();
        let lx = Layout::contiguous(&[2, 3]);
        let maps = vec![vec![1, 0, 1], vec![2, 1, 0, 1, 2, 1]];
        let y = map_gather(Par::Seq, &x, &lx, &maps);
        assert_eq!(map_gather(Par::Rayon { threads: 2 }, &x, &lx, &maps), y);
        assert_eq!(y[..6], [5.0, 4.0, 3.0, 4.0, 5.0, 4.0]);
        let g: Vec<f64> = (0..18).map(|i| f64::from(i) * 0.5 - 3.0).collect();
        let back = map_scatter(Par::Seq, &g, &maps, &[2, 3]);
        let lhs: f64 = y.iter().zip(&g).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-12);
        // Large enough to split, with dim 0 unpadded: the same sums in parallel.
        let x: Vec<f64> = (0..64 * 32 * 32).map(|i| f64::from(i % 97)).collect();
        let lx = Layout::contiguous(&[64, 32, 32]);
        // Replicate padding by 2: the edges are read (and their gradients added) three times.
        let clamp = |n: usize| -> Vec<usize> { (0..n + 4).map(|o| o.saturating_sub(2).min(n - 1)).collect() };
        let maps = vec![(0..64).collect(), clamp(32), clamp(32)];
        let y = map_gather(Par::Seq, &x, &lx, &maps);
        assert_eq!(map_gather(Par::Rayon { threads: 2 }, &x, &lx, &maps), y);
        let a = map_scatter(Par::Seq, &y, &maps, &[64, 32, 32]);
        assert_eq!(map_scatter(Par::Rayon { threads: 2 }, &y, &maps, &[64, 32, 32]), a);
    }
}
