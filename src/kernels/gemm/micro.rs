//! Register-blocked micro-kernels: `C[MR×NR] (+)= A_panel · B_panel` over `kc` steps.
//!
//! The packed panels (see `pack.rs`) hold, for each step `p`, `MR` values of a column of A and
//! `NR` values of a row of B side by side. A kernel keeps the whole `MR×NR` tile of C in vector
//! registers: per step it loads the B row as `NR / lanes` vectors, broadcasts each of the `MR`
//! A values and does `MR·NR / lanes` fused multiply-adds. C is row-major, so the tile is written
//! back as whole vectors along its rows.
//!
//! | build | f32 tile | f64 tile | accumulators |
//! |---|---|---|---|
//! | AVX-512 (32 vector registers) | 12 × 32 | 12 × 16 | 24 |
//! | AVX2 + FMA (16 vector registers) | 6 × 16 | 6 × 8 | 12 |
//! | portable (plain Rust, SSE2 on x86-64) | 4 × 8 | 4 × 4 | 8 (vectorised by the compiler) |
//!
//! Each element of the tile is one chain of multiply-adds in step order, then added to what C
//! held (when accumulating): the same arithmetic for every tile, wherever the tile's edges fall.

use std::any::Any;

use crate::tensor::element::Element;

/// `C[MR×NR] = A_panel·B_panel` (`accumulate = false`) or `C += A_panel·B_panel`.
///
/// # Safety
/// `a` must be valid for `kc·MR` reads and `b` for `kc·NR` reads; `c` for reads and writes of
/// `MR` rows of `NR` elements at row stride `rsc`, not overlapping `a` or `b`. The CPU must
/// have the features the kernel was compiled for (guaranteed by [`kernel`]).
pub(crate) type KernelFn<E> = unsafe fn(kc: usize, a: *const E, b: *const E, c: *mut E, rsc: usize, accumulate: bool);

/// One row of C across `np` (1 to 4) consecutive B panels: `C[0, 0..np·NR] (+)= a · B`, the row
/// of A read every `astride` values (one row of a packed A panel), the panels `pstride` apart.
/// Each element is the same chain of operations as in the tile kernel, so a row computed this
/// way has the same bits as one computed in a tile.
///
/// # Safety
/// `a` valid for `kc` reads at stride `astride`, `b` for `np` panels of `kc·NR` reads `pstride`
/// apart, `c` for `np·NR` reads and writes; the CPU must have the kernel's features.
pub(crate) type RowFn<E> = unsafe fn(
    kc: usize,
    a: *const E,
    astride: usize,
    b: *const E,
    pstride: usize,
    np: usize,
    c: *mut E,
    accumulate: bool,
);

/// One micro-kernel and its tile.
#[derive(Clone, Copy)]
pub(crate) struct Kernel<E> {
    /// A short name for messages and benchmark headers.
    pub name: &'static str,
    /// Rows of the C tile.
    pub mr: usize,
    /// Columns of the C tile.
    pub nr: usize,
    /// Its speed on one core, in multiply-adds per nanosecond, roughly (AVX-512 `f32` measured
    /// 65–70 on the Intel VM): used only to tell whether a split across threads pays.
    pub macs_per_ns: f64,
    /// The kernel itself.
    pub run: KernelFn<E>,
    /// Its one-row form, for products with fewer rows than a tile (batch-1 inference).
    pub row: RowFn<E>,
}

impl<E> std::fmt::Debug for Kernel<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}x{}", self.name, self.mr, self.nr)
    }
}

/// The widest kernel for `E` that runs at SIMD `level` (0, 1, 2) or below on this CPU.
pub(crate) fn kernel<E: Element>(level: u8) -> Kernel<E> {
    #[cfg(target_arch = "x86_64")]
    let level = level.min(if super::super::has_avx512() {
        2
    } else if super::super::has_avx2_fma() {
        1
    } else {
        0
    });
    #[cfg(not(target_arch = "x86_64"))]
    let level = level.min(0);
    let f32: Kernel<f32> = match level {
        #[cfg(target_arch = "x86_64")]
        2 => {
            Kernel { name: "avx512", mr: 12, nr: 32, macs_per_ns: 60.0, run: x86::avx512_f32, row: x86::avx512_f32_row }
        }
        #[cfg(target_arch = "x86_64")]
        1 => Kernel { name: "avx2+fma", mr: 6, nr: 16, macs_per_ns: 30.0, run: x86::avx2_f32, row: x86::avx2_f32_row },
        _ => Kernel {
            name: "portable",
            mr: 4,
            nr: 8,
            macs_per_ns: 4.0,
            run: portable::<f32, 4, 8>,
            row: portable_row::<f32, 8>,
        },
    };
    let f64: Kernel<f64> = match level {
        #[cfg(target_arch = "x86_64")]
        2 => {
            Kernel { name: "avx512", mr: 12, nr: 16, macs_per_ns: 30.0, run: x86::avx512_f64, row: x86::avx512_f64_row }
        }
        #[cfg(target_arch = "x86_64")]
        1 => Kernel { name: "avx2+fma", mr: 6, nr: 8, macs_per_ns: 15.0, run: x86::avx2_f64, row: x86::avx2_f64_row },
        _ => Kernel {
            name: "portable",
            mr: 4,
            nr: 4,
            macs_per_ns: 2.0,
            run: portable::<f64, 4, 4>,
            row: portable_row::<f64, 4>,
        },
    };
    let any: &dyn Any = if E::NAME == "f32" { &f32 } else { &f64 };
    *any.downcast_ref::<Kernel<E>>().expect("Element is sealed to f32 and f64")
}

/// The portable kernel: plain loops over a fixed-size tile that the compiler unrolls and
/// vectorises for the baseline target. Multiply, then add (no fused multiply-add).
///
/// # Safety
/// As [`KernelFn`].
unsafe fn portable<E: Element, const MR: usize, const NR: usize>(
    kc: usize,
    a: *const E,
    b: *const E,
    c: *mut E,
    rsc: usize,
    accumulate: bool,
) {
    let mut acc = [[E::zero(); NR]; MR];
    // SAFETY: the caller guarantees `kc·MR` readable elements at `a` and `kc·NR` at `b`.
    let (a, b) = unsafe { (std::slice::from_raw_parts(a, kc * MR), std::slice::from_raw_parts(b, kc * NR)) };
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] += ap[i] * bp[j];
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: the caller guarantees MR rows of NR writable elements at row stride `rsc`,
        // not overlapping the panels.
        let ci = unsafe { std::slice::from_raw_parts_mut(c.add(i * rsc), NR) };
        for (x, &v) in ci.iter_mut().zip(row) {
            *x = if accumulate { v + *x } else { v };
        }
    }
}

/// The portable kernel's one-row form (see [`RowFn`]).
///
/// # Safety
/// As [`RowFn`].
#[allow(clippy::too_many_arguments)]
unsafe fn portable_row<E: Element, const NR: usize>(
    kc: usize,
    a: *const E,
    astride: usize,
    b: *const E,
    pstride: usize,
    np: usize,
    c: *mut E,
    accumulate: bool,
) {
    for q in 0..np {
        let mut acc = [E::zero(); NR];
        for p in 0..kc {
            // SAFETY: the caller guarantees `kc` A values at stride `astride` and `np` panels of
            // `kc·NR` B values `pstride` apart.
            let (ap, bp) =
                unsafe { (*a.add(p * astride), std::slice::from_raw_parts(b.add(q * pstride + p * NR), NR)) };
            for j in 0..NR {
                acc[j] += ap * bp[j];
            }
        }
        // SAFETY: the caller guarantees `np·NR` writable values at `c`.
        let cq = unsafe { std::slice::from_raw_parts_mut(c.add(q * NR), NR) };
        for (x, &v) in cq.iter_mut().zip(&acc) {
            *x = if accumulate { v + *x } else { v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// One kernel with a tile of `MR` rows by two vectors: per step, two vector loads of B, `MR`
    /// broadcasts of A, `2·MR` fused multiply-adds; the accumulators stay in registers.
    macro_rules! kernel {
        ($name:ident, $row:ident, $features:literal, $t:ty, $lanes:expr, $mr:expr,
         $zero:ident, $load:ident, $store:ident, $set1:ident, $fma:ident, $add:ident) => {
            /// # Safety
            /// As `RowFn`; the CPU must have the enabled features.
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn $row(
                kc: usize,
                a: *const $t,
                astride: usize,
                b: *const $t,
                pstride: usize,
                np: usize,
                c: *mut $t,
                accumulate: bool,
            ) {
                /// `NP` panels at once: 2·NP independent chains of multiply-adds.
                #[target_feature(enable = $features)]
                #[allow(clippy::too_many_arguments)]
                unsafe fn panels<const NP: usize>(
                    kc: usize,
                    a: *const $t,
                    astride: usize,
                    b: *const $t,
                    pstride: usize,
                    c: *mut $t,
                    accumulate: bool,
                ) {
                    const L: usize = $lanes;
                    let mut acc = [[$zero(); 2]; NP];
                    for p in 0..kc {
                        // SAFETY: the caller's contract (`RowFn`): kc A values at stride
                        // `astride`, NP panels of kc·2L B values `pstride` apart.
                        unsafe {
                            let ap = $set1(*a.add(p * astride));
                            for q in 0..NP {
                                let bq = b.add(q * pstride + p * 2 * L);
                                acc[q][0] = $fma(ap, $load(bq), acc[q][0]);
                                acc[q][1] = $fma(ap, $load(bq.add(L)), acc[q][1]);
                            }
                        }
                    }
                    for (q, r) in acc.iter().enumerate() {
                        // SAFETY: NP·2L writable values at `c` (the caller's contract).
                        unsafe {
                            let cq = c.add(q * 2 * L);
                            let (mut r0, mut r1) = (r[0], r[1]);
                            if accumulate {
                                r0 = $add(r0, $load(cq));
                                r1 = $add(r1, $load(cq.add(L)));
                            }
                            $store(cq, r0);
                            $store(cq.add(L), r1);
                        }
                    }
                }
                // SAFETY: as this function's contract; `panels` has the same features.
                unsafe {
                    match np {
                        4 => panels::<4>(kc, a, astride, b, pstride, c, accumulate),
                        3 => panels::<3>(kc, a, astride, b, pstride, c, accumulate),
                        2 => panels::<2>(kc, a, astride, b, pstride, c, accumulate),
                        _ => panels::<1>(kc, a, astride, b, pstride, c, accumulate),
                    }
                }
            }

            /// # Safety
            /// As `KernelFn`; the CPU must have the enabled features.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(
                kc: usize,
                a: *const $t,
                b: *const $t,
                c: *mut $t,
                rsc: usize,
                accumulate: bool,
            ) {
                const MR: usize = $mr;
                const L: usize = $lanes;
                if accumulate {
                    // The tile of C is read at the end: start bringing it in now, so that its
                    // rows (one page apart in a wide C) arrive while the loop runs.
                    for i in 0..MR {
                        // SAFETY: a prefetch of an address inside the tile never faults.
                        unsafe {
                            let ci = c.add(i * rsc) as *const i8;
                            _mm_prefetch::<_MM_HINT_T0>(ci);
                            _mm_prefetch::<_MM_HINT_T0>(ci.add(2 * L * std::mem::size_of::<$t>() - 1));
                        }
                    }
                }
                let mut acc = [[$zero(); 2]; MR];
                let (mut pa, mut pb) = (a, b);
                // One step: two vectors of B, MR broadcasts of A, 2·MR multiply-adds.
                macro_rules! step {
                    () => {
                        // SAFETY: `kc` steps of `MR` A values and `2·L` B values are readable
                        // (the caller's contract); unaligned loads.
                        unsafe {
                            let b0 = $load(pb);
                            let b1 = $load(pb.add(L));
                            for i in 0..MR {
                                let ai = $set1(*pa.add(i));
                                acc[i][0] = $fma(ai, b0, acc[i][0]);
                                acc[i][1] = $fma(ai, b1, acc[i][1]);
                            }
                            pa = pa.add(MR);
                            pb = pb.add(2 * L);
                        }
                    };
                }
                // Four steps per turn of the loop (a quarter of the loop overhead).
                for _ in 0..kc / 4 {
                    step!();
                    step!();
                    step!();
                    step!();
                }
                for _ in 0..kc % 4 {
                    step!();
                }
                for (i, r) in acc.iter().enumerate() {
                    // SAFETY: row `i` of the tile holds `2·L` writable elements at
                    // `c + i·rsc` (the caller's contract).
                    unsafe {
                        let ci = c.add(i * rsc);
                        let (mut r0, mut r1) = (r[0], r[1]);
                        if accumulate {
                            r0 = $add(r0, $load(ci));
                            r1 = $add(r1, $load(ci.add(L)));
                        }
                        $store(ci, r0);
                        $store(ci.add(L), r1);
                    }
                }
            }
        };
    }

    kernel!(
        avx512_f32,
        avx512_f32_row,
        "avx512f,avx512vl,avx2,fma",
        f32,
        16,
        12,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps
    );
    kernel!(
        avx512_f64,
        avx512_f64_row,
        "avx512f,avx512vl,avx2,fma",
        f64,
        8,
        12,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd
    );
    kernel!(
        avx2_f32,
        avx2_f32_row,
        "avx2,fma",
        f32,
        8,
        6,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps
    );
    kernel!(
        avx2_f64,
        avx2_f64_row,
        "avx2,fma",
        f64,
        4,
        6,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd
    );
}
