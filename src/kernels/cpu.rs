//! What the kernels need to know about the machine they run on, found out at run time: the
//! data-cache sizes (from CPUID on x86, else sensible defaults), the CPU's name, and what one
//! rayon fork-join costs here (measured once, on first use). The GEMM's cache blocking and every
//! "is splitting this worth it" decision come from these values, not from one machine's constants.

use std::sync::OnceLock;
use std::time::Instant;

/// Data-cache sizes in bytes, per core for L1 and L2; L3 as reported (shared by several cores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Caches {
    pub l1d: usize,
    pub l2: usize,
    pub l3: usize,
}

/// Used where the CPU does not say: 32 KiB, 512 KiB, 8 MiB (common to most x86 and Arm cores
/// of the last decade, and small enough not to overflow any of them).
const DEFAULT_CACHES: Caches = Caches { l1d: 32 << 10, l2: 512 << 10, l3: 8 << 20 };

/// The data caches of the CPU this process runs on (read once).
pub(crate) fn caches() -> Caches {
    static CACHES: OnceLock<Caches> = OnceLock::new();
    *CACHES.get_or_init(detect_caches)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn detect_caches() -> Caches {
    use raw_cpuid::{CacheType, CpuId};
    let mut found = Caches { l1d: 0, l2: 0, l3: 0 };
    if let Some(params) = CpuId::new().get_cache_parameters() {
        for p in params {
            if !matches!(p.cache_type(), CacheType::Data | CacheType::Unified) {
                continue;
            }
            let size = p.associativity() * p.physical_line_partitions() * p.coherency_line_size() * p.sets();
            match p.level() {
                1 => found.l1d = size,
                2 => found.l2 = size,
                3 => found.l3 = size,
                _ => {}
            }
        }
    }
    sanitize(found)
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn detect_caches() -> Caches {
    sanitize(Caches { l1d: 0, l2: 0, l3: 0 })
}

/// Replaces missing or implausible sizes (a hypervisor may report anything) by the defaults.
fn sanitize(c: Caches) -> Caches {
    let pick = |v: usize, lo: usize, hi: usize, default: usize| if (lo..=hi).contains(&v) { v } else { default };
    let l1d = pick(c.l1d, 8 << 10, 1 << 20, DEFAULT_CACHES.l1d);
    let l2 = pick(c.l2, l1d * 2, 64 << 20, DEFAULT_CACHES.l2.max(l1d * 4));
    let l3 = pick(c.l3, l2, 4 << 30, l2.max(DEFAULT_CACHES.l3));
    Caches { l1d, l2, l3 }
}

/// The CPU's name as it reports it (CPUID's brand string on x86), or the target architecture.
pub(crate) fn cpu_name() -> String {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if let Some(brand) = raw_cpuid::CpuId::new().get_processor_brand_string() {
            let name = brand.as_str().trim();
            if !name.is_empty() {
                return name.to_string();
            }
        }
    }
    std::env::consts::ARCH.to_string()
}

/// Nanoseconds one fork-join on the current rayon pool costs, seen from a thread outside the
/// pool (how ops call the kernels) with the pool's workers asleep (as they are after the serial
/// work between two ops): hand one empty task to each worker, wait for all. Measured once per
/// process, the first time a kernel asks with a pool of two or more threads: the median of 9
/// runs, each after a 1 ms pause that lets the workers go to sleep (about 10 ms in all). It
/// differs by an order of magnitude between machines. Measured back to back instead (workers
/// still spinning), it read 6–19 µs on the Intel VM, and products split on that estimate ran
/// slower on two threads than on one.
pub(crate) fn fork_join_ns() -> f64 {
    static COST: OnceLock<f64> = OnceLock::new();
    *COST.get_or_init(|| {
        let threads = rayon::current_num_threads();
        if threads < 2 {
            return 0.0;
        }
        let once = || {
            std::thread::sleep(std::time::Duration::from_millis(1));
            let t = Instant::now();
            rayon::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|_| {
                        std::hint::black_box(0u8);
                    });
                }
            });
            t.elapsed().as_nanos() as f64
        };
        once(); // the pool's threads start
        let mut v: Vec<f64> = (0..9).map(|_| once()).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_are_plausible_and_ordered() {
        let c = caches();
        assert!(c.l1d >= 8 << 10 && c.l1d <= 1 << 20, "{c:?}");
        assert!(c.l2 >= c.l1d * 2, "{c:?}");
        assert!(c.l3 >= c.l2, "{c:?}");
    }

    #[test]
    fn implausible_sizes_fall_back_to_defaults() {
        assert_eq!(sanitize(Caches { l1d: 0, l2: 0, l3: 0 }), DEFAULT_CACHES);
        let c = sanitize(Caches { l1d: 48 << 10, l2: 2 << 20, l3: 1 });
        assert_eq!((c.l1d, c.l2, c.l3), (48 << 10, 2 << 20, 8 << 20));
    }

    #[test]
    fn cpu_has_a_name() {
        assert!(!cpu_name().is_empty());
    }
}
