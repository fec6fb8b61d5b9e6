//! The hot loops, on raw slices and layouts: no graph, no `Tensor`.
//!
//! The parallel policy lives here, in one place: work is split into pieces whose boundaries
//! depend only on the problem size, never on the number of threads, and each output element is
//! computed by exactly one piece in a fixed order. Results are therefore bit-identical whatever
//! `RAYON_NUM_THREADS` is. (Small fixed pieces also balance better than one piece per thread on a
//! busy machine: tried for the elementwise maps, it was no faster.)

pub(crate) mod lstm;
pub(crate) mod map;
pub(crate) mod math;
pub(crate) mod matmul;
pub(crate) mod reduce;

/// Below this many elements an elementwise kernel runs on the calling thread.
pub(crate) const PAR_ELEMS: usize = 1 << 15;

/// Elements per parallel piece for elementwise kernels.
pub(crate) const PAR_CHUNK: usize = 1 << 14;

/// Whether the current rayon pool has more than one thread. With one, kernels run their pieces
/// on the calling thread, in the same pieces: handing work to a one-thread pool only adds a
/// sleep and a wake-up per op (a 1M-element broadcast add went from 110 to 88 µs).
pub(crate) fn parallel() -> bool {
    rayon::current_num_threads() > 1
}

/// The widest vector build this CPU can run: 2 for AVX-512 (F, VL) with AVX2 and FMA, 1 for
/// AVX2 and FMA, 0 for the baseline. Detected once; the kernels ask per call.
#[cfg(target_arch = "x86_64")]
fn simd_level() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    static LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);
    let level = LEVEL.load(Ordering::Relaxed);
    if level != u8::MAX {
        return level;
    }
    let avx2_fma = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    let avx512 = std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl");
    let level = match (avx2_fma, avx512) {
        (true, true) => 2,
        (true, false) => 1,
        _ => 0,
    };
    LEVEL.store(level, Ordering::Relaxed);
    level
}

/// Whether the CPU has the AVX-512 subsets (and AVX2+FMA) that the widest builds use.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    simd_level() == 2
}

/// Whether the CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    simd_level() >= 1
}

/// Defines `fn $name<E: Element>(args) { body }` so that the body, an elementwise loop over
/// slices, is compiled for the widest vector unit the CPU has: AVX-512, else AVX2+FMA, else the
/// baseline, picked at run time. The arithmetic is the same in every build (no operation is fused
/// or reordered), only the number of lanes differs, so the bits do not depend on the CPU.
macro_rules! wide_simd {
    ($(#[$doc:meta])* fn $name:ident<E: Element>($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        fn $name<E: Element>($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<E: Element>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512<E: Element>($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2<E: Element>($($arg: $ty),*) {
                    body($($arg),*)
                }
                if $crate::kernels::has_avx512() {
                    // SAFETY: the CPU has AVX-512F/VL, AVX2 and FMA (checked just above), all
                    // that `avx512` was compiled to use.
                    return unsafe { avx512($($arg),*) };
                }
                if $crate::kernels::has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above), all that `avx2`
                    // was compiled to use.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use wide_simd;
