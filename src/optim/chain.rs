//! The engine shared by every optimizer: parameters, a chain of transforms, per-parameter state
//! (step count and buffers), the update loop and the state dict.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;

use super::params::ParamList;
use super::transform::{StepCtx, Transform};
use crate::{Element, Error, Gradients, Result, Tensor};

/// The state of one parameter once it has had a gradient.
struct ParamState<E> {
    /// Number of updates so far.
    step: u64,
    /// The buffers of every stage, in chain order, each in row-major order.
    bufs: Vec<Vec<E>>,
}

/// Parameters + transforms + state: one optimizer without its configuration.
pub(crate) struct Chain<E: Element> {
    /// The optimizer's name, for messages.
    name: &'static str,
    params: Vec<Tensor<E>>,
    /// The key of each parameter's state: its dotted name, or its position as text.
    keys: Vec<String>,
    /// Parameter index by key.
    index: HashMap<String, usize>,
    lr: f64,
    stages: Vec<Box<dyn Transform<E>>>,
    /// Name and initial value of every per-parameter buffer, over all stages in order.
    buffers: Vec<(&'static str, f64)>,
    /// The buffers of each stage, as a range of `buffers`.
    ranges: Vec<Range<usize>>,
    /// `None` until the parameter's first update.
    state: Vec<Option<ParamState<E>>>,
}

/// Panics unless `lr` is a usable initial learning rate (positive and finite).
#[track_caller]
pub(crate) fn check_lr(name: &str, lr: f64) {
    if !(lr > 0.0 && lr.is_finite()) {
        panic!("{name}: learning rate must be positive and finite, got {lr:?}");
    }
}

/// Panics unless `value` is finite and `>= 0`.
#[track_caller]
pub(crate) fn check_non_negative(name: &str, what: &str, value: f64) {
    if !(value >= 0.0 && value.is_finite()) {
        panic!("{name}: {what} must be non-negative and finite, got {value:?}");
    }
}

/// Panics unless `value` is in `[0, 1)`.
#[track_caller]
pub(crate) fn check_unit_interval(name: &str, what: &str, value: f64) {
    if !(0.0..1.0).contains(&value) {
        panic!("{name}: {what} must be in [0, 1), got {value:?}");
    }
}

impl<E: Element> Chain<E> {
    /// An optimizer over `params` that runs `stages` and then `p ← p − step_size · u`.
    #[track_caller]
    pub(crate) fn new(name: &'static str, params: ParamList<E>, lr: f64, stages: Vec<Box<dyn Transform<E>>>) -> Self {
        check_lr(name, lr);
        let (keys, params) = params.into_parts();
        let mut seen = HashSet::new();
        let mut index = HashMap::with_capacity(keys.len());
        for (i, (p, key)) in params.iter().zip(&keys).enumerate() {
            if !p.is_contiguous() {
                panic!(
                    "{name}: parameter {key} (shape {:?}) is not contiguous, so it cannot be updated in place",
                    p.shape()
                );
            }
            if !seen.insert(p.id()) {
                panic!("{name}: parameter {key} appears more than once in the parameter list");
            }
            if index.insert(key.clone(), i).is_some() {
                panic!("{name}: the parameter name {key:?} is given to more than one parameter");
            }
        }
        let mut buffers = Vec::new();
        let mut ranges = Vec::new();
        for stage in &stages {
            let start = buffers.len();
            buffers.extend(stage.buffers());
            ranges.push(start..buffers.len());
        }
        debug_assert_eq!(
            buffers.iter().map(|b| b.0).collect::<HashSet<_>>().len(),
            buffers.len(),
            "{name}: buffer names must be unique"
        );
        let state = params.iter().map(|_| None).collect();
        Chain { name, params, keys, index, lr, stages, buffers, ranges, state }
    }

    pub(crate) fn learning_rate(&self) -> f64 {
        self.lr
    }

    #[track_caller]
    pub(crate) fn set_learning_rate(&mut self, lr: f64) {
        if !(lr >= 0.0 && lr.is_finite()) {
            panic!("{}: learning rate must be non-negative and finite, got {lr:?}", self.name);
        }
        self.lr = lr;
    }

    pub(crate) fn parameters(&self) -> &[Tensor<E>] {
        &self.params
    }

    pub(crate) fn named_parameters(&self) -> Vec<(String, Tensor<E>)> {
        self.keys.iter().cloned().zip(self.params.iter().cloned()).collect()
    }

    /// Updates every parameter that has a gradient in `grads`.
    #[track_caller]
    pub(crate) fn step(&mut self, grads: &Gradients<E>) {
        for (i, p) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p) else { continue };
            if g.shape() != p.shape() {
                panic!(
                    "{}::step: the gradient of parameter {} has shape {:?}, but the parameter has shape {:?}",
                    self.name,
                    self.keys[i],
                    g.shape(),
                    p.shape()
                );
            }
            let mut update = g.to_vec();
            let buffers = &self.buffers;
            let st = self.state[i].get_or_insert_with(|| ParamState {
                step: 0,
                bufs: buffers.iter().map(|&(_, init)| vec![E::of(init); p.numel()]).collect(),
            });
            st.step += 1;
            let (stages, ranges, lr) = (&self.stages, &self.ranges, self.lr);
            p.update_(|param| {
                let mut s = StepCtx { step: st.step, lr, step_size: lr, param, update: &mut update };
                for (stage, range) in stages.iter().zip(ranges) {
                    stage.apply(&mut s, &mut st.bufs[range.clone()]);
                }
                let neg = E::of(-s.step_size);
                for (p, &u) in s.param.iter_mut().zip(s.update.iter()) {
                    *p += neg * u;
                }
            });
        }
    }

    /// `"{key}.step"` and `"{key}.{buffer}"` for every parameter that has been updated, in
    /// parameter order.
    pub(crate) fn state_dict(&self) -> Vec<(String, Tensor<E>)> {
        let mut out = Vec::new();
        for ((key, p), st) in self.keys.iter().zip(&self.params).zip(&self.state) {
            let Some(st) = st else { continue };
            out.push((format!("{key}.step"), Tensor::scalar(E::of(st.step as f64))));
            for (&(name, _), buf) in self.buffers.iter().zip(&st.bufs) {
                out.push((format!("{key}.{name}"), Tensor::from_vec(buf.clone(), p.shape())));
            }
        }
        out
    }

    /// Checks the whole of `state` first; replaces the optimizer's state only if all of it fits.
    pub(crate) fn load_state_dict(&mut self, state: &[(String, Tensor<E>)]) -> Result<()> {
        let n = self.params.len();
        // Slot 0 is the step, slot 1 + k the k-th buffer.
        let mut given: Vec<Vec<Option<&Tensor<E>>>> = vec![vec![None; 1 + self.buffers.len()]; n];
        let (mut missing, mut unexpected, mut invalid) = (Vec::new(), Vec::new(), Vec::new());
        for (name, t) in state {
            match self.slot_of(name) {
                Some((i, k)) if given[i][k].is_some() => invalid.push(format!("{name} (given more than once)")),
                Some((i, k)) => given[i][k] = Some(t),
                None => unexpected.push(name.clone()),
            }
        }
        let mut new_state = Vec::with_capacity(n);
        for ((slots, p), key) in given.iter().zip(&self.params).zip(&self.keys) {
            if slots.iter().all(Option::is_none) {
                new_state.push(None);
                continue;
            }
            let step = match slots[0] {
                None => {
                    missing.push(format!("{key}.step"));
                    None
                }
                Some(t) => match parse_step(t) {
                    Ok(step) => Some(step),
                    Err(why) => {
                        invalid.push(format!("{key}.step ({why})"));
                        None
                    }
                },
            };
            let mut bufs = Vec::with_capacity(self.buffers.len());
            for (&(name, _), slot) in self.buffers.iter().zip(&slots[1..]) {
                match slot {
                    None => missing.push(format!("{key}.{name}")),
                    Some(t) if t.shape() != p.shape() => invalid.push(format!(
                        "{key}.{name} (shape {:?}, but parameter {key} has shape {:?})",
                        t.shape(),
                        p.shape()
                    )),
                    Some(t) => bufs.push(t.to_vec()),
                }
            }
            new_state.push(step.filter(|_| bufs.len() == self.buffers.len()).map(|step| ParamState { step, bufs }));
        }
        if !(missing.is_empty() && unexpected.is_empty() && invalid.is_empty()) {
            return Err(Error::OptimizerState { optimizer: self.name, missing, unexpected, invalid });
        }
        self.state = new_state;
        Ok(())
    }

    /// `"{key}.{field}"` → (parameter index, slot), for the key of one of the parameters and a
    /// field this optimizer keeps. Field names have no dot, so the key is everything before
    /// the last one (keys are dotted names like `lstm.weight_ih_l0`, or positions like `0`).
    fn slot_of(&self, name: &str) -> Option<(usize, usize)> {
        let (key, field) = name.rsplit_once('.')?;
        let i = *self.index.get(key)?;
        if field == "step" {
            return Some((i, 0));
        }
        self.buffers.iter().position(|&(b, _)| b == field).map(|k| (i, 1 + k))
    }
}

/// A step count stored as a scalar tensor: a non-negative integer.
fn parse_step<E: Element>(t: &Tensor<E>) -> std::result::Result<u64, String> {
    if !t.shape().is_empty() {
        return Err(format!("shape {:?}, expected a scalar of shape []", t.shape()));
    }
    let v = t.item().to_f64().unwrap_or(f64::NAN);
    if !(v >= 0.0 && v.fract() == 0.0 && v < 9.0e15) {
        return Err(format!("value {v} is not a step count"));
    }
    Ok(v as u64)
}

impl<E: Element> fmt::Debug for Chain<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(self.name)
            .field("lr", &self.lr)
            .field("parameters", &self.params.iter().map(|p| p.shape().to_vec()).collect::<Vec<_>>())
            .field("stages", &self.stages)
            .field("updated", &self.state.iter().filter(|s| s.is_some()).count())
            .finish()
    }
}
