//! What the kernels chose for this CPU, for users and benchmark reports: [`cpu_info`].

use std::fmt;

use super::gemm::{Blocking, plan};
use super::{Par, cpu};
use crate::tensor::element::Element;

/// The CPU the crate runs on and what its kernels chose for it, as returned by [`cpu_info`].
///
/// The matrix-multiply kernel and its cache blocking are picked at run time from the CPU's
/// vector extensions and cache sizes, so the same binary runs its widest code on every x86-64
/// machine. Set the environment variable `TENSORGRAD_SIMD` to `avx2` or `portable` to cap the
/// build every kernel uses (for instance to reproduce another machine's results bit for bit).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CpuInfo {
    /// The CPU's name as it reports it (its brand string on x86), else the target architecture.
    pub name: String,
    /// The vector build the kernels use: `"avx512"`, `"avx2+fma"` or `"portable"`.
    pub simd: &'static str,
    /// The `f32` matrix-multiply plan.
    pub gemm_f32: GemmPlan,
    /// The `f64` matrix-multiply plan.
    pub gemm_f64: GemmPlan,
    /// Level-1 data cache per core, in bytes (32 KiB where the CPU does not say).
    pub l1d_bytes: usize,
    /// Level-2 cache per core, in bytes (512 KiB where the CPU does not say).
    pub l2_bytes: usize,
    /// Level-3 cache as reported (shared by several cores), in bytes (8 MiB where not said).
    pub l3_bytes: usize,
    /// Threads in the current rayon pool.
    pub threads: usize,
    /// What one fork-join across the current rayon pool costs here, in microseconds (measured
    /// once per process; `None` with a one-thread pool). Work is split across threads only
    /// where it saves well over this.
    pub fork_join_us: Option<f64>,
}

/// How the matrix multiply runs for one element type: the micro-kernel's tile of C kept in
/// registers, and the cache blocking (see `docs/PERFORMANCE.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GemmPlan {
    /// Rows × columns of the register tile.
    pub tile: (usize, usize),
    /// Steps of the inner dimension per packed block (sized to L1).
    pub kc: usize,
    /// Rows of the left operand per packed block (sized to L2).
    pub mc: usize,
    /// Columns of the right operand per packed block (sized to L3).
    pub nc: usize,
}

fn gemm_plan<E: Element>() -> (GemmPlan, &'static str) {
    let (k, Blocking { kc, mc, nc }) = plan::<E>();
    (GemmPlan { tile: (k.mr, k.nr), kc, mc, nc }, k.name)
}

/// Describes this CPU and the kernels chosen for it (measuring the pool's fork-join cost the
/// first time, about a millisecond).
///
/// ```
/// let info = tensorgrad::cpu_info();
/// assert!(["avx512", "avx2+fma", "portable"].contains(&info.simd));
/// assert!(info.gemm_f32.kc > 0 && info.l2_bytes > info.l1d_bytes);
/// println!("{info}"); // one line, e.g. for a benchmark's header
/// ```
pub fn cpu_info() -> CpuInfo {
    let caches = cpu::caches();
    let (gemm_f32, simd) = gemm_plan::<f32>();
    let (gemm_f64, _) = gemm_plan::<f64>();
    let par = Par::current();
    CpuInfo {
        name: cpu::cpu_name(),
        simd,
        gemm_f32,
        gemm_f64,
        l1d_bytes: caches.l1d,
        l2_bytes: caches.l2,
        l3_bytes: caches.l3,
        threads: par.threads(),
        fork_join_us: par.is_parallel().then(|| cpu::fork_join_ns() / 1000.0),
    }
}

impl fmt::Display for CpuInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kib = |b: usize| b >> 10;
        let g = |p: &GemmPlan| format!("{}x{} kc={} mc={} nc={}", p.tile.0, p.tile.1, p.kc, p.mc, p.nc);
        write!(
            f,
            "{} | kernels {} | L1d {} KiB, L2 {} KiB, L3 {} MiB | sgemm {} | dgemm {} | {} thread(s)",
            self.name,
            self.simd,
            kib(self.l1d_bytes),
            kib(self.l2_bytes),
            kib(self.l3_bytes) >> 10,
            g(&self.gemm_f32),
            g(&self.gemm_f64),
            self.threads
        )?;
        if let Some(us) = self.fork_join_us {
            write!(f, ", fork-join {us:.1} µs")?;
        }
        Ok(())
    }
}
