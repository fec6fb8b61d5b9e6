//! The cache of large buffers that tensors are built on.
//!
//! A training step allocates the same large buffers at every step: activations, their
//! gradients, an LSTM's saved gates. Handing such a buffer back to the system allocator and
//! asking for it again is not free: large blocks are returned to the operating system, and every
//! page of a new one faults on its first write, which cost about a quarter of an LSTM training
//! step. So when the last tensor using a buffer of 64 KiB or more is dropped, the buffer is kept
//! here, filed by size class (classes are at most 25 % apart), and the next buffer of that class
//! is taken from the cache instead of the allocator.
//!
//! The cache holds at most [`cache_limit`] bytes (256 MiB unless changed with
//! [`set_cache_limit`]); past that, the buffers cached longest ago are freed first. Buffers of
//! different element types are cached separately but count against the same limit. The default
//! holds a training step of the seed LSTM (about 100 MB of buffers) with room to spare; in the
//! flagship example, limits of 128 MiB, 256 MiB and 1 GiB gave 2.2, 2.2 and 2.3 s per epoch and a
//! peak resident size of 217, 278 and 440 MB (3 epochs), against 4.3 s and 117 MB with the cache
//! off. Raise it for models whose steps free more than that.
//!
//! ```
//! use tensorgrad::{Tensor, memory};
//!
//! let x = Tensor::<f32>::ones(&[512, 512]);
//! let y = &x * 2.0;
//! drop(y); // its 1 MiB buffer goes to the cache...
//! assert!(memory::cached_bytes() >= 512 * 512 * 4);
//! let z = &x + 1.0; // ...and is taken back for `z`
//! assert_eq!(z.get(&[0, 0]), 2.0);
//!
//! memory::clear_cache(); // e.g. after training, to give the memory back
//! memory::set_cache_limit(0); // or turn the cache off
//! # memory::set_cache_limit(memory::DEFAULT_CACHE_LIMIT);
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::tensor::element::Element;

/// Buffers smaller than this go straight to the allocator, which serves them well.
const MIN_BYTES: usize = 64 * 1024;

/// The default for [`cache_limit`]: 256 MiB.
pub const DEFAULT_CACHE_LIMIT: usize = 256 << 20;

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_CACHE_LIMIT);
static CACHED: AtomicUsize = AtomicUsize::new(0);
static CLOCK: AtomicU64 = AtomicU64::new(0);

/// Sets how many bytes of free buffers the cache may hold (0 turns it off) and frees what is
/// cached beyond the new limit.
pub fn set_cache_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
    F32.shrink_to(bytes);
    F64.shrink_to(bytes);
}

/// How many bytes of free buffers the cache may hold.
pub fn cache_limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// How many bytes of free buffers the cache holds now.
pub fn cached_bytes() -> usize {
    CACHED.load(Ordering::Relaxed)
}

/// Frees every cached buffer (the limit stays as it is).
pub fn clear_cache() {
    F32.shrink_to(0);
    F64.shrink_to(0);
}

/// Per size class (a capacity in elements), the cached buffers with the time each was cached,
/// oldest first.
type Classes<E> = BTreeMap<usize, Vec<(u64, Vec<E>)>>;

/// The cached buffers of one element type, by size class.
#[derive(Debug)]
struct Pool<E> {
    classes: Mutex<Classes<E>>,
}

/// The two pools, one per element type; [`pool`] picks the caller's.
static F32: Pool<f32> = Pool::new();
static F64: Pool<f64> = Pool::new();

/// The pool of buffers of `E`.
fn pool<E: Element>() -> &'static Pool<E> {
    let any: &'static dyn std::any::Any =
        if std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>() { &F32 } else { &F64 };
    any.downcast_ref::<Pool<E>>().expect("Element is sealed to f32 and f64")
}

impl<E: Element> Pool<E> {
    const fn new() -> Self {
        Pool { classes: Mutex::new(BTreeMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Classes<E>> {
        // Nothing panics while the lock is held; if something did, the map is still whole.
        self.classes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Frees the oldest buffers until at most `limit` bytes are cached (counting both pools).
    fn shrink_to(&self, limit: usize) {
        let mut classes = self.lock();
        while CACHED.load(Ordering::Relaxed) > limit && evict_oldest(&mut classes) {}
    }
}

/// Frees the buffer cached longest ago; false if there is none.
fn evict_oldest<E>(classes: &mut Classes<E>) -> bool {
    let Some(class) = classes.iter().filter_map(|(&c, v)| v.first().map(|e| (e.0, c))).min().map(|(_, c)| c) else {
        return false;
    };
    let list = classes.get_mut(&class).expect("class found above");
    let (_, buf) = list.remove(0);
    if list.is_empty() {
        classes.remove(&class);
    }
    CACHED.fetch_sub(bytes_of::<E>(buf.capacity()), Ordering::Relaxed);
    true
}

fn bytes_of<E>(elems: usize) -> usize {
    elems * size_of::<E>()
}

/// The size class of a request for `n` elements: `n` rounded up to a multiple of a quarter of
/// the largest power of two not above it.
fn class_of(n: usize) -> usize {
    if n < 8 {
        return n;
    }
    let step = (1usize << (usize::BITS - 1 - n.leading_zeros())) / 4;
    n.div_ceil(step) * step
}

/// The largest class that a buffer of `capacity` elements can serve.
fn class_below(capacity: usize) -> usize {
    if capacity < 8 {
        return capacity;
    }
    let step = (1usize << (usize::BITS - 1 - capacity.leading_zeros())) / 4;
    capacity / step * step
}

/// A buffer of `n` elements whose values are unspecified (old values of a cached buffer, or
/// zeros): for kernels that overwrite every element.
pub(crate) fn take<E: Element>(n: usize) -> Vec<E> {
    if bytes_of::<E>(n) < MIN_BYTES {
        // `malloc` and a fill rather than `vec![0; n]`'s `calloc`, which costs more for the
        // small buffers of tiny ops (the values are zeros either way).
        let mut buf = Vec::with_capacity(n);
        buf.resize(n, E::zero());
        return buf;
    }
    let class = class_of(n);
    let cached = {
        let mut classes = pool::<E>().lock();
        let hit = classes.get_mut(&class).and_then(Vec::pop);
        if classes.get(&class).is_some_and(Vec::is_empty) {
            classes.remove(&class);
        }
        hit
    };
    match cached {
        Some((_, mut buf)) => {
            CACHED.fetch_sub(bytes_of::<E>(buf.capacity()), Ordering::Relaxed);
            if buf.len() >= n {
                buf.truncate(n);
            } else {
                buf.resize(n, E::zero());
            }
            buf
        }
        None => {
            // Zeroed memory from the allocator is lazily mapped, so this costs no pass over it.
            let mut buf = vec![E::zero(); class];
            buf.truncate(n);
            buf
        }
    }
}

/// A buffer of `n` zeros.
pub(crate) fn zeroed<E: Element>(n: usize) -> Vec<E> {
    let mut buf = take(n);
    if bytes_of::<E>(n) >= MIN_BYTES {
        buf.fill(E::zero());
    }
    buf
}

/// A copy of `src` in a buffer from the cache.
pub(crate) fn copied<E: Element>(src: &[E]) -> Vec<E> {
    let mut buf = take(src.len());
    buf.copy_from_slice(src);
    buf
}

/// Gives a buffer back to the cache (or to the allocator, if it is small or the cache is full).
pub(crate) fn recycle<E: Element>(buf: Vec<E>) {
    let bytes = bytes_of::<E>(buf.capacity());
    let limit = LIMIT.load(Ordering::Relaxed);
    if bytes < MIN_BYTES || bytes > limit {
        return;
    }
    let class = class_below(buf.capacity());
    let stamp = CLOCK.fetch_add(1, Ordering::Relaxed);
    let mut classes = pool::<E>().lock();
    while CACHED.load(Ordering::Relaxed) + bytes > limit {
        if !evict_oldest(&mut classes) {
            return; // the rest of the limit is held by the other element type
        }
    }
    CACHED.fetch_add(bytes, Ordering::Relaxed);
    classes.entry(class).or_default().push((stamp, buf));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_by_at_most_a_quarter() {
        for n in 8..5000usize {
            let c = class_of(n);
            assert!(c >= n && (c - n) * 4 <= n, "n {n} class {c}");
            assert_eq!(class_of(c), c, "a class is its own class");
            assert_eq!(class_below(c), c);
            assert!(class_below(n) <= n);
            assert!(class_below(n) == n || class_of(class_below(n)) == class_below(n));
        }
        assert_eq!(class_of(1000), 1024);
        assert_eq!(class_of(1025), 1280);
    }
}
