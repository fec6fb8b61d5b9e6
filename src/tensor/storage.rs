//! The buffer shared by a tensor and all of its views.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::tensor::element::Element;
use crate::tensor::memory;

/// A buffer shared by a tensor and all of its views.
///
/// Values are immutable once written, with one exception: a parameter's buffer may be
/// overwritten in place by an optimizer between steps (see [`Storage::write`]). Readers take a
/// snapshot (`Arc<Vec<E>>`); a writer that finds a live snapshot copies first, so a kernel that is
/// reading never sees a torn value. Every write bumps a version counter: a recorded op notes the
/// versions of its inputs, and the backward pass refuses to use an input written since.
#[derive(Debug)]
pub(crate) struct Storage<E: Element> {
    data: Mutex<Arc<Vec<E>>>,
    version: AtomicU64,
}

/// A large buffer goes back to [`crate::tensor::memory`]'s cache when its last user is gone.
impl<E: Element> Drop for Storage<E> {
    fn drop(&mut self) {
        let arc = self.data.get_mut().unwrap_or_else(|e| e.into_inner());
        if arc.capacity() * size_of::<E>() < 64 * 1024 || Arc::strong_count(arc) != 1 {
            return;
        }
        if let Ok(buf) = Arc::try_unwrap(std::mem::take(arc)) {
            memory::recycle(buf);
        }
    }
}

impl<E: Element> Storage<E> {
    pub(crate) fn new(data: Vec<E>) -> Self {
        Storage { data: Mutex::new(Arc::new(data)), version: AtomicU64::new(0) }
    }

    /// How many times the buffer has been written in place.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Arc<Vec<E>>> {
        // A poisoned lock only means a writer panicked; the Arc inside is still whole.
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot of the current values.
    pub(crate) fn read(&self) -> Arc<Vec<E>> {
        Arc::clone(&self.lock())
    }

    /// Runs `f` on the values with write access; copies first if a snapshot is alive.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut [E]) -> R) -> R {
        let mut guard = self.lock();
        self.version.fetch_add(1, Ordering::AcqRel);
        f(Arc::make_mut(&mut guard).as_mut_slice())
    }

    /// Write access only if nobody else can observe the buffer (used to accumulate in place).
    pub(crate) fn try_write_unique<R>(&self, f: impl FnOnce(&mut [E]) -> R) -> Option<R> {
        let mut guard = self.lock();
        Arc::get_mut(&mut guard).map(|v| f(v.as_mut_slice()))
    }
}
