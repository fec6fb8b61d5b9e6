//! Learning-rate schedules (`torch.optim.lr_scheduler`).

use std::f64::consts::PI;
use std::fmt;

use super::Optimizer;
use super::chain::{check_lr, check_non_negative};
use crate::Element;

/// A learning-rate schedule, stepped once per epoch (or per batch, for a warm-up counted in
/// batches).
///
/// As in PyTorch, a new schedule is at epoch 0 and [`learning_rate`](Self::learning_rate) is
/// the rate for that epoch; each [`step`](Self::step) ends an epoch and moves to the next. The
/// fixed schedules compute the rate of epoch `e` in closed form (PyTorch's
/// `_get_closed_form_lr`), so they do not drift and agree with PyTorch's recursive updates to
/// within rounding.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::optim::{LrScheduler, Optimizer, Sgd, SgdConfig, StepLr};
/// let w = Tensor::<f32>::zeros(&[2]).requires_grad();
/// let mut opt = Sgd::new(vec![w], SgdConfig { lr: 0.1, ..Default::default() });
/// let mut sched = StepLr::new(opt.learning_rate(), 2, 0.5);
/// let mut rates = vec![opt.learning_rate()];
/// for _epoch in 0..4 {
///     // ... train one epoch with opt ...
///     sched.step_optimizer(&mut opt, None);
///     rates.push(opt.learning_rate());
/// }
/// assert_eq!(rates, vec![0.1, 0.1, 0.05, 0.05, 0.025]);
/// ```
pub trait LrScheduler {
    /// The learning rate for the current epoch.
    fn learning_rate(&self) -> f64;

    /// The current epoch: the number of calls to [`step`](Self::step) so far (PyTorch's
    /// `last_epoch`).
    fn epoch(&self) -> usize;

    /// Ends the current epoch and returns the learning rate for the next one. `metric` is the
    /// monitored quantity, e.g. the validation loss: [`ReduceLrOnPlateau`] needs it, the other
    /// schedules ignore it.
    fn step(&mut self, metric: Option<f64>) -> f64;

    /// [`step`](Self::step), then sets the optimizer's learning rate to the new rate, which it
    /// returns.
    fn step_optimizer<E: Element, O: Optimizer<E> + ?Sized>(&mut self, opt: &mut O, metric: Option<f64>) -> f64
    where
        Self: Sized,
    {
        let lr = self.step(metric);
        opt.set_learning_rate(lr);
        lr
    }
}

impl<S: LrScheduler + ?Sized> LrScheduler for Box<S> {
    fn learning_rate(&self) -> f64 {
        (**self).learning_rate()
    }
    fn epoch(&self) -> usize {
        (**self).epoch()
    }
    fn step(&mut self, metric: Option<f64>) -> f64 {
        (**self).step(metric)
    }
}

/// Panics unless `gamma` is positive and finite.
#[track_caller]
fn check_gamma(name: &str, gamma: f64) {
    if !(gamma > 0.0 && gamma.is_finite()) {
        panic!("{name}: gamma must be positive and finite, got {gamma:?}");
    }
}

/// Multiplies the rate by `gamma` every `step_size` epochs: `base_lr · γ^⌊e / step_size⌋`
/// (`torch.optim.lr_scheduler.StepLR`).
///
/// ```
/// use tensorgrad::optim::{LrScheduler, StepLr};
/// let mut s = StepLr::new(0.1, 2, 0.5); // halve every 2 epochs
/// let mut rates = vec![s.learning_rate()];
/// rates.extend((0..5).map(|_| s.step(None)));
/// assert_eq!(rates, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
/// assert_eq!(s.epoch(), 5);
/// ```
#[derive(Clone, Debug)]
pub struct StepLr {
    base_lr: f64,
    step_size: usize,
    gamma: f64,
    epoch: usize,
}

impl StepLr {
    /// A schedule starting at `base_lr`.
    ///
    /// # Panics
    /// If `base_lr` is not positive and finite, `step_size` is 0, or `gamma` is not positive and
    /// finite.
    #[track_caller]
    pub fn new(base_lr: f64, step_size: usize, gamma: f64) -> Self {
        check_lr("StepLr", base_lr);
        if step_size == 0 {
            panic!("StepLr: step_size must be at least 1");
        }
        check_gamma("StepLr", gamma);
        StepLr { base_lr, step_size, gamma, epoch: 0 }
    }
}

impl LrScheduler for StepLr {
    fn learning_rate(&self) -> f64 {
        self.base_lr * self.gamma.powf((self.epoch / self.step_size) as f64)
    }
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn step(&mut self, _metric: Option<f64>) -> f64 {
        self.epoch += 1;
        self.learning_rate()
    }
}

/// Multiplies the rate by `gamma` every epoch: `base_lr · γᵉ`
/// (`torch.optim.lr_scheduler.ExponentialLR`).
///
/// ```
/// use tensorgrad::optim::{ExponentialLr, LrScheduler};
/// let mut s = ExponentialLr::new(0.8, 0.5);
/// let rates: Vec<f64> = (0..3).map(|_| s.step(None)).collect();
/// assert_eq!(rates, [0.4, 0.2, 0.1]);
/// ```
#[derive(Clone, Debug)]
pub struct ExponentialLr {
    base_lr: f64,
    gamma: f64,
    epoch: usize,
}

impl ExponentialLr {
    /// A schedule starting at `base_lr`.
    ///
    /// # Panics
    /// If `base_lr` or `gamma` is not positive and finite.
    #[track_caller]
    pub fn new(base_lr: f64, gamma: f64) -> Self {
        check_lr("ExponentialLr", base_lr);
        check_gamma("ExponentialLr", gamma);
        ExponentialLr { base_lr, gamma, epoch: 0 }
    }
}

impl LrScheduler for ExponentialLr {
    fn learning_rate(&self) -> f64 {
        self.base_lr * self.gamma.powf(self.epoch as f64)
    }
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn step(&mut self, _metric: Option<f64>) -> f64 {
        self.epoch += 1;
        self.learning_rate()
    }
}

/// Cosine annealing from `base_lr` down to `eta_min` over `t_max` epochs:
/// `η_min + (base_lr − η_min)·(1 + cos(π·e / t_max)) / 2`
/// (`torch.optim.lr_scheduler.CosineAnnealingLR`, without restarts). Past `t_max` the rate
/// rises again along the same cosine, as in PyTorch.
///
/// ```
/// use tensorgrad::optim::{CosineAnnealingLr, LrScheduler};
/// let mut s = CosineAnnealingLr::new(1.0, 4, 0.0);
/// let mut rates = vec![s.learning_rate()];
/// rates.extend((0..4).map(|_| s.step(None)));
/// let expected = [1.0, 0.853_553_390_6, 0.5, 0.146_446_609_4, 0.0];
/// assert!(rates.iter().zip(expected).all(|(r, e)| (r - e).abs() < 1e-9));
/// ```
#[derive(Clone, Debug)]
pub struct CosineAnnealingLr {
    base_lr: f64,
    t_max: usize,
    eta_min: f64,
    epoch: usize,
}

impl CosineAnnealingLr {
    /// A schedule starting at `base_lr` and reaching `eta_min` at epoch `t_max`.
    ///
    /// # Panics
    /// If `base_lr` is not positive and finite, `t_max` is 0, or `eta_min` is negative or not
    /// finite.
    #[track_caller]
    pub fn new(base_lr: f64, t_max: usize, eta_min: f64) -> Self {
        check_lr("CosineAnnealingLr", base_lr);
        if t_max == 0 {
            panic!("CosineAnnealingLr: t_max must be at least 1");
        }
        check_non_negative("CosineAnnealingLr", "eta_min", eta_min);
        CosineAnnealingLr { base_lr, t_max, eta_min, epoch: 0 }
    }
}

impl LrScheduler for CosineAnnealingLr {
    fn learning_rate(&self) -> f64 {
        let phase = PI * self.epoch as f64 / self.t_max as f64;
        self.eta_min + (self.base_lr - self.eta_min) * (1.0 + phase.cos()) / 2.0
    }
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn step(&mut self, _metric: Option<f64>) -> f64 {
        self.epoch += 1;
        self.learning_rate()
    }
}

/// A linear warm-up from `start_factor · base_lr` to `base_lr` over `warmup_steps` steps:
/// `base_lr · (s + (1 − s)·e / warmup_steps)` (`torch.optim.lr_scheduler.LinearLR` with
/// `end_factor = 1`). Afterwards the rate stays at `base_lr`, or, with
/// [`then`](LinearWarmup::then), another schedule takes over (as PyTorch's `SequentialLR`).
///
/// ```
/// use tensorgrad::optim::{CosineAnnealingLr, LinearWarmup, LrScheduler};
/// // 2 warm-up steps from 0.25, then a cosine over 2 steps down to 0.
/// let mut s = LinearWarmup::new(1.0, 2, 0.25).then(CosineAnnealingLr::new(1.0, 2, 0.0));
/// let mut rates = vec![s.learning_rate()];
/// rates.extend((0..4).map(|_| s.step(None)));
/// assert_eq!(rates, vec![0.25, 0.625, 1.0, 0.5, 0.0]);
/// ```
pub struct LinearWarmup {
    base_lr: f64,
    warmup_steps: usize,
    start_factor: f64,
    epoch: usize,
    next: Option<Box<dyn LrScheduler + Send + Sync>>,
}

impl LinearWarmup {
    /// A warm-up to `base_lr` over `warmup_steps` steps, starting at `start_factor · base_lr`.
    ///
    /// # Panics
    /// If `base_lr` is not positive and finite, `warmup_steps` is 0, or `start_factor` is
    /// outside `(0, 1]`.
    #[track_caller]
    pub fn new(base_lr: f64, warmup_steps: usize, start_factor: f64) -> Self {
        check_lr("LinearWarmup", base_lr);
        if warmup_steps == 0 {
            panic!("LinearWarmup: warmup_steps must be at least 1");
        }
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            panic!("LinearWarmup: start_factor must be in (0, 1], got {start_factor:?}");
        }
        LinearWarmup { base_lr, warmup_steps, start_factor, epoch: 0, next: None }
    }

    /// Hands over to `next` when the warm-up ends: at step `warmup_steps` the rate is `next`'s
    /// rate at its epoch 0 (build it with the same base rate for a continuous schedule), and
    /// each later step steps `next`, passing the metric on.
    pub fn then(mut self, next: impl LrScheduler + Send + Sync + 'static) -> Self {
        self.next = Some(Box::new(next));
        self
    }
}

impl LrScheduler for LinearWarmup {
    fn learning_rate(&self) -> f64 {
        if self.epoch < self.warmup_steps {
            let s = self.start_factor;
            return self.base_lr * (s + (1.0 - s) * self.epoch as f64 / self.warmup_steps as f64);
        }
        match &self.next {
            Some(next) => next.learning_rate(),
            None => self.base_lr,
        }
    }
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn step(&mut self, metric: Option<f64>) -> f64 {
        self.epoch += 1;
        if self.epoch > self.warmup_steps
            && let Some(next) = &mut self.next
        {
            next.step(metric);
        }
        self.learning_rate()
    }
}

impl fmt::Debug for LinearWarmup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinearWarmup")
            .field("base_lr", &self.base_lr)
            .field("warmup_steps", &self.warmup_steps)
            .field("start_factor", &self.start_factor)
            .field("epoch", &self.epoch)
            .field("then", &self.next.is_some())
            .finish()
    }
}

/// Whether a smaller or a larger metric is better, for [`ReduceLrOnPlateau`].
///
/// ```
/// use tensorgrad::optim::{LrScheduler, PlateauConfig, PlateauMode, ReduceLrOnPlateau};
/// // Watching an accuracy: higher is better.
/// let config = PlateauConfig { mode: PlateauMode::Max, patience: 0, factor: 0.5, ..Default::default() };
/// let mut s = ReduceLrOnPlateau::new(0.1, config);
/// assert_eq!(s.step(Some(0.80)), 0.1);
/// assert_eq!(s.step(Some(0.85)), 0.1); // better
/// assert_eq!(s.step(Some(0.84)), 0.05); // worse: reduced
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// The metric should decrease (a loss).
    Min,
    /// The metric should increase (an accuracy).
    Max,
}

/// How [`PlateauConfig::threshold`] measures a significant improvement.
///
/// ```
/// use tensorgrad::optim::{LrScheduler, PlateauConfig, ReduceLrOnPlateau, ThresholdMode};
/// // A loss of 100, then 99.5, with a threshold of 0.01 and no patience.
/// let second_rate = |threshold_mode| {
///     let config = PlateauConfig { threshold: 0.01, threshold_mode, patience: 0, ..Default::default() };
///     let mut s = ReduceLrOnPlateau::new(1.0, config);
///     s.step(Some(100.0));
///     s.step(Some(99.5))
/// };
/// assert_eq!(second_rate(ThresholdMode::Abs), 1.0); // 99.5 < 100 − 0.01: an improvement
/// assert_eq!(second_rate(ThresholdMode::Rel), 0.1); // 99.5 ≥ 100 · (1 − 0.01): not one
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Relative: better than `best·(1 ∓ threshold)`.
    Rel,
    /// Absolute: better than `best ∓ threshold`.
    Abs,
}

/// The settings of [`ReduceLrOnPlateau`]; [`Default`] gives PyTorch's defaults.
///
/// ```
/// use tensorgrad::optim::{LrScheduler, PlateauConfig, ReduceLrOnPlateau};
/// let defaults = PlateauConfig::default();
/// assert_eq!((defaults.factor, defaults.patience, defaults.cooldown), (0.1, 10, 0));
///
/// // Halve the rate after 2 epochs without improvement, never below 0.01, then wait 1 epoch.
/// let config = PlateauConfig { factor: 0.5, patience: 2, min_lr: 0.01, cooldown: 1, ..Default::default() };
/// let mut s = ReduceLrOnPlateau::new(0.04, config);
/// let losses = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// let rates: Vec<f64> = losses.iter().map(|&l| s.step(Some(l))).collect();
/// assert_eq!(rates, [0.04, 0.04, 0.04, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01, 0.01]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauConfig {
    /// Whether the metric should decrease or increase (default [`PlateauMode::Min`]).
    pub mode: PlateauMode,
    /// The factor the rate is multiplied by when reduced, in `(0, 1)` (default 0.1).
    pub factor: f64,
    /// How many epochs without improvement are tolerated; the rate is reduced after
    /// `patience + 1` of them in a row (default 10).
    pub patience: usize,
    /// The smallest change that counts as an improvement (default `1e-4`).
    pub threshold: f64,
    /// Whether `threshold` is relative or absolute (default [`ThresholdMode::Rel`]).
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction before counting bad epochs again (default 0).
    pub cooldown: usize,
    /// The rate is never reduced below this (default 0).
    pub min_lr: f64,
    /// A reduction smaller than this is skipped (default `1e-8`).
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        PlateauConfig {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// Reduces the rate by `factor` when a monitored metric stops improving
/// (`torch.optim.lr_scheduler.ReduceLROnPlateau`).
///
/// Each [`step`](LrScheduler::step) takes the epoch's metric. A metric better than the best
/// so far by more than the threshold resets the count of bad epochs; any other (NaN included)
/// adds one. During a cooldown the count stays at zero. When the count exceeds `patience`,
/// the rate becomes `max(lr·factor, min_lr)` (unless that changes it by less than `eps`), the
/// cooldown starts and the count is reset.
///
/// ```
/// use tensorgrad::optim::{LrScheduler, PlateauConfig, ReduceLrOnPlateau};
/// let cfg = PlateauConfig { patience: 1, factor: 0.5, ..Default::default() };
/// let mut s = ReduceLrOnPlateau::new(0.1, cfg);
/// let rates: Vec<f64> = [1.0, 0.9, 0.9, 0.9, 0.95].iter().map(|&loss| s.step(Some(loss))).collect();
/// assert_eq!(rates, vec![0.1, 0.1, 0.1, 0.05, 0.05]);
/// ```
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    config: PlateauConfig,
    lr: f64,
    best: f64,
    num_bad_epochs: usize,
    cooldown_counter: usize,
    epoch: usize,
}

impl ReduceLrOnPlateau {
    /// A schedule starting at `lr`.
    ///
    /// # Panics
    /// If `lr` is not positive and finite, `factor` is outside `(0, 1)`, or `threshold`,
    /// `min_lr` or `eps` is negative or not finite.
    #[track_caller]
    pub fn new(lr: f64, config: PlateauConfig) -> Self {
        const NAME: &str = "ReduceLrOnPlateau";
        check_lr(NAME, lr);
        if !(config.factor > 0.0 && config.factor < 1.0) {
            panic!("{NAME}: factor must be in (0, 1), got {:?}", config.factor);
        }
        check_non_negative(NAME, "threshold", config.threshold);
        check_non_negative(NAME, "min_lr", config.min_lr);
        check_non_negative(NAME, "eps", config.eps);
        let best = match config.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        ReduceLrOnPlateau { config, lr, best, num_bad_epochs: 0, cooldown_counter: 0, epoch: 0 }
    }

    /// The best metric seen so far (±∞ before the first step).
    pub fn best(&self) -> f64 {
        self.best
    }

    /// The number of bad epochs in a row counted so far.
    pub fn num_bad_epochs(&self) -> usize {
        self.num_bad_epochs
    }

    fn is_better(&self, a: f64) -> bool {
        let (best, th) = (self.best, self.config.threshold);
        match (self.config.mode, self.config.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - th),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - th,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (th + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + th,
        }
    }
}

impl LrScheduler for ReduceLrOnPlateau {
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn epoch(&self) -> usize {
        self.epoch
    }
    /// # Panics
    /// If `metric` is `None`.
    #[track_caller]
    fn step(&mut self, metric: Option<f64>) -> f64 {
        let Some(current) = metric else {
            panic!("ReduceLrOnPlateau::step: needs the monitored metric (e.g. the validation loss), got None");
        };
        self.epoch += 1;
        if self.is_better(current) {
            self.best = current;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.config.patience {
            let new_lr = (self.lr * self.config.factor).max(self.config.min_lr);
            if self.lr - new_lr > self.config.eps {
                self.lr = new_lr;
            }
            self.cooldown_counter = self.config.cooldown;
            self.num_bad_epochs = 0;
        }
        self.lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rates of epochs 0..=n.
    fn rates(s: &mut dyn LrScheduler, n: usize) -> Vec<f64> {
        let mut v = vec![s.learning_rate()];
        v.extend((0..n).map(|_| s.step(None)));
        v
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() <= 1e-15 * e.abs().max(1e-3), "epoch {i}: {a} vs {e}\n{actual:?}");
        }
    }

    #[test]
    fn step_lr_halves_every_three_epochs() {
        let r = rates(&mut StepLr::new(0.8, 3, 0.5), 7);
        assert_eq!(r, vec![0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2]);
    }

    #[test]
    fn exponential_lr_multiplies_every_epoch() {
        let r = rates(&mut ExponentialLr::new(1.0, 0.5), 4);
        assert_eq!(r, vec![1.0, 0.5, 0.25, 0.125, 0.0625]);
    }

    #[test]
    fn cosine_annealing_reaches_eta_min_and_comes_back() {
        // t_max = 4, base 1.1, eta_min 0.1: 0.1 + 1·(1 + cos(πe/4))/2.
        let h = std::f64::consts::FRAC_1_SQRT_2 / 2.0; // cos(π/4)/2
        let expected = [1.1, 0.6 + h, 0.6, 0.6 - h, 0.1, 0.6 - h, 0.6, 0.6 + h, 1.1];
        let r = rates(&mut CosineAnnealingLr::new(1.1, 4, 0.1), 8);
        assert_close(&r, &expected);
        assert_eq!(r[4], 0.1);
    }

    #[test]
    fn linear_warmup_then_constant() {
        // 0.2·(0.2 + 0.8·e/4) for e < 4, then 0.2.
        let r = rates(&mut LinearWarmup::new(0.2, 4, 0.2), 6);
        assert_close(&r, &[0.04, 0.08, 0.12, 0.16, 0.2, 0.2, 0.2]);
    }

    #[test]
    fn linear_warmup_hands_over() {
        let mut s = LinearWarmup::new(0.1, 2, 0.5).then(StepLr::new(0.1, 2, 0.1));
        let r = rates(&mut s, 6);
        assert_close(&r, &[0.05, 0.075, 0.1, 0.1, 0.01, 0.01, 0.001]);
        assert_eq!(s.epoch(), 6);
    }

    #[test]
    fn plateau_waits_for_patience_and_cooldown() {
        // patience 2, cooldown 1, factor 0.5, min_lr 0.02, relative threshold 0.1.
        let cfg =
            PlateauConfig { factor: 0.5, patience: 2, threshold: 0.1, cooldown: 1, min_lr: 0.02, ..Default::default() };
        let mut s = ReduceLrOnPlateau::new(0.1, cfg);
        let metrics = [10.0, 9.5, 9.2, 9.1, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0];
        // e1: 10 best. e2: 9.5 ≥ 9 bad 1. e3: 9.2 bad 2. e4: 9.1 bad 3 > 2 → 0.05, cooldown 1.
        // e5: 8.0 < 9 best, bad 0, cooldown → 0. e6, e7, e8: bad 1, 2, 3 → 0.025, cooldown 1.
        // e9: bad 1 → cooldown resets it to 0. e10, e11, e12: bad 1, 2, 3 → max(0.0125, 0.02).
        // e13: cooldown. e14: bad 1.
        let r: Vec<f64> = metrics.iter().map(|&m| s.step(Some(m))).collect();
        let expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.02, 0.02, 0.02];
        assert_eq!(r, expected);
        assert_eq!(s.best(), 8.0);
        assert_eq!(s.num_bad_epochs(), 1);
    }

    #[test]
    fn plateau_max_mode_with_absolute_threshold() {
        let cfg = PlateauConfig {
            mode: PlateauMode::Max,
            threshold_mode: ThresholdMode::Abs,
            threshold: 0.5,
            patience: 0,
            factor: 0.1,
            ..Default::default()
        };
        let mut s = ReduceLrOnPlateau::new(1.0, cfg);
        // 1 best; 1.4 is not > 1.5: bad → reduce; 2 > 1.5 best; NaN bad → reduce.
        let r: Vec<f64> = [1.0, 1.4, 2.0, f64::NAN].iter().map(|&m| s.step(Some(m))).collect();
        assert_close(&r, &[1.0, 0.1, 0.1, 0.01]);
    }

    #[test]
    fn plateau_skips_reductions_below_eps() {
        let cfg = PlateauConfig { patience: 0, min_lr: 0.099999999, ..Default::default() };
        let mut s = ReduceLrOnPlateau::new(0.1, cfg);
        assert_eq!(s.step(Some(1.0)), 0.1);
        assert_eq!(s.step(Some(1.0)), 0.1); // 0.1 − 0.099999999 ≤ 1e-8: not worth it
    }

    #[test]
    #[should_panic(expected = "ReduceLrOnPlateau::step: needs the monitored metric")]
    fn plateau_needs_a_metric() {
        ReduceLrOnPlateau::new(0.1, PlateauConfig::default()).step(None);
    }

    #[test]
    #[should_panic(expected = "ReduceLrOnPlateau: factor must be in (0, 1), got 1.0")]
    fn plateau_factor_one_panics() {
        ReduceLrOnPlateau::new(0.1, PlateauConfig { factor: 1.0, ..Default::default() });
    }

    #[test]
    #[should_panic(expected = "StepLr: step_size must be at least 1")]
    fn step_lr_zero_step_size_panics() {
        StepLr::new(0.1, 0, 0.5);
    }

    #[test]
    #[should_panic(expected = "StepLr: gamma must be positive and finite, got -0.5")]
    fn step_lr_negative_gamma_panics() {
        StepLr::new(0.1, 1, -0.5);
    }

    #[test]
    #[should_panic(expected = "ExponentialLr: learning rate must be positive and finite, got 0.0")]
    fn exponential_lr_zero_base_panics() {
        ExponentialLr::new(0.0, 0.5);
    }

    #[test]
    #[should_panic(expected = "CosineAnnealingLr: t_max must be at least 1")]
    fn cosine_zero_t_max_panics() {
        CosineAnnealingLr::new(0.1, 0, 0.0);
    }

    #[test]
    #[should_panic(expected = "CosineAnnealingLr: eta_min must be non-negative and finite, got -1.0")]
    fn cosine_negative_eta_min_panics() {
        CosineAnnealingLr::new(0.1, 3, -1.0);
    }

    #[test]
    #[should_panic(expected = "LinearWarmup: start_factor must be in (0, 1], got 0.0")]
    fn warmup_zero_start_factor_panics() {
        LinearWarmup::new(0.1, 3, 0.0);
    }

    #[test]
    #[should_panic(expected = "LinearWarmup: warmup_steps must be at least 1")]
    fn warmup_zero_steps_panics() {
        LinearWarmup::new(0.1, 0, 0.5);
    }
}
