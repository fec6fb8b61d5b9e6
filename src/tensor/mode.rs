//! Per-thread modes of the graph: whether ops record (`no_grad`) and anomaly detection.

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static ANOMALY: Cell<bool> = const { Cell::new(false) };
}

/// Turns anomaly detection on or off for ops run on this thread (off by default).
///
/// While it is on, an op whose output holds a NaN or an infinity although its inputs were
/// finite panics, naming the op and the line that called it; so does a backward rule that
/// turns a finite incoming gradient into a non-finite one. It costs a scan of every value
/// produced, so leave it off except to find where a NaN comes from.
///
/// ```should_panic
/// tensorgrad::set_detect_anomaly(true);
/// let x = tensorgrad::Tensor::from_vec(vec![1.0f32, 0.0], &[2]);
/// let _ = x.ln(); // panics: "anomaly: `ln` produced -inf at element 1 from finite inputs …"
/// ```
pub fn set_detect_anomaly(enabled: bool) {
    ANOMALY.with(|a| a.set(enabled));
}

/// Whether anomaly detection is on for this thread.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.with(|a| a.get())
}

/// Runs `f` with anomaly detection on (see [`set_detect_anomaly`]), restoring the previous
/// setting afterwards, even if `f` panics.
pub fn detect_anomaly<R>(f: impl FnOnce() -> R) -> R {
    let _restore = AnomalyPause(is_anomaly_enabled());
    set_detect_anomaly(true);
    f()
}

/// Turns anomaly detection off until dropped (also on panic), then restores it.
pub(crate) struct AnomalyPause(bool);

impl AnomalyPause {
    pub(crate) fn new() -> Self {
        let was = is_anomaly_enabled();
        set_detect_anomaly(false);
        AnomalyPause(was)
    }
}

impl Drop for AnomalyPause {
    fn drop(&mut self) {
        set_detect_anomaly(self.0);
    }
}

/// Whether ops on this thread currently record a graph.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous recording mode when dropped (also on panic).
pub(crate) struct ModeGuard(bool);

impl ModeGuard {
    pub(crate) fn set(enabled: bool) -> Self {
        ModeGuard(GRAD_ENABLED.with(|g| g.replace(enabled)))
    }
}

impl Drop for ModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.0));
    }
}

/// Runs `f` with graph recording off on this thread: tensors made inside do not require
/// gradients, and nothing is kept for a backward pass (PyTorch's `torch.no_grad()`).
///
/// ```
/// use tensorgrad::{Tensor, no_grad};
/// let w = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).requires_grad();
/// let y = no_grad(|| &w * 3.0);
/// assert!(!y.needs_grad());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = ModeGuard::set(false);
    f()
}
