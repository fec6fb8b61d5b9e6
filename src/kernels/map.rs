//! Elementwise maps and zips: a contiguous fast path over slices that the compiler vectorises,
//! a strided fallback that walks innermost rows, and rayon above [`PAR_ELEMS`].

use rayon::prelude::*;

use super::{PAR_CHUNK, PAR_ELEMS};
use crate::layout::{Layout, for_each_row};
use crate::storage::Element;

/// `out[i] = f(a[i])` over the logical elements of `a`; `out` is row-major.
pub(crate) fn unary<E: Element>(a: &[E], la: &Layout, f: impl Fn(E) -> E + Sync) -> Vec<E> {
    let n = la.numel();
    if la.is_contiguous() {
        let src = &a[la.offset()..la.offset() + n];
        if n >= PAR_ELEMS {
            let mut out = vec![E::zero(); n];
            out.par_chunks_mut(PAR_CHUNK).zip(src.par_chunks(PAR_CHUNK)).for_each(|(o, s)| {
                for (o, &x) in o.iter_mut().zip(s) {
                    *o = f(x);
                }
            });
            return out;
        }
        return src.iter().map(|&x| f(x)).collect();
    }
    let mut out = Vec::with_capacity(n);
    for_each_row(la.shape(), [la.strides()], [la.offset()], |[o], len, [s]| {
        if s == 1 {
            out.extend(a[o..o + len].iter().map(|&x| f(x)));
        } else {
            out.extend((0..len).map(|k| f(a[o + k * s])));
        }
    });
    out
}

/// Applies an in-place slice function (e.g. `Element::sigmoid_inplace`) to the logical elements
/// of `a`; row-major output, split into fixed pieces across threads when large.
pub(crate) fn unary_inplace<E: Element>(a: &[E], la: &Layout, f: fn(&mut [E])) -> Vec<E> {
    let mut out =
        if la.is_contiguous() { a[la.offset()..la.offset() + la.numel()].to_vec() } else { gather_contiguous(a, la) };
    if out.len() >= PAR_ELEMS {
        out.par_chunks_mut(PAR_CHUNK).for_each(f);
    } else {
        f(&mut out);
    }
    out
}

/// `out[i] = f(a[i], b[i])` for two layouts of the same shape; `out` is row-major.
pub(crate) fn binary<E: Element>(a: &[E], la: &Layout, b: &[E], lb: &Layout, f: impl Fn(E, E) -> E + Sync) -> Vec<E> {
    debug_assert_eq!(la.shape(), lb.shape());
    let n = la.numel();
    let mut out = vec![E::zero(); n];
    if la.is_contiguous() && lb.is_contiguous() {
        let sa = &a[la.offset()..la.offset() + n];
        let sb = &b[lb.offset()..lb.offset() + n];
        let body = |(o, (x, y)): (&mut [E], (&[E], &[E]))| {
            for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                *o = f(x, y);
            }
        };
        if n >= PAR_ELEMS {
            out.par_chunks_mut(PAR_CHUNK).zip(sa.par_chunks(PAR_CHUNK).zip(sb.par_chunks(PAR_CHUNK))).for_each(body);
        } else {
            body((&mut out, (sa, sb)));
        }
        return out;
    }
    let strided = |out: &mut [E], la: &Layout, lb: &Layout| {
        let mut pos = 0;
        for_each_row(
            la.shape(),
            [la.strides(), lb.strides()],
            [la.offset(), lb.offset()],
            |[oa, ob], len, [sa, sb]| {
                let dst = &mut out[pos..pos + len];
                match (sa, sb) {
                    (1, 1) => {
                        for ((d, &x), &y) in dst.iter_mut().zip(&a[oa..oa + len]).zip(&b[ob..ob + len]) {
                            *d = f(x, y);
                        }
                    }
                    (1, 0) => {
                        let y = b[ob];
                        for (d, &x) in dst.iter_mut().zip(&a[oa..oa + len]) {
                            *d = f(x, y);
                        }
                    }
                    (0, 1) => {
                        let x = a[oa];
                        for (d, &y) in dst.iter_mut().zip(&b[ob..ob + len]) {
                            *d = f(x, y);
                        }
                    }
                    _ => {
                        for (k, d) in dst.iter_mut().enumerate() {
                            *d = f(a[oa + k * sa], b[ob + k * sb]);
                        }
                    }
                }
                pos += len;
            },
        );
    };
    par_over_dim0(&mut out, la, lb, strided);
    out
}

/// Runs a strided kernel over `out`, split along dim 0 into fixed-size pieces when large.
fn par_over_dim0<E: Element>(
    out: &mut [E],
    la: &Layout,
    lb: &Layout,
    kernel: impl Fn(&mut [E], &Layout, &Layout) + Sync,
) {
    let n = la.numel();
    let d0 = la.shape().first().copied().unwrap_or(1);
    if n < PAR_ELEMS || d0 < 2 {
        kernel(out, la, lb);
        return;
    }
    let row = n / d0;
    let rows_per = PAR_CHUNK.div_ceil(row).max(1);
    out.par_chunks_mut(rows_per * row).enumerate().for_each(|(i, o)| {
        let start = i * rows_per;
        let len = o.len() / row;
        kernel(o, &la.narrow(0, start, len), &lb.narrow(0, start, len));
    });
}

/// Copies the logical elements of a strided layout into a new row-major vector.
pub(crate) fn gather_contiguous<E: Element>(a: &[E], la: &Layout) -> Vec<E> {
    unary(a, la, |x| x)
}
