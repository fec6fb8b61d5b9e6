//! The backward walk, [`Gradients`], and the `backward` methods of [`Tensor`].
//!
//! The walk visits the recorded ops (graph nodes) in reverse topological order. A node runs once
//! every op that used one of its outputs has run; it receives one gradient per output (`None`
//! for an output no gradient reached) and returns one [`Grad`] per input. Gradients arriving at
//! the same tensor add up, in place when nobody else can see the buffer, and parts are added
//! straight into their region. Rules are written with tensor ops, so when the walk runs with
//! recording on (`backward_with_graph`) the gradients it returns carry a graph of their own and
//! can be differentiated again.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::kernels::slice::add_strided;
use crate::tensor::element::Element;
use crate::tensor::handle::{Ctx, Grad, Node, Tensor, TensorId, first_non_finite};
use crate::tensor::layout::Layout;
use crate::tensor::mode::{AnomalyPause, ModeGuard, is_anomaly_enabled, is_grad_enabled};

/// A hasher for the walk's keys, which are tensor ids and node addresses: integers we make
/// ourselves, so they need no protection from chosen collisions, and SipHash (the default) was
/// a fifth of the instructions of a backward pass through a tiny op. A multiply in the style of
/// rustc's FxHash; `finish` rotates so that the well-mixed middle bits land in the low bits the
/// table indexes by (node addresses end in zero bits).
#[derive(Clone, Copy, Default)]
struct IdHasher(u64);

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// A hash map keyed by tensor ids or node addresses.
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The gradients returned by a backward pass, keyed by tensor id: one entry per leaf (a tensor
/// marked with [`Tensor::requires_grad`]) that the output depends on.
pub struct Gradients<E: Element = f32> {
    map: IdMap<TensorId, Tensor<E>>,
}

impl<E: Element> Default for Gradients<E> {
    fn default() -> Self {
        Gradients { map: IdMap::default() }
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
fn accumulate_into<E: Element>(map: &mut IdMap<TensorId, Tensor<E>>, id: TensorId, shape: &[usize], g: Grad<E>) {
    let acc = map.remove(&id);
    let sum = if is_grad_enabled() {
        let g = g.materialize(shape);
        match acc {
            Some(acc) => &acc + &g,
            None => g,
        }
    } else {
        match (acc, g) {
            (None, Grad::Full(g)) => g,
            (Some(acc), Grad::Full(g)) => add_in_place(acc, &g),
            (acc, Grad::Part(part)) => {
                let acc = match acc {
                    Some(acc) => acc.into_unique(),
                    None => Tensor::zeros(shape),
                };
                acc.write_unique(|buf| part.add_to(buf, shape)).expect("accumulate: the gradient buffer is unique");
                acc
            }
        }
    };
    map.insert(id, sum);
}

/// `acc + g`, in place when `acc` is a contiguous buffer nobody else can see.
fn add_in_place<E: Element>(acc: Tensor<E>, g: &Tensor<E>) -> Tensor<E> {
    if acc.shape() == g.shape() {
        let (gd, gl) = (g.data(), g.layout());
        let full = Layout::contiguous(acc.shape());
        if acc.write_unique(|d| add_strided(d, &full, &gd, gl)).is_some() {
            return acc;
        }
    }
    &acc + g
}

/// A vertex of the walk: a leaf tensor, or a recorded op with all its outputs.
enum Vertex<E: Element> {
    Leaf(Tensor<E>),
    Op(Arc<Node<E>>),
}

/// The identity of a vertex: a leaf's id, or the address of an op's node.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Leaf(TensorId),
    Op(usize),
}

/// The outputs of each op that the walk reached, by node address.
type Reached<E> = IdMap<usize, Vec<Option<Tensor<E>>>>;

/// The vertex `t` belongs to; notes `t` as a reached output of its op.
fn vertex_of<E: Element>(t: &Tensor<E>, reached: &mut Reached<E>) -> (Key, Vertex<E>) {
    match t.node() {
        Some((node, output)) => {
            let key = Arc::as_ptr(node).cast::<()>() as usize;
            let outs = reached.entry(key).or_insert_with(|| vec![None; node.outputs.len()]);
            outs[output].get_or_insert_with(|| t.clone());
            (Key::Op(key), Vertex::Op(Arc::clone(node)))
        }
        None => (Key::Leaf(t.id()), Vertex::Leaf(t.clone())),
    }
}

/// The vertices reachable from `root` that need gradients, each after everything it was
/// computed from (so in reverse, each op comes after every op that used its outputs).
/// Iterative depth-first search: an unrolled recurrent net is far deeper than the call stack.
fn topo_order<E: Element>(root: &Tensor<E>, reached: &mut Reached<E>) -> Vec<Vertex<E>> {
    let mut order = Vec::new();
    let mut visited: HashSet<Key, BuildHasherDefault<IdHasher>> = HashSet::default();
    let (key, v) = vertex_of(root, reached);
    visited.insert(key);
    // (vertex, index of the next input to visit)
    let mut stack: Vec<(Vertex<E>, usize)> = vec![(v, 0)];
    while let Some((v, next)) = stack.pop() {
        let inputs = match &v {
            Vertex::Op(node) => node.inputs.as_slice(),
            Vertex::Leaf(_) => &[],
        };
        let mut child = None;
        for (i, c) in inputs.iter().enumerate().skip(next) {
            if !c.needs_grad() {
                continue;
            }
            let (key, cv) = vertex_of(c, reached);
            if visited.insert(key) {
                child = Some((i, cv));
                break;
            }
        }
        match child {
            Some((i, cv)) => {
                stack.push((v, i + 1));
                stack.push((cv, 0));
            }
            None => order.push(v),
        }
    }
    order
}

/// The backward walk from `root` with output gradient `grad`.
#[track_caller]
pub(crate) fn run_backward<E: Element>(root: &Tensor<E>, grad: Tensor<E>, create_graph: bool) -> Gradients<E> {
    run_backward_hooked(root, grad, create_graph, &mut |_, _| {})
}

/// The backward walk, calling `on_leaf(leaf, gradient)` as soon as a leaf's gradient is final
/// (every op that used the leaf has run), while the walk goes on.
#[track_caller]
pub(crate) fn run_backward_hooked<E: Element>(
    root: &Tensor<E>,
    grad: Tensor<E>,
    create_graph: bool,
    on_leaf: &mut dyn FnMut(&Tensor<E>, &Tensor<E>),
) -> Gradients<E> {
    if grad.shape() != root.shape() {
        panic!("backward: output gradient has shape {:?} but the output has shape {:?}", grad.shape(), root.shape());
    }
    let mut out = Gradients::new();
    if !root.needs_grad() {
        return out;
    }
    let mut reached = Reached::default();
    let order = topo_order(root, &mut reached);
    let _mode = ModeGuard::set(create_graph);
    let mut pending: IdMap<TensorId, Tensor<E>> = IdMap::default();
    pending.insert(root.id(), grad);
    for v in order.iter().rev() {
        let node = match v {
            Vertex::Leaf(t) => {
                if let Some(g) = pending.remove(&t.id()) {
                    accumulate_into(&mut out.map, t.id(), t.shape(), Grad::Full(g));
                    // A leaf comes after every op that used it, so its gradient is complete.
                    if let Some(g) = out.map.get(&t.id()) {
                        on_leaf(t, g);
                    }
                }
                continue;
            }
            Vertex::Op(node) => node,
        };
        let grads: Vec<Option<Tensor<E>>> = node.outputs.iter().map(|id| pending.remove(id)).collect();
        if grads.iter().all(Option::is_none) {
            continue;
        }
        node.check_versions();
        if create_graph && let Some(why) = node.op.not_twice() {
            panic!("{}: {why}", node.name());
        }
        let outs = reached
            .remove(&(Arc::as_ptr(node).cast::<()>() as usize))
            .expect("backward: every op in the order was reached through one of its outputs");
        let ctx = Ctx { outs: &outs, grads: &grads, inputs: &node.inputs };
        let anomaly = is_anomaly_enabled();
        // The ops inside a backward rule are checked as one, below, under the rule's name.
        let pause = AnomalyPause::new();
        let input_grads = node.op.backward(&ctx);
        drop(pause);
        assert_eq!(
            input_grads.len(),
            node.inputs.len(),
            "{}: backward returned the wrong number of gradients",
            node.name()
        );
        if anomaly && grads.iter().flatten().all(|g| first_non_finite(g).is_none()) {
            check_backward_anomaly(node, &input_grads);
        }
        for (input, gi) in node.inputs.iter().zip(input_grads) {
            let Some(gi) = gi else { continue };
            if !input.needs_grad() {
                continue;
            }
            if let Grad::Full(gi) = &gi {
                assert_eq!(
                    gi.shape(),
                    input.shape(),
                    "{}: backward produced a gradient of shape {:?} for an input of shape {:?}",
                    node.name(),
                    gi.shape(),
                    input.shape()
                );
            }
            accumulate_into(&mut pending, input.id(), input.shape(), gi);
        }
    }
    out
}

/// Panics if a backward rule turned finite incoming gradients into a non-finite one.
fn check_backward_anomaly<E: Element>(node: &Node<E>, grads: &[Option<Grad<E>>]) {
    for (i, g) in grads.iter().enumerate() {
        let Some(g) = g else { continue };
        if let Some((k, v)) = first_non_finite(g.values()) {
            panic!(
                "anomaly: the backward of `{}` (called at {}) produced {v} at element {k} of the gradient for its input {i} \
                 (shape {:?}) from a finite incoming gradient",
                node.name(),
                node.location,
                node.inputs[i].shape()
            );
        }
    }
}

impl<E: Element> Tensor<E> {
    /// Backpropagates from this scalar (one-element) tensor and returns the gradient of every
    /// leaf it depends on.
    ///
    /// # Panics
    /// If the tensor has more than one element: give the output gradient with
    /// [`backward_with_grad`](Self::backward_with_grad).
    #[track_caller]
    pub fn backward(&self) -> Gradients<E> {
        if self.numel() != 1 {
            panic!(
                "backward: can only start from a tensor with one element, got shape {:?}; use backward_with_grad to give the output gradient",
                self.shape()
            );
        }
        run_backward(self, Tensor::ones(self.shape()), false)
    }

    /// Backpropagates from this tensor with an explicit output gradient of the same shape
    /// (a vector–Jacobian product).
    #[track_caller]
    pub fn backward_with_grad(&self, grad: &Tensor<E>) -> Gradients<E> {
        run_backward(self, grad.clone(), false)
    }

    /// [`backward`](Self::backward) that calls `on_leaf(leaf, gradient)` for each leaf as soon
    /// as its gradient is complete, while the rest of the backward pass still runs: the hook
    /// PyTorch calls `register_post_accumulate_grad_hook`. Leaves come in the order the walk
    /// finishes them (roughly the reverse of the forward pass); each leaf once. Data-parallel
    /// training starts averaging a bucket of gradients across processes here
    /// ([`distributed::DataParallel`](crate::distributed::DataParallel)).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// // loss = Σ tanh(x·w) · v: v's gradient is ready before w's, which is ready before x's.
    /// let x = Tensor::from_vec(vec![0.5f64, -1.0], &[1, 2]).requires_grad();
    /// let w = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).requires_grad();
    /// let v = Tensor::from_vec(vec![1.0f64, -1.0], &[1, 2]).requires_grad();
    /// let mut seen = Vec::new();
    /// let grads = (x.matmul(&w).tanh() * &v).sum().backward_with_hook(|leaf, g| {
    ///     seen.push((leaf.id(), g.to_vec()));
    /// });
    /// assert_eq!(seen.len(), 3);
    /// assert_eq!(seen[0].0, v.id());
    /// for (id, g) in &seen {
    ///     let leaf = [&x, &w, &v].into_iter().find(|t| t.id() == *id).unwrap();
    ///     assert_eq!(&grads.get(leaf).unwrap().to_vec(), g);
    /// }
    /// ```
    ///
    /// # Panics
    /// As [`backward`](Self::backward).
    #[track_caller]
    pub fn backward_with_hook(&self, mut on_leaf: impl FnMut(&Tensor<E>, &Tensor<E>)) -> Gradients<E> {
        if self.numel() != 1 {
            panic!("backward_with_hook: can only start from a tensor with one element, got shape {:?}", self.shape());
        }
        run_backward_hooked(self, Tensor::ones(self.shape()), false, &mut on_leaf)
    }

    /// Like [`backward`](Self::backward), but records the backward pass itself, so the returned
    /// gradients can be differentiated again (PyTorch's `create_graph=True`).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// // y = x³, dy/dx = 3x², d²y/dx² = 6x
    /// let x = Tensor::from_vec(vec![2.0f64], &[1]).requires_grad();
    /// let y = x.powf(3.0).sum();
    /// let dx = y.backward_with_graph().get(&x).unwrap().clone();
    /// assert_eq!(dx.to_vec(), vec![12.0]);
    /// let d2x = dx.sum().backward();
    /// assert_eq!(d2x.get(&x).unwrap().to_vec(), vec![12.0]);
    /// ```
    #[track_caller]
    pub fn backward_with_graph(&self) -> Gradients<E> {
        if self.numel() != 1 {
            panic!("backward_with_graph: can only start from a tensor with one element, got shape {:?}", self.shape());
        }
        run_backward(self, Tensor::ones(self.shape()), true)
    }

    /// [`backward_with_grad`](Self::backward_with_grad) that records the backward pass.
    #[track_caller]
    pub fn backward_with_grad_and_graph(&self, grad: &Tensor<E>) -> Gradients<E> {
        run_backward(self, grad.clone(), true)
    }
}
