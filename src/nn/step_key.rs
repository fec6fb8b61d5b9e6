//! Where dropout masks come from: a key naming the training step, in force on one thread.

use std::cell::RefCell;

use super::module::derive_seed;

/// The randomness of one training step: `(seed, epoch, step, rank)`.
///
/// Inside [`StepKey::scope`], every dropout mask drawn on the calling thread is a function of
/// the key, of the module that draws it (its seed, which [`Module::reseed`](super::Module::reseed)
/// derives from the module's position in the model) and of how many masks that module has
/// drawn so far in the scope — nothing else. So:
///
/// - the masks do not depend on which thread gets somewhere first: threads sharing one model
///   each run their forward pass in their own scope, and each gets the masks of its own key;
/// - ranks of a data-parallel run (processes or threads) give their `rank` and draw different
///   masks; the same `(seed, epoch, step, rank)` draws the same masks in any process, with any
///   `RAYON_NUM_THREADS`, before or after resuming from a checkpoint.
///
/// [`Trainer::fit`](crate::train::Trainer::fit) runs each step's forward pass in the scope of
/// `StepKey::new(options.seed, epoch, step, options.rank)`, with `step` counted over the whole
/// run (`epoch · batches_per_epoch + batch`). A hand-written loop does the same:
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Dropout, Linear, Module, Sequential, StepKey};
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut model: Sequential = Sequential::new().add(Linear::new(4, 64, &mut rng)).add(Dropout::new(0.5, 0));
/// model.reseed(42); // once: gives each module a seed from its position
/// let x = Tensor::ones(&[2, 4]);
/// let key = StepKey::new(42, 0, 7, 0);
/// let a = key.scope(|| model.forward(&x));
/// // The same key gives the same masks, whatever ran in between, on any thread.
/// let b = std::thread::scope(|s| s.spawn(|| key.scope(|| model.forward(&x))).join().unwrap());
/// assert_eq!(a.to_vec(), b.to_vec());
/// // Another rank (or step) draws other masks.
/// let other = StepKey { rank: 1, ..key }.scope(|| model.forward(&x));
/// assert_ne!(a.to_vec(), other.to_vec());
/// ```
///
/// Outside any scope a dropout module draws from its own counter (fresh masks on every call,
/// reproducible from its seed in a single thread), as a plain PyTorch loop expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StepKey {
    /// The run's seed ([`FitOptions::seed`](crate::train::FitOptions::seed) in `fit`).
    pub seed: u64,
    /// The epoch, counting from 0.
    pub epoch: usize,
    /// The optimizer step, counting from 0.
    pub step: usize,
    /// This process's (or thread's) rank in data-parallel training; 0 when training alone.
    pub rank: usize,
}

/// The key in force on this thread and the masks drawn under it so far, per module seed.
struct Scope {
    key: StepKey,
    mixed: u64,
    draws: Vec<(u64, u64)>,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Puts the previous scope back when a scope ends, even by a panic.
struct Restore(Option<Scope>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        SCOPE.with(|s| *s.borrow_mut() = previous);
    }
}

impl StepKey {
    /// The key of step `step` of epoch `epoch` on rank `rank` of a run seeded with `seed`.
    pub fn new(seed: u64, epoch: usize, step: usize, rank: usize) -> Self {
        StepKey { seed, epoch, step, rank }
    }

    /// Runs `f` with this key in force on the calling thread (see [`StepKey`]) and returns what
    /// it returns. Scopes nest: an inner scope replaces the outer one until it ends. The key
    /// is per thread, like [`no_grad`](crate::no_grad): work `f` hands to other threads does
    /// not see it (the library's own kernels draw no random numbers).
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let scope = Scope { key: *self, mixed: self.mix(), draws: Vec::new() };
        let _restore = Restore(SCOPE.with(|s| s.borrow_mut().replace(scope)));
        f()
    }

    /// The key in force on the calling thread, if any.
    ///
    /// ```
    /// use tensorgrad::nn::StepKey;
    /// assert_eq!(StepKey::current(), None);
    /// let key = StepKey::new(1, 2, 3, 0);
    /// assert_eq!(key.scope(StepKey::current), Some(key));
    /// ```
    pub fn current() -> Option<StepKey> {
        SCOPE.with(|s| s.borrow().as_ref().map(|s| s.key))
    }

    /// The four numbers mixed into one seed.
    fn mix(&self) -> u64 {
        const DOMAIN: u64 = 0x5354_4550_4B45_5921; // "STEPKEY!"
        let mut z = derive_seed(DOMAIN, self.seed);
        for v in [self.epoch, self.step, self.rank] {
            z = derive_seed(z, v as u64);
        }
        z
    }
}

/// The seed of the next random stream of the module seeded `module`, if a [`StepKey`] scope is
/// in force on this thread: a function of the key, `module`, and how many streams `module` has
/// taken in this scope before.
pub(crate) fn scoped_stream(module: u64) -> Option<u64> {
    SCOPE.with(|s| {
        let mut s = s.borrow_mut();
        let scope = s.as_mut()?;
        let k = match scope.draws.iter_mut().find(|(m, _)| *m == module) {
            Some((_, n)) => {
                *n += 1;
                *n - 1
            }
            None => {
                scope.draws.push((module, 1));
                0
            }
        };
        Some(derive_seed(derive_seed(scope.mixed, module), k))
    })
}
