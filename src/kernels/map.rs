//! Elementwise maps and zips: a contiguous fast path over slices that the compiler vectorises,
//! a strided fallback that walks innermost rows, and rayon where [`Par::for_elems`] says it pays.

use rayon::prelude::*;

use super::entry::instance;
use super::{PAR_CHUNK, Par};
use crate::tensor::element::Element;
use crate::tensor::layout::{Layout, for_each_row};
use crate::tensor::memory;

/// `out[i] = f(a[i])` over the logical elements of `a`; `out` is row-major.
pub(crate) fn unary<E: Element>(par: Par, a: &[E], la: &Layout, f: impl Fn(E) -> E + Sync) -> Vec<E> {
    let n = la.numel();
    // Every element is written exactly once below, so the buffer is not cleared first.
    let mut out = memory::take(n);
    if la.is_contiguous() {
        let src = &a[la.offset()..la.offset() + n];
        let body = |(o, s): (&mut [E], &[E])| {
            for (o, &x) in o.iter_mut().zip(s) {
                *o = f(x);
            }
        };
        if par.for_elems(n).is_parallel() {
            out.par_chunks_mut(PAR_CHUNK).zip(src.par_chunks(PAR_CHUNK)).for_each(body);
        } else {
            body((&mut out, src));
        }
        return out;
    }
    let mut pos = 0;
    for_each_row(la.shape(), [la.strides()], [la.offset()], |[o], len, [s]| {
        let dst = &mut out[pos..pos + len];
        if s == 1 {
            dst.iter_mut().zip(&a[o..o + len]).for_each(|(d, &x)| *d = f(x));
        } else {
            dst.iter_mut().enumerate().for_each(|(k, d)| *d = f(a[o + k * s]));
        }
        pos += len;
    });
    out
}

/// Applies a slice function `f(src, dst)` (e.g. [`math::sigmoid_into`](super::math::sigmoid_into)) to the logical elements
/// of `a`; row-major output, split into fixed pieces across threads when large.
pub(crate) fn unary_into<E: Element>(par: Par, a: &[E], la: &Layout, f: fn(&[E], &mut [E])) -> Vec<E> {
    let n = la.numel();
    let gathered;
    let src = if la.is_contiguous() {
        &a[la.offset()..la.offset() + n]
    } else {
        gathered = gather_contiguous(par, a, la);
        &gathered[..]
    };
    let mut out = memory::take(n);
    if par.for_elems(n).is_parallel() {
        out.par_chunks_mut(PAR_CHUNK).zip(src.par_chunks(PAR_CHUNK)).for_each(|(d, s)| f(s, d));
    } else {
        f(src, &mut out);
    }
    out
}

/// `out[i] = f(a[i], b[i])` for two layouts of the same shape; `out` is row-major.
pub(crate) fn binary<E: Element>(
    par: Par,
    a: &[E],
    la: &Layout,
    b: &[E],
    lb: &Layout,
    f: impl Fn(E, E) -> E + Sync,
) -> Vec<E> {
    debug_assert_eq!(la.shape(), lb.shape());
    let n = la.numel();
    // Every element is written exactly once below, so the buffer is not cleared first (that
    // pass cost up to a third of a broadcast add).
    let mut out = memory::take(n);
    if la.is_contiguous() && lb.is_contiguous() {
        let sa = &a[la.offset()..la.offset() + n];
        let sb = &b[lb.offset()..lb.offset() + n];
        let body = |(o, (x, y)): (&mut [E], Pair<'_, E>)| {
            for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                *o = f(x, y);
            }
        };
        if par.for_elems(n).is_parallel() {
            out.par_chunks_mut(PAR_CHUNK).zip(sa.par_chunks(PAR_CHUNK).zip(sb.par_chunks(PAR_CHUNK))).for_each(body);
        } else {
            body((&mut out, (sa, sb)));
        }
    } else {
        par_over_dim0(par, &mut out, la, lb, |out, la, lb| binary_strided(a, la, b, lb, &f, out));
    }
    out
}

/// A pair of input slices.
type Pair<'a, E> = (&'a [E], &'a [E]);

/// The strided part of [`binary`]: writes the logical elements of `f(a, b)` into `out` in order.
fn binary_strided<E: Element>(
    a: &[E],
    la: &Layout,
    b: &[E],
    lb: &Layout,
    f: &(impl Fn(E, E) -> E + Sync),
    out: &mut [E],
) {
    let mut pos = 0;
    for_each_row(la.shape(), [la.strides(), lb.strides()], [la.offset(), lb.offset()], |[oa, ob], len, [sa, sb]| {
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
    });
    assert_eq!(pos, out.len(), "binary kernel: rows did not cover the output");
}

/// Runs a strided kernel over `out`, split along dim 0 into fixed-size pieces when large.
fn par_over_dim0<T: Send>(
    par: Par,
    out: &mut [T],
    la: &Layout,
    lb: &Layout,
    kernel: impl Fn(&mut [T], &Layout, &Layout) + Sync,
) {
    let n = la.numel();
    let d0 = la.shape().first().copied().unwrap_or(1);
    if d0 < 2 || !par.for_elems(n).is_parallel() {
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
pub(crate) fn gather_contiguous<E: Element>(par: Par, a: &[E], la: &Layout) -> Vec<E> {
    unary(par, a, la, |x| x)
}

/// The elementwise functions of one operand that ops name instead of passing a closure, so that
/// their loops run the instance compiled in this crate (see [`entry`](super::entry)).
#[derive(Clone, Copy, Debug)]
pub(crate) enum UnaryOp<E> {
    /// `−x`.
    Neg,
    /// `x + s`.
    AddScalar(E),
    /// `x · s`.
    MulScalar(E),
    /// `max(x, 0)`.
    Relu,
    /// 1 where `x > 0`, else 0 (ReLU's derivative).
    Step,
}

/// [`unary`] with a named function.
pub(crate) fn unary_op<E: Element>(par: Par, a: &[E], la: &Layout, op: UnaryOp<E>) -> Vec<E> {
    type F<T> = fn(Par, &[T], &Layout, UnaryOp<T>) -> Vec<T>;
    static F32: F<f32> = unary_op_impl::<f32>;
    static F64: F<f64> = unary_op_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, a, la, op)
}

/// [`unary_op`]'s body, instantiated in this crate only: one loop per function.
fn unary_op_impl<E: Element>(par: Par, a: &[E], la: &Layout, op: UnaryOp<E>) -> Vec<E> {
    match op {
        UnaryOp::Neg => unary(par, a, la, |x| -x),
        UnaryOp::AddScalar(s) => unary(par, a, la, move |x| x + s),
        UnaryOp::MulScalar(s) => unary(par, a, la, move |x| x * s),
        UnaryOp::Relu => unary(par, a, la, |x| if x > E::zero() { x } else { E::zero() }),
        UnaryOp::Step => unary(par, a, la, |x| if x > E::zero() { E::one() } else { E::zero() }),
    }
}

/// The elementwise functions of two operands that ops name instead of passing a closure.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
}

/// [`binary`] with a named function.
pub(crate) fn binary_op<E: Element>(par: Par, a: &[E], la: &Layout, b: &[E], lb: &Layout, op: BinaryOp) -> Vec<E> {
    type F<T> = fn(Par, &[T], &Layout, &[T], &Layout, BinaryOp) -> Vec<T>;
    static F32: F<f32> = binary_op_impl::<f32>;
    static F64: F<f64> = binary_op_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, a, la, b, lb, op)
}

/// [`binary_op`]'s body, instantiated in this crate only: one loop per function.
fn binary_op_impl<E: Element>(par: Par, a: &[E], la: &Layout, b: &[E], lb: &Layout, op: BinaryOp) -> Vec<E> {
    match op {
        BinaryOp::Add => binary(par, a, la, b, lb, |x, y| x + y),
        BinaryOp::Sub => binary(par, a, la, b, lb, |x, y| x - y),
        BinaryOp::Mul => binary(par, a, la, b, lb, |x, y| x * y),
        BinaryOp::Div => binary(par, a, la, b, lb, |x, y| x / y),
    }
}
