//! The hot loops, on raw slices and layouts: no graph, no `Tensor`. Every loop over tensor
//! data in the crate lives here, and so does every `unsafe` block.
//!
//! **Parallelism** is one explicit value, [`Par`], that the caller passes in: `Par::Seq` runs on
//! the calling thread, `Par::Rayon` may split the work across the current rayon pool. Ops take
//! it from [`Par::current`] (the one place the pool's size is read); a kernel that already runs
//! inside a parallel block passes `Par::Seq` to the kernels it calls. The splits:
//!
//! - whether to split at all: only where the time saved is well above what a fork-join costs
//!   on this machine, measured once per process ([`Par::for_work`]), so that two threads are
//!   not slower than one on a machine where waking a thread is slow.
//! - elementwise maps and full sums: fixed pieces of [`PAR_CHUNK`] elements,
//!   whose boundaries depend only on the problem size; a full sum adds the pieces' sums in
//!   order. With `Par::Seq` the same pieces run in turn.
//! - matmul: blocks of output rows (or columns), about one per thread, above a size threshold;
//!   the LSTM: blocks of batch rows, about one per thread. These splits do depend on the number
//!   of threads, but every output element is still computed by one call running the same loop
//!   in the same order whatever the block it falls in.
//!
//! So every result is bit-identical whatever `RAYON_NUM_THREADS` is (`tests/threads.rs`,
//! `tests/matmul.rs`). Small fixed pieces also balance better than one piece per thread on a
//! busy machine (tried for the elementwise maps: no faster).

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod cpu;
pub(crate) mod entry;
pub(crate) mod gemm;
pub(crate) mod index;
pub(crate) mod info;
pub(crate) mod lstm;
pub(crate) mod map;
pub(crate) mod math;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod pad;
pub(crate) mod pool;
pub(crate) mod random;
pub(crate) mod reduce;
pub(crate) mod slice;

/// Below this many elements an elementwise kernel runs on the calling thread.
pub(crate) const PAR_ELEMS: usize = 1 << 15;

/// One thread's time per element of an elementwise pass, for [`Par::for_elems`]: a broadcast
/// add and a vectorised sigmoid over 2^20 `f32` took 0.3–0.4 ns per element on one core of the
/// Intel Xeon VM (family 6, model 207); the figures recorded for the AMD Zen 5 in `Par::current`
/// and `kernels/math.rs` are about 0.1. Taken from the slower machine: with 0.1, a sigmoid over
/// 2^20 values stayed on one thread there and ran 1.9× slower than the split it had before.
pub(crate) const NS_PER_ELEM: f64 = 0.3;

/// Elements per parallel piece for elementwise kernels.
pub(crate) const PAR_CHUNK: usize = 1 << 14;

/// How a kernel may run: on the calling thread, or split across the current rayon pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Par {
    /// On the calling thread only.
    Seq,
    /// Split into rayon tasks on a pool of `threads` (≥ 2) threads.
    Rayon {
        /// The pool's size, for kernels that split per thread.
        threads: usize,
    },
}

impl Par {
    /// The parallelism of the calling thread's rayon pool: `Seq` for a one-thread pool, where
    /// handing work to the pool's one worker only adds a sleep and a wake-up per op (a
    /// 1M-element broadcast add went from 110 to 88 µs running on the calling thread instead).
    pub(crate) fn current() -> Par {
        match rayon::current_num_threads() {
            0 | 1 => Par::Seq,
            threads => Par::Rayon { threads },
        }
    }

    /// Whether the work may be split across threads.
    pub(crate) fn is_parallel(self) -> bool {
        matches!(self, Par::Rayon { .. })
    }

    /// `self` if splitting work that takes about `alone_ns` on one thread saves at least twice
    /// what a fork-join costs on this machine ([`cpu::fork_join_ns`], measured once), else
    /// `Seq`. A threshold in elements or multiply-adds alone holds on one machine only: on the
    /// Intel Xeon VM measured (family 6, model 207) a fork-join cost 21–65 µs with the workers
    /// asleep, and a 256² product split on a 6–19 µs estimate ran 0.73× as fast on 2 threads.
    pub(crate) fn for_work(self, alone_ns: f64) -> Par {
        match self {
            Par::Seq => Par::Seq,
            Par::Rayon { threads } => {
                let saved_ns = alone_ns * (1.0 - 1.0 / threads as f64);
                if saved_ns >= 2.0 * cpu::fork_join_ns() { self } else { Par::Seq }
            }
        }
    }

    /// [`Par::for_work`] for an elementwise pass over `n` elements (at about
    /// [`NS_PER_ELEM`] each); `Seq` below [`PAR_ELEMS`] without asking.
    pub(crate) fn for_elems(self, n: usize) -> Par {
        if n < PAR_ELEMS { Par::Seq } else { self.for_work(n as f64 * NS_PER_ELEM) }
    }

    /// The number of threads the work may use (1 for `Seq`).
    pub(crate) fn threads(self) -> usize {
        match self {
            Par::Seq => 1,
            Par::Rayon { threads } => threads,
        }
    }
}

/// The widest vector build this CPU can run: 2 for AVX-512 (F, VL) with AVX2 and FMA, 1 for
/// AVX2 and FMA, 0 for the baseline. Detected once; the kernels ask per call.
#[cfg(target_arch = "x86_64")]
fn simd_level() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    static LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);
    let level = LEVEL.load(Ordering::Relaxed);
    if level != u8::MAX {
        #[cfg(test)]
        return FORCED_LEVEL.with(|f| f.get()).map_or(level, |forced| forced.min(level));
        #[cfg(not(test))]
        return level;
    }
    let avx2_fma = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    let avx512 = std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl");
    let level = match (avx2_fma, avx512) {
        (true, true) => 2,
        (true, false) => 1,
        _ => 0,
    };
    let level = level.min(requested_level().unwrap_or(2));
    LEVEL.store(level, Ordering::Relaxed);
    level
}

/// The environment variable that caps the SIMD build every kernel uses: `avx512`, `avx2` or
/// `portable` (read once, on the first kernel call). Unset, or any other value: the widest
/// build the CPU runs.
pub(crate) const SIMD_ENV: &str = "TENSORGRAD_SIMD";

/// The cap asked for in [`SIMD_ENV`], if any.
#[cfg(target_arch = "x86_64")]
fn requested_level() -> Option<u8> {
    match std::env::var(SIMD_ENV).ok()?.trim().to_ascii_lowercase().as_str() {
        "portable" | "none" | "baseline" => Some(0),
        "avx2" | "avx2+fma" => Some(1),
        "avx512" => Some(2),
        _ => None,
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
thread_local! {
    /// In unit tests: the widest build this thread may use (see [`tests::with_level`]).
    static FORCED_LEVEL: std::cell::Cell<Option<u8>> = const { std::cell::Cell::new(None) };
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

/// The one SIMD dispatch of the crate. Defines `fn $name(args) { body }` so that the body, a
/// loop over slices, is compiled three times — for AVX-512 (F, VL) with AVX2 and FMA, for AVX2
/// with FMA, and for the baseline target — and the widest build this CPU can run is picked at
/// run time. The body sees a `const` flag (named in the signature, e.g. `FMA`) that is true in
/// the two builds with fused multiply-adds; a body that does not use it has the same arithmetic
/// in every build (only the number of lanes differs), so its bits do not depend on the CPU.
///
/// ```ignore
/// simd_dispatch! {
///     /// `a += b`.
///     pub(crate) fn add_assign<const FMA: bool, E: Element>(a: &mut [E], b: &[E]) { … }
/// }
/// ```
macro_rules! simd_dispatch {
    (
        $(#[$doc:meta])*
        $vis:vis fn $name:ident<const $fma:ident: bool $(, $g:ident: $bound:ident)?>($($arg:ident: $ty:ty),* $(,)?)
        $(-> $ret:ty)?
        $body:block
    ) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name$(<$g: $bound>)?($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<const $fma: bool $(, $g: $bound)?>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512$(<$g: $bound>)?($($arg: $ty),*) $(-> $ret)? {
                    body::<true $(, $g)?>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2$(<$g: $bound>)?($($arg: $ty),*) $(-> $ret)? {
                    body::<true $(, $g)?>($($arg),*)
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
            body::<false $(, $g)?>($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) mod tests {
    //! Every build of every `simd_dispatch!` loop, forced in turn on the calling thread.

    use super::{FORCED_LEVEL, math, reduce, simd_level, slice};

    /// Runs `f` with the dispatch limited to builds up to `level` (0 baseline, 1 AVX2+FMA,
    /// 2 AVX-512) on this thread; returns `None` if the CPU cannot run that build.
    pub(crate) fn with_level<R>(level: u8, f: impl FnOnce() -> R) -> Option<R> {
        FORCED_LEVEL.with(|c| c.set(None));
        if level > simd_level() {
            return None;
        }
        FORCED_LEVEL.with(|c| c.set(Some(level)));
        let r = f();
        FORCED_LEVEL.with(|c| c.set(None));
        Some(r)
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        // A fixed spread of magnitudes and signs, no randomness needed.
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2001) as f32 / 100.0 - 10.0)
            .collect()
    }

    /// The slice loops and the sum do no fused arithmetic: every build gives the same bits. The
    /// transcendentals use fused multiply-adds in both wide builds: those two agree bit for bit
    /// and the baseline stays within 3e-7 of them.
    #[test]
    fn every_build_of_every_loop_agrees() {
        let n = 1000 + 13; // a tail after every vector width
        let (a, b, c) = (values(n, 1), values(n, 2), values(n, 3));
        let run = |level: u8| {
            with_level(level, || {
                let mut out = vec![Vec::new(); 9];
                let mut x = a.clone();
                slice::add_assign(&mut x, &b);
                out[0] = x;
                let mut x = a.clone();
                slice::add_product(&mut x, &b, &c);
                out[1] = x;
                let mut x = vec![0.0; n];
                slice::mul_into(&mut x, &a, &b);
                out[2] = x;
                let mut x = vec![0.0; n];
                slice::mul_into(&mut x, &c, &a);
                out[3] = x;
                for (k, f) in
                    [math::sigmoid_into::<f32>, math::tanh_into::<f32>, math::exp_into::<f32>].into_iter().enumerate()
                {
                    let mut x = vec![0.0; n];
                    f(&a, &mut x);
                    out[4 + k] = x;
                }
                let mut x = a.clone();
                math::sigmoid_inplace(&mut x);
                out[7] = x;
                out[8] = vec![reduce::sum_slice(&a)];
                out
            })
        };
        // The override is in force: the baseline build runs even on a CPU with AVX-512.
        with_level(0, || assert!(!super::has_avx2_fma() && !super::has_avx512()));
        let builds: Vec<(u8, Vec<Vec<f32>>)> = (0..=2).filter_map(|l| run(l).map(|r| (l, r))).collect();
        assert!(!builds.is_empty());
        let (_, widest) = builds.last().unwrap();
        for (level, out) in &builds {
            for (k, (x, y)) in out.iter().zip(widest).enumerate() {
                for (i, (&p, &q)) in x.iter().zip(y).enumerate() {
                    let same = p.to_bits() == q.to_bits();
                    let close = (p - q).abs() <= 3e-7 * q.abs().max(1e-30) || (p - q).abs() < 1e-7;
                    let ok = if k < 4 || k == 8 || *level > 0 { same } else { close };
                    assert!(ok, "build {level}, loop {k}, element {i}: {p} vs {q}");
                }
            }
        }
    }
}
