//! Loops over equal-length slices that several kernels share, each compiled for the widest
//! vector unit the CPU has (see [`simd_dispatch!`](super::simd_dispatch)), plus the strided
//! copy and add of one layout into another.

use super::simd_dispatch;
use crate::tensor::element::Element;
use crate::tensor::layout::{Layout, for_each_row};

simd_dispatch! {
    /// `a += b`.
    pub(crate) fn add_assign<const FMA: bool, E: Element>(a: &mut [E], b: &[E]) {
        let n = a.len();
        let b = &b[..n];
        for j in 0..n {
            a[j] += b[j];
        }
    }
}

simd_dispatch! {
    /// `a += b ⊙ c`.
    pub(crate) fn add_product<const FMA: bool, E: Element>(a: &mut [E], b: &[E], c: &[E]) {
        let n = a.len();
        let (b, c) = (&b[..n], &c[..n]);
        for j in 0..n {
            a[j] += b[j] * c[j];
        }
    }
}

simd_dispatch! {
    /// `out = a ⊙ b`.
    pub(crate) fn mul_into<const FMA: bool, E: Element>(out: &mut [E], a: &[E], b: &[E]) {
        let n = out.len();
        let (a, b) = (&a[..n], &b[..n]);
        for j in 0..n {
            out[j] = a[j] * b[j];
        }
    }
}

simd_dispatch! {
    /// `a /= d`: a division, not a multiplication by `1/d`, so that an average over `d`
    /// processes has the bits of `x / d`. (Only the `mpi` feature's all-reduce uses it.)
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn div_assign_scalar<const FMA: bool, E: Element>(a: &mut [E], d: E) {
        for v in a.iter_mut() {
            *v /= d;
        }
    }
}

/// A 52-bit hash of the values' bit patterns (exact in an `f64`), for checking that copies held
/// by several processes are bit-for-bit equal.
pub(crate) fn bit_fingerprint<E: Element>(values: &[E]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        let bits = v.to_f64().map_or(u64::MAX, f64::to_bits);
        h = (h ^ bits).wrapping_mul(0x0100_0000_01b3).rotate_left(17);
    }
    h >> 12
}

/// Copies the logical elements of `src` (laid out by `ls`) into the positions `ld` addresses in
/// `out`; the layouts have the same shape.
pub(crate) fn copy_strided<E: Element>(out: &mut [E], ld: &Layout, src: &[E], ls: &Layout) {
    strided::<false, E>(out, ld, src, ls)
}

/// Adds the logical elements of `src` (laid out by `ls`) into the positions `ld` addresses in
/// `out`; the layouts have the same shape. Each element gets one addition, in the same order
/// whatever the layouts, so the bits match an elementwise `out + src`.
pub(crate) fn add_strided<E: Element>(out: &mut [E], ld: &Layout, src: &[E], ls: &Layout) {
    strided::<true, E>(out, ld, src, ls)
}

/// The one strided walk behind [`copy_strided`] and [`add_strided`]: innermost rows, with a
/// slice fast path where both rows are contiguous.
fn strided<const ADD: bool, E: Element>(out: &mut [E], ld: &Layout, src: &[E], ls: &Layout) {
    assert_eq!(ld.shape(), ls.shape(), "strided copy: layouts of shapes {:?} and {:?}", ld.shape(), ls.shape());
    for_each_row(ld.shape(), [ld.strides(), ls.strides()], [ld.offset(), ls.offset()], |[od, os], len, [sd, ss]| {
        if sd == 1 && ss == 1 {
            let (dst, s) = (&mut out[od..od + len], &src[os..os + len]);
            if ADD { add_assign(dst, s) } else { dst.copy_from_slice(s) }
        } else if ADD {
            for k in 0..len {
                out[od + k * sd] += src[os + k * ss];
            }
        } else {
            for k in 0..len {
                out[od + k * sd] = src[os + k * ss];
            }
        }
    });
}
