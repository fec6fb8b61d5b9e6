//! [`Metric`] and [`MetricState`]: classification metrics accumulated over batches.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::distributed::{Buffer, Communicator, ReduceOp};

use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;

/// A classification metric, reported under [`name`](Self::name) in a
/// [`History`](super::History) (with `val_` in front for validation data).
///
/// Predictions of shape `[N]` or `[N, 1]` are binary: probabilities, a positive when above 0.5,
/// against targets 0 or 1 (a target of at least 0.5 counts as 1, so smoothed labels work).
/// Predictions of shape `[N, C]` with `C > 1` are multi-class: the predicted class is the
/// arg-max of each row (the first one on ties), against targets holding class ids (`[N]` or
/// `[N, 1]`) or one-hot rows (`[N, C]`). [`Accuracy`](Self::Accuracy) takes either kind and
/// tells them apart by shape, as Keras's `"accuracy"` picks binary or categorical accuracy;
/// [`SparseCategoricalAccuracy`](Self::SparseCategoricalAccuracy) and
/// [`CategoricalAccuracy`](Self::CategoricalAccuracy) are the multi-class accuracy with one kind
/// of target each, under Keras's names, and refuse anything else. The others are binary.
///
/// Give them to [`Trainer::metrics`](super::Trainer::metrics); [`MetricState`] computes one
/// by hand:
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::train::{Metric, MetricState};
///
/// // Scores against labels: one true positive, one false positive, one false negative.
/// let scores = Tensor::from_vec(vec![0.9f32, 0.8, 0.3, 0.2], &[4, 1]);
/// let labels = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 0.0], &[4, 1]);
/// for (metric, expected) in [
///     (Metric::Accuracy, 0.5),
///     (Metric::Precision, 0.5),
///     (Metric::Recall, 0.5),
///     (Metric::F1, 0.5),
///     (Metric::Auc, 0.75), // 3 of the 4 (positive, negative) pairs are ordered right
/// ] {
///     let mut state = MetricState::new(metric);
///     state.update(&scores, &labels);
///     assert_eq!(state.result(), expected, "{metric}");
/// }
///
/// // Multi-class, against class ids: rows 0 and 2 are right.
/// let logits = Tensor::from_vec(vec![2.0f32, 0.0, 0.0, 0.0, 3.0, 1.0, 0.0, 0.0, 5.0], &[3, 3]);
/// let ids = Tensor::from_slice(&[0.0f32, 2.0, 2.0]);
/// let mut sparse = MetricState::new(Metric::SparseCategoricalAccuracy);
/// sparse.update(&logits, &ids);
/// assert_eq!(sparse.result(), 2.0 / 3.0);
/// assert_eq!(Metric::SparseCategoricalAccuracy.name(), "sparse_categorical_accuracy");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Metric {
    /// The fraction of correct predictions (Keras's `accuracy`: binary, or categorical against
    /// class ids or one-hot rows, by shape).
    Accuracy,
    /// The fraction of rows of `[N, C]` predictions (logits or probabilities) whose arg-max is
    /// the target class id (`[N]` or `[N, 1]`): Keras's `sparse_categorical_accuracy`.
    SparseCategoricalAccuracy,
    /// The fraction of rows of `[N, C]` predictions whose arg-max is that of the one-hot (or
    /// smoothed) target row `[N, C]`: Keras's `categorical_accuracy`.
    CategoricalAccuracy,
    /// Of the predicted positives, the fraction that are positive: `TP / (TP + FP)`; 0 when
    /// nothing was predicted positive (as Keras).
    Precision,
    /// Of the positives, the fraction predicted positive: `TP / (TP + FN)`; 0 when there are no
    /// positives (as Keras).
    Recall,
    /// The harmonic mean of precision and recall, `2·P·R / (P + R)`; 0 when both are 0.
    F1,
    /// The exact area under the ROC curve of the scores, i.e. the probability that a random
    /// positive scores above a random negative, ties counting one half (the Mann–Whitney U
    /// statistic divided by `positives × negatives`). `NaN` unless both classes are present, or
    /// if a score is `NaN`. Keeps every score seen since the last reset.
    Auc,
}

impl Metric {
    /// The name under which the metric is reported: `"accuracy"`,
    /// `"sparse_categorical_accuracy"`, `"categorical_accuracy"`, `"precision"`, `"recall"`,
    /// `"f1"`, `"auc"`.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Metric::CategoricalAccuracy => "categorical_accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::F1 => "f1",
            Metric::Auc => "auc",
        }
    }
}

impl Metric {
    /// The metric reported as `name` (see [`name`](Self::name)).
    pub(crate) fn from_name(name: &str) -> Option<Metric> {
        [
            Metric::Accuracy,
            Metric::SparseCategoricalAccuracy,
            Metric::CategoricalAccuracy,
            Metric::Precision,
            Metric::Recall,
            Metric::F1,
            Metric::Auc,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A [`Metric`] accumulated over the batches of an epoch: [`update`](Self::update) with each
/// batch, read [`result`](Self::result) at the end, [`reset`](Self::reset) for the next epoch.
/// The result over several batches is the result over their concatenation (not a mean of
/// per-batch results).
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::train::{Metric, MetricState};
///
/// let mut acc = MetricState::new(Metric::Accuracy);
/// // Binary: probabilities against 0/1 targets.
/// acc.update(&Tensor::from_vec(vec![0.9f32, 0.2, 0.6], &[3, 1]), &Tensor::from_vec(vec![1.0, 0.0, 0.0], &[3, 1]));
/// acc.update(&Tensor::from_vec(vec![0.1f32], &[1, 1]), &Tensor::from_vec(vec![0.0], &[1, 1]));
/// assert_eq!(acc.result(), 0.75);
///
/// // Multi-class: arg-max of each row against class ids.
/// let mut acc = MetricState::new(Metric::Accuracy);
/// let logits = Tensor::from_vec(vec![2.0f32, 0.1, 0.3, 0.2, 0.1, 3.0], &[2, 3]);
/// acc.update(&logits, &Tensor::from_vec(vec![0.0, 1.0], &[2]));
/// assert_eq!(acc.result(), 0.5);
/// ```
#[derive(Clone, Debug)]
pub struct MetricState {
    metric: Metric,
    /// Samples seen, and of them those predicted correctly.
    total: u64,
    correct: u64,
    /// Binary confusion counts.
    true_pos: u64,
    false_pos: u64,
    false_neg: u64,
    /// Every (score, is positive) seen, for [`Metric::Auc`] only.
    scores: Vec<(f64, bool)>,
    /// Whether a `NaN` score was seen, which makes the AUC undefined.
    nan_score: bool,
}

impl MetricState {
    /// A fresh accumulator for `metric`.
    pub fn new(metric: Metric) -> Self {
        MetricState {
            metric,
            total: 0,
            correct: 0,
            true_pos: 0,
            false_pos: 0,
            false_neg: 0,
            scores: Vec::new(),
            nan_score: false,
        }
    }

    /// The metric being accumulated.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Adds a batch of predictions and their targets (shapes as described on [`Metric`]).
    ///
    /// # Panics
    /// If the shapes do not fit together, if a multi-class target is not a class id in
    /// `0..C`, or if a binary-only metric is given multi-class predictions.
    #[track_caller]
    pub fn update<E: Element>(&mut self, pred: &Tensor<E>, target: &Tensor<E>) {
        let name = self.metric.name();
        let (n, classes) = match *pred.shape() {
            [n] => (n, 1),
            [n, c] if c >= 1 => (n, c),
            _ => panic!(
                "metric {name}: predictions must have shape [N] or [N, C], got {:?} (targets {:?})",
                pred.shape(),
                target.shape()
            ),
        };
        let pred_values = to_f64(pred);
        let target_values = to_f64(target);
        if matches!(self.metric, Metric::SparseCategoricalAccuracy | Metric::CategoricalAccuracy) {
            let sparse = self.metric == Metric::SparseCategoricalAccuracy;
            let expected = if sparse {
                format!("[{n}] or [{n}, 1] (class ids)")
            } else {
                format!("[{n}, {classes}] (one-hot rows)")
            };
            let fits = match *target.shape() {
                [m] | [m, 1] => sparse && m == n,
                [m, k] => !sparse && m == n && k == classes,
                _ => false,
            };
            if pred.ndim() != 2 || !fits {
                panic!(
                    "metric {name}: needs predictions of shape [N, C] and targets of shape {expected}; got predictions {:?} and targets {:?}",
                    pred.shape(),
                    target.shape()
                );
            }
            self.update_multiclass(&pred_values, &target_values, target.shape(), n, classes);
            return;
        }
        if classes == 1 {
            if !(matches!(*target.shape(), [m] | [m, 1] if m == n)) {
                panic!(
                    "metric {name}: binary predictions of shape {:?} need targets of shape [{n}] or [{n}, 1], got {:?}",
                    pred.shape(),
                    target.shape()
                );
            }
            self.update_binary(&pred_values, &target_values);
        } else {
            if self.metric != Metric::Accuracy {
                panic!(
                    "metric {name} is binary-only: predictions of shape {:?} have {classes} classes; \
                     use predictions of shape [N] or [N, 1] (probabilities of the positive class)",
                    pred.shape()
                );
            }
            self.update_multiclass(&pred_values, &target_values, target.shape(), n, classes);
        }
    }

    fn update_binary(&mut self, pred: &[f64], target: &[f64]) {
        for (&p, &t) in pred.iter().zip(target) {
            let predicted = p > 0.5;
            let actual = t >= 0.5;
            self.total += 1;
            self.correct += u64::from(predicted == actual);
            self.true_pos += u64::from(predicted && actual);
            self.false_pos += u64::from(predicted && !actual);
            self.false_neg += u64::from(!predicted && actual);
            if self.metric == Metric::Auc {
                self.nan_score |= p.is_nan();
                self.scores.push((p, actual));
            }
        }
    }

    #[track_caller]
    fn update_multiclass(&mut self, pred: &[f64], target: &[f64], target_shape: &[usize], n: usize, c: usize) {
        let one_hot = match *target_shape {
            [m] | [m, 1] if m == n => false,
            [m, k] if m == n && k == c => true,
            _ => panic!(
                "metric {}: predictions of shape [{n}, {c}] need targets of class ids, of shape [{n}] or [{n}, 1], \
                 or one-hot targets of shape [{n}, {c}]; got {target_shape:?}",
                self.metric.name()
            ),
        };
        for (row, p) in pred.chunks_exact(c).enumerate() {
            let predicted = argmax(p);
            let actual = if one_hot {
                argmax(&target[row * c..(row + 1) * c])
            } else {
                let t = target[row];
                if !(t >= 0.0 && t < c as f64 && t.fract() == 0.0) {
                    panic!("metric {}: target {row} is {t}, not a class id in 0..{c}", self.metric.name());
                }
                t as usize
            };
            self.total += 1;
            self.correct += u64::from(predicted == actual);
        }
    }

    /// The metric over everything added since the last reset. Accuracy (and AUC) of no samples
    /// is `NaN`; precision, recall and F1 follow Keras and are 0 when undefined.
    pub fn result(&self) -> f64 {
        let ratio = |num: u64, den: u64| if den == 0 { 0.0 } else { num as f64 / den as f64 };
        match self.metric {
            Metric::Accuracy | Metric::SparseCategoricalAccuracy | Metric::CategoricalAccuracy => {
                if self.total == 0 {
                    f64::NAN
                } else {
                    self.correct as f64 / self.total as f64
                }
            }
            Metric::Precision => ratio(self.true_pos, self.true_pos + self.false_pos),
            Metric::Recall => ratio(self.true_pos, self.true_pos + self.false_neg),
            Metric::F1 => {
                // 2·P·R / (P + R) = 2·TP / (2·TP + FP + FN), exact in counts.
                ratio(2 * self.true_pos, 2 * self.true_pos + self.false_pos + self.false_neg)
            }
            Metric::Auc => self.auc(),
        }
    }

    /// Mann–Whitney: rank all scores (ties share their mean rank); the AUC is
    /// `(Σ ranks of positives − P(P+1)/2) / (P·N)`.
    fn auc(&self) -> f64 {
        let positives = self.scores.iter().filter(|s| s.1).count();
        let negatives = self.scores.len() - positives;
        if self.nan_score || positives == 0 || negatives == 0 {
            return f64::NAN;
        }
        let mut sorted = self.scores.clone();
        sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut rank_sum = 0.0f64;
        let mut start = 0;
        while start < sorted.len() {
            let mut end = start + 1;
            while end < sorted.len() && sorted[end].0 == sorted[start].0 {
                end += 1;
            }
            // Ranks start + 1 ..= end share their mean.
            let mean_rank = (start + 1 + end) as f64 / 2.0;
            let tied_positives = sorted[start..end].iter().filter(|s| s.1).count();
            rank_sum += mean_rank * tied_positives as f64;
            start = end;
        }
        let (p, n) = (positives as f64, negatives as f64);
        (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
    }

    /// This state combined with those of all other ranks, exactly: the counts summed and the
    /// AUC's scores gathered (every rank must call it, with the same metrics).
    pub(crate) fn reduced(&self, comm: &dyn Communicator) -> MetricState {
        let mut counts =
            [self.total, self.correct, self.true_pos, self.false_pos, self.false_neg, self.nan_score as u64]
                .map(|c| c as f64);
        comm.all_reduce(Buffer::F64(&mut counts), ReduceOp::Sum);
        let [total, correct, true_pos, false_pos, false_neg, nan] = counts.map(|c| c as u64);
        let scores = if self.metric == Metric::Auc {
            let flat: Vec<f64> = self.scores.iter().flat_map(|&(s, p)| [s, if p { 1.0 } else { 0.0 }]).collect();
            comm.all_gather(&flat).chunks_exact(2).map(|c| (c[0], c[1] == 1.0)).collect()
        } else {
            Vec::new()
        };
        MetricState { metric: self.metric, total, correct, true_pos, false_pos, false_neg, scores, nan_score: nan > 0 }
    }

    /// Forgets everything added, for the next epoch.
    pub fn reset(&mut self) {
        *self = MetricState { scores: std::mem::take(&mut self.scores), ..MetricState::new(self.metric) };
        self.scores.clear();
    }
}

/// A [`MetricState`] as saved in a checkpoint: counts, and scores as their bit patterns (exact,
/// and `NaN` survives JSON).
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedMetricState {
    metric: String,
    total: u64,
    correct: u64,
    true_pos: u64,
    false_pos: u64,
    false_neg: u64,
    scores: Vec<(u64, bool)>,
    nan_score: bool,
}

impl MetricState {
    pub(crate) fn save(&self) -> SavedMetricState {
        SavedMetricState {
            metric: self.metric.name().to_string(),
            total: self.total,
            correct: self.correct,
            true_pos: self.true_pos,
            false_pos: self.false_pos,
            false_neg: self.false_neg,
            scores: self.scores.iter().map(|&(v, p)| (v.to_bits(), p)).collect(),
            nan_score: self.nan_score,
        }
    }

    pub(crate) fn restore(saved: SavedMetricState) -> std::result::Result<Self, String> {
        let metric = Metric::from_name(&saved.metric).ok_or_else(|| format!("unknown metric {:?}", saved.metric))?;
        Ok(MetricState {
            metric,
            total: saved.total,
            correct: saved.correct,
            true_pos: saved.true_pos,
            false_pos: saved.false_pos,
            false_neg: saved.false_neg,
            scores: saved.scores.into_iter().map(|(b, p)| (f64::from_bits(b), p)).collect(),
            nan_score: saved.nan_score,
        })
    }
}

/// The elements of `t` in logical order, as `f64`.
fn to_f64<E: Element>(t: &Tensor<E>) -> Vec<f64> {
    t.to_vec().into_iter().map(|v| v.to_f64().unwrap_or(f64::NAN)).collect()
}

/// The index of the first largest value; `NaN`s never win (unless all are `NaN`: then 0).
fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}
