//! The reverse-mode graph: nodes, the backward walk, [`Gradients`], [`no_grad`].
//!
//! Each op records a [`Node`] holding its inputs and a backward closure; the closure is written
//! with tensor ops, so when the walk runs with recording on (`backward_with_graph`) the
//! gradients it returns carry a graph of their own and can be differentiated again.

use std::cell::Cell;
use std::collections::HashMap;

use crate::storage::Element;
use crate::tensor::{Tensor, TensorId};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
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

/// One recorded op: its name (for messages), its inputs and its backward rule.
pub(crate) struct Node<E: Element> {
    pub op: &'static str,
    pub inputs: Vec<Tensor<E>>,
    pub backward: BackwardFn<E>,
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

    /// Adds every gradient of `other` into `self` (gradient accumulation over micro-batches).
    pub fn accumulate(&mut self, other: Gradients<E>) {
        for (id, g) in other.map {
            accumulate_into(&mut self.map, id, g);
        }
    }
}

/// Adds `g` into the entry for `id`, in place when the existing buffer is ours alone.
fn accumulate_into<E: Element>(map: &mut HashMap<TensorId, Tensor<E>>, id: TensorId, g: Tensor<E>) {
    match map.remove(&id) {
        None => {
            map.insert(id, g);
        }
        Some(acc) => {
            let sum = if is_grad_enabled() { &acc + &g } else { acc.add_assign_owned(&g) };
            map.insert(id, sum);
        }
    }
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
            accumulate_into(&mut out.map, t.id(), g);
            continue;
        };
        let grads = (node.backward)(&Ctx { out: t, grad: &g, inputs: &node.inputs });
        debug_assert_eq!(grads.len(), node.inputs.len(), "{}: backward arity", node.op);
        for (input, gi) in node.inputs.iter().zip(grads) {
            let Some(gi) = gi else { continue };
            if !input.needs_grad() {
                continue;
            }
            assert_eq!(
                gi.shape(),
                input.shape(),
                "{}: backward produced a gradient of shape {:?} for an input of shape {:?}",
                node.op,
                gi.shape(),
                input.shape()
            );
            accumulate_into(&mut pending, input.id(), gi);
        }
    }
    out
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
