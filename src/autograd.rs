//! The reverse-mode graph: nodes, the backward walk, [`Gradients`], [`no_grad`].
//!
//! Each op records a [`Node`] holding its inputs and a backward closure; the closure is written
//! with tensor ops, so when the walk runs with recording on (`backward_with_graph`) the
//! gradients it returns carry a graph of their own and can be differentiated again.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::storage::Element;
use crate::tensor::{Tensor, TensorId};

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
struct AnomalyPause(bool);

impl AnomalyPause {
    fn new() -> Self {
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

/// The first non-finite element of `t`, as (logical index, value).
pub(crate) fn first_non_finite<E: Element>(t: &Tensor<E>) -> Option<(usize, E)> {
    t.to_vec().into_iter().enumerate().find(|(_, v)| !v.is_finite())
}

/// Whether ops on this thread currently record a graph.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous recording mode when dropped (also on panic).
struct ModeGuard(bool);

impl ModeGuard {
    fn set(enabled: bool) -> Self {
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

/// What a backward closure sees: the op's output, the gradient flowing into it, and its inputs.
pub(crate) struct Ctx<'a, E: Element> {
    pub out: &'a Tensor<E>,
    pub grad: &'a Tensor<E>,
    pub inputs: &'a [Tensor<E>],
}

impl<E: Element> Ctx<'_, E> {
    /// Whether input `i` wants a gradient (others may return `None`).
    pub fn needs(&self, i: usize) -> bool {
        self.inputs[i].needs_grad()
    }
}

pub(crate) type BackwardFn<E> = Box<dyn Fn(&Ctx<'_, E>) -> Vec<Option<Tensor<E>>> + Send + Sync>;
pub(crate) type PartsFn<E> = Box<dyn Fn(&Ctx<'_, E>) -> Vec<Option<Grad<E>>> + Send + Sync>;

/// A backward rule: most ops return whole gradients; slicing ops may return parts.
pub(crate) enum Backward<E: Element> {
    Dense(BackwardFn<E>),
    Parts(PartsFn<E>),
}

/// One recorded op: its name (for messages), its inputs and its backward rule.
pub(crate) struct Node<E: Element> {
    pub op: &'static str,
    pub inputs: Vec<Tensor<E>>,
    /// The buffer version of each input when the op was recorded.
    pub versions: Vec<u64>,
    /// Where the op was called (for anomaly reports).
    pub location: &'static std::panic::Location<'static>,
    pub backward: Backward<E>,
}

impl<E: Element> Node<E> {
    /// Panics if an input was overwritten in place (`update_`) after this op was recorded: its
    /// backward would silently use the new values.
    #[track_caller]
    fn check_versions(&self) {
        for (input, &v) in self.inputs.iter().zip(&self.versions) {
            let now = input.storage().version();
            if now != v {
                panic!(
                    "backward: an input of shape {:?} to `{}` was modified in place (update_) after the op was \
                     recorded (version {now}, recorded at {v}); compute the output again after updating the tensor",
                    input.shape(),
                    self.op
                );
            }
        }
    }
}

/// A gradient flowing to one input: the whole of it, or a part that belongs in a region of it.
///
/// Slicing ops (`narrow`, `index_select`) return parts, so that a loop over the 100 steps of a
/// sequence adds 100 slices into one buffer instead of building 100 full-size zero tensors.
/// When the backward pass is recorded, a part is materialised with the differentiable adjoint
/// op (`unnarrow`, `index_add`) instead.
pub(crate) enum Grad<E: Element> {
    Full(Tensor<E>),
    /// The gradient of `input.narrow(dim, start, part.shape()[dim])`.
    Narrow {
        dim: usize,
        start: usize,
        part: Tensor<E>,
    },
    /// Slice `j` of `part` along `dim` belongs at position `indices[j]` (repeats add up).
    IndexAdd {
        dim: usize,
        indices: Arc<[usize]>,
        part: Tensor<E>,
    },
}

impl<E: Element> Grad<E> {
    /// The whole gradient for an input of `shape`, built with differentiable ops.
    fn materialize(self, shape: &[usize]) -> Tensor<E> {
        match self {
            Grad::Full(t) => t,
            Grad::Narrow { dim, start, part } => part.unnarrow(dim, start, shape[dim]),
            Grad::IndexAdd { dim, indices, part } => part.index_add_zeros(dim, &indices, shape[dim]),
        }
    }
}

/// The gradients returned by a backward pass, keyed by tensor id: one entry per leaf (a tensor
/// marked with [`Tensor::requires_grad`]) that the output depends on.
pub struct Gradients<E: Element = f32> {
    map: HashMap<TensorId, Tensor<E>>,
}

impl<E: Element> Default for Gradients<E> {
    fn default() -> Self {
        Gradients { map: HashMap::new() }
    }
}

impl<E: Element> std::fmt::Debug for Gradients<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.map.iter().map(|(k, v)| (k, v.shape()))).finish()
    }
}

impl<E: Element> Gradients<E> {
    /// An empty set of gradients.
    pub fn new() -> Self {
        Self::default()
    }

    /// The gradient of the output with respect to `t`, if `t` is a leaf the output depends on.
    pub fn get(&self, t: &Tensor<E>) -> Option<&Tensor<E>> {
        self.map.get(&t.id())
    }

    /// Removes and returns the gradient for `t`.
    pub fn remove(&mut self, t: &Tensor<E>) -> Option<Tensor<E>> {
        self.map.remove(&t.id())
    }

    /// Sets the gradient for `t` (an optimizer reads whatever is here).
    pub fn insert(&mut self, t: &Tensor<E>, grad: Tensor<E>) {
        self.map.insert(t.id(), grad);
    }

    /// Number of tensors with a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no tensor has a gradient.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The gradients with the ids of their tensors, in increasing id order (the order in which
    /// the tensors were made), so that anything summed over them is reproducible.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).requires_grad();
    /// let b = Tensor::from_vec(vec![3.0f32], &[1]).requires_grad();
    /// let grads = ((&a * &a).sum() + b.sum()).backward();
    /// let ids: Vec<_> = grads.iter().map(|(id, _)| id).collect();
    /// assert_eq!(ids, vec![a.id(), b.id()]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (TensorId, &Tensor<E>)> {
        let mut entries: Vec<(TensorId, &Tensor<E>)> = self.map.iter().map(|(&id, g)| (id, g)).collect();
        entries.sort_unstable_by_key(|&(id, _)| id);
        entries.into_iter()
    }

    /// Like [`iter`](Self::iter), with each gradient replaceable (as gradient clipping does).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (TensorId, &mut Tensor<E>)> {
        let mut entries: Vec<(TensorId, &mut Tensor<E>)> = self.map.iter_mut().map(|(&id, g)| (id, g)).collect();
        entries.sort_unstable_by_key(|&(id, _)| id);
        entries.into_iter()
    }

    /// Adds every gradient of `other` into `self` (gradient accumulation over micro-batches).
    pub fn accumulate(&mut self, other: Gradients<E>) {
        for (id, g) in other.map {
            let shape = g.shape().to_vec();
            accumulate_into(&mut self.map, id, &shape, Grad::Full(g));
        }
    }
}

/// Adds `g` into the entry for `id` (a tensor of `shape`), in place when the existing buffer is
/// ours alone. While recording, everything goes through differentiable ops instead.
fn accumulate_into<E: Element>(map: &mut HashMap<TensorId, Tensor<E>>, id: TensorId, shape: &[usize], g: Grad<E>) {
    let acc = map.remove(&id);
    let sum = match (acc, g) {
        (acc, g) if is_grad_enabled() => {
            let g = g.materialize(shape);
            match acc {
                Some(acc) => &acc + &g,
                None => g,
            }
        }
        (None, Grad::Full(g)) => g,
        (Some(acc), Grad::Full(g)) => acc.add_assign_owned(&g),
        (acc, part) => {
            let acc = match acc {
                Some(acc) => acc.into_unique(),
                None => Tensor::zeros(shape),
            };
            acc.add_part_(part);
            acc
        }
    };
    map.insert(id, sum);
}

/// The backward walk from `root` with output gradient `grad`.
#[track_caller]
pub(crate) fn run_backward<E: Element>(root: &Tensor<E>, grad: Tensor<E>, create_graph: bool) -> Gradients<E> {
    if grad.shape() != root.shape() {
        panic!("backward: output gradient has shape {:?} but the output has shape {:?}", grad.shape(), root.shape());
    }
    let mut out = Gradients::new();
    if !root.needs_grad() {
        return out;
    }
    let order = topo_order(root);
    let _mode = ModeGuard::set(create_graph);
    let mut pending: HashMap<TensorId, Tensor<E>> = HashMap::new();
    pending.insert(root.id(), grad);
    for t in order.iter().rev() {
        let Some(g) = pending.remove(&t.id()) else { continue };
        let Some(node) = t.node() else {
            accumulate_into(&mut out.map, t.id(), t.shape(), Grad::Full(g));
            continue;
        };
        node.check_versions();
        let ctx = Ctx { out: t, grad: &g, inputs: &node.inputs };
        let anomaly = is_anomaly_enabled();
        // The ops inside a backward rule are checked as one, below, under the rule's name.
        let pause = AnomalyPause::new();
        let grads: Vec<Option<Grad<E>>> = match &node.backward {
            Backward::Dense(f) => f(&ctx).into_iter().map(|g| g.map(Grad::Full)).collect(),
            Backward::Parts(f) => f(&ctx),
        };
        drop(pause);
        debug_assert_eq!(grads.len(), node.inputs.len(), "{}: backward arity", node.op);
        if anomaly && first_non_finite(&g).is_none() {
            check_backward_anomaly(node, &grads);
        }
        for (input, gi) in node.inputs.iter().zip(grads) {
            let Some(gi) = gi else { continue };
            if !input.needs_grad() {
                continue;
            }
            if let Grad::Full(gi) = &gi {
                assert_eq!(
                    gi.shape(),
                    input.shape(),
                    "{}: backward produced a gradient of shape {:?} for an input of shape {:?}",
                    node.op,
                    gi.shape(),
                    input.shape()
                );
            }
            accumulate_into(&mut pending, input.id(), input.shape(), gi);
        }
    }
    out
}

/// Panics if a backward rule turned a finite incoming gradient into a non-finite one.
fn check_backward_anomaly<E: Element>(node: &Node<E>, grads: &[Option<Grad<E>>]) {
    for (i, g) in grads.iter().enumerate() {
        let part = match g {
            Some(Grad::Full(t)) => t,
            Some(Grad::Narrow { part, .. }) | Some(Grad::IndexAdd { part, .. }) => part,
            None => continue,
        };
        if let Some((k, v)) = first_non_finite(part) {
            panic!(
                "anomaly: the backward of `{}` (called at {}) produced {v} at element {k} of the gradient for its input {i} \
                 (shape {:?}) from a finite incoming gradient",
                node.op,
                node.location,
                node.inputs[i].shape()
            );
        }
    }
}

/// Tensors reachable from `root` that need gradients, inputs before the ops that use them.
/// Iterative depth-first search: an unrolled recurrent net is far deeper than the call stack.
fn topo_order<E: Element>(root: &Tensor<E>) -> Vec<Tensor<E>> {
    let mut order = Vec::new();
    let mut visited = std::collections::HashSet::new();
    // (tensor, index of the next input to visit)
    let mut stack: Vec<(Tensor<E>, usize)> = vec![(root.clone(), 0)];
    visited.insert(root.id());
    while let Some((t, next)) = stack.pop() {
        let inputs = t.node().map(|n| n.inputs.as_slice()).unwrap_or(&[]);
        if let Some(child) = inputs[next.min(inputs.len())..]
            .iter()
            .position(|c| c.needs_grad() && !visited.contains(&c.id()))
            .map(|p| next + p)
        {
            let c = inputs[child].clone();
            visited.insert(c.id());
            stack.push((t, child + 1));
            stack.push((c, 0));
        } else {
            order.push(t);
        }
    }
    order
}
