//! [`EpochProgress`]: where a run stands inside an epoch, to checkpoint and resume mid-epoch.

use serde::{Deserialize, Serialize};

use super::metrics::{Metric, MetricState, SavedMetricState};

/// Where a run stands inside an epoch: the batches done so far and the running totals of the
/// epoch's loss and metrics.
///
/// [`Trainer::fit`](super::Trainer::fit) shows it to callbacks after each batch
/// ([`TrainContext::progress`](super::TrainContext::progress)); a mid-epoch checkpoint
/// ([`Checkpoint::every_n_batches`](super::Checkpoint::every_n_batches)) saves it, and
/// [`FitOptions::initial_progress`](super::FitOptions::initial_progress) resumes from it: the
/// run skips the batches done (the order of an epoch depends only on the seed and the epoch,
/// the dropout masks only on the step's key) and carries on with the totals, so the resumed
/// epoch's line in the history is the one an uninterrupted run writes.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{Callback, FitOptions, TrainContext, Trainer};
/// use tensorgrad::{Result, Tensor, loss};
///
/// /// Notes (epoch, batches done, samples seen) after every batch.
/// struct Watch<'a>(&'a mut Vec<(usize, usize, usize)>);
///
/// impl Callback for Watch<'_> {
///     fn on_batch_end(&mut self, _batch: usize, _loss: f64, ctx: &mut TrainContext<'_, f32>) -> Result<()> {
///         let p = ctx.progress.expect("set in on_batch_end");
///         assert!(p.loss().is_finite() && p.metrics().is_empty());
///         self.0.push((p.epoch(), p.batches_done(), p.samples_seen()));
///         Ok(())
///     }
/// }
///
/// let model: Linear = Linear::new(2, 1, 0);
/// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let mut seen = Vec::new();
/// let options = FitOptions { epochs: 1, batch_size: 4, verbose: false, ..Default::default() };
/// Trainer::new(model, opt, mse).callback(Watch(&mut seen)).fit(&Tensor::ones(&[10, 2]), &Tensor::zeros(&[10, 1]), &options)?;
/// assert_eq!(seen, [(0, 1, 4), (0, 2, 8), (0, 3, 10)]);
/// # Ok::<(), tensorgrad::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct EpochProgress {
    pub(crate) epoch: usize,
    pub(crate) batches_done: usize,
    pub(crate) loss_sum: f64,
    pub(crate) seen: usize,
    pub(crate) metrics: Vec<MetricState>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    epoch: usize,
    batches_done: usize,
    /// The bit pattern of the loss total, so that it comes back exactly.
    loss_sum: u64,
    seen: usize,
    metrics: Vec<SavedMetricState>,
}

impl EpochProgress {
    /// The start of `epoch`, with fresh totals for `metrics`.
    pub(crate) fn start(epoch: usize, metrics: &[Metric]) -> Self {
        EpochProgress {
            epoch,
            batches_done: 0,
            loss_sum: 0.0,
            seen: 0,
            metrics: metrics.iter().map(|&m| MetricState::new(m)).collect(),
        }
    }

    /// The epoch in progress (0-based).
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// The batches of the epoch done so far.
    pub fn batches_done(&self) -> usize {
        self.batches_done
    }

    /// The samples of the epoch trained on so far.
    pub fn samples_seen(&self) -> usize {
        self.seen
    }

    /// The mean training loss over the samples so far (`NaN` before the first batch).
    pub fn loss(&self) -> f64 {
        if self.seen == 0 { f64::NAN } else { self.loss_sum / self.seen as f64 }
    }

    /// The metrics accumulated so far, in the trainer's order.
    pub fn metrics(&self) -> &[MetricState] {
        &self.metrics
    }

    pub(crate) fn to_json(&self) -> String {
        let saved = Saved {
            epoch: self.epoch,
            batches_done: self.batches_done,
            loss_sum: self.loss_sum.to_bits(),
            seen: self.seen,
            metrics: self.metrics.iter().map(MetricState::save).collect(),
        };
        serde_json::to_string(&saved).expect("serializing an EpochProgress to JSON cannot fail")
    }

    pub(crate) fn from_json(text: &str) -> std::result::Result<Self, String> {
        let saved: Saved =
            serde_json::from_str(text).map_err(|e| format!("the epoch's progress is unreadable: {e}"))?;
        Ok(EpochProgress {
            epoch: saved.epoch,
            batches_done: saved.batches_done,
            loss_sum: f64::from_bits(saved.loss_sum),
            seen: saved.seen,
            metrics: saved.metrics.into_iter().map(MetricState::restore).collect::<std::result::Result<_, _>>()?,
        })
    }
}
