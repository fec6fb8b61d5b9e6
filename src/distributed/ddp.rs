//! [`DataParallel`]: PyTorch's `DistributedDataParallel` over a [`Communicator`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use super::{Communicator, ReduceOp, buffer};
use crate::error::{Error, Result};
use crate::kernels::slice::{bit_fingerprint, copy_strided};
use crate::nn::{Module, state_entries, write_state};
use crate::{Element, Gradients, Layout, Tensor, TensorId};

/// Settings of [`DataParallel`]; start from `DataParallelConfig::default()`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DataParallelConfig {
    /// The size of a gradient bucket in bytes (default 25 MiB, PyTorch's `bucket_cap_mb=25`).
    /// Gradients are averaged a bucket at a time: small buckets start travelling sooner and
    /// overlap more of the backward pass, large ones pay the per-message latency less often.
    /// A parameter larger than a bucket gets a bucket of its own.
    pub bucket_bytes: usize,
    /// Average each bucket on a background thread as soon as its gradients are complete, while
    /// the backward pass goes on (default true; used only when the communicator allows
    /// collectives from another thread). False reduces the buckets one after another on the
    /// calling thread, still as they complete.
    pub overlap: bool,
}

impl Default for DataParallelConfig {
    fn default() -> Self {
        DataParallelConfig { bucket_bytes: 25 << 20, overlap: true }
    }
}

/// Data-parallel training, as PyTorch's `DistributedDataParallel`: every rank holds the whole
/// model, computes gradients on its own data, and [`backward`](Self::backward) returns the
/// gradients averaged over all ranks, so that every rank takes the same optimizer step.
///
/// - [`broadcast_state`](Self::broadcast_state) copies rank 0's parameters and buffers to every
///   rank (call it once before training; [`Trainer::distributed`](crate::train::Trainer::distributed)
///   does).
/// - [`backward`](Self::backward) runs the backward pass and averages the gradients in
///   buckets of about [`DataParallelConfig::bucket_bytes`], filled in the order the backward
///   pass finishes the parameters (roughly last layer first) and each sent as soon as it is
///   complete, on a background thread, while the backward pass goes on. Buckets are sent in
///   the same order on every rank. A parameter that got no gradient on some rank counts as a
///   zero gradient there (PyTorch's `find_unused_parameters`); one that got none on any rank
///   gets none.
/// - [`check_parameters`](Self::check_parameters) verifies that the ranks' parameters are
///   still bit-for-bit equal.
///
/// Over [`SingleProcess`](super::SingleProcess) it is plain `loss.backward()`.
///
/// ```
/// use std::sync::Arc;
/// use tensorgrad::distributed::{DataParallel, SingleProcess};
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Optimizer, Sgd, SgdConfig};
/// use tensorgrad::{Tensor, loss};
///
/// // A training loop written once, for one process or (with `Mpi::init()`) for many.
/// let model: Linear<f64> = Linear::new(3, 1, 0);
/// let mut ddp = DataParallel::new(Arc::new(SingleProcess));
/// ddp.broadcast_state(&model);
/// let mut opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let (x, y) = (Tensor::<f64>::ones(&[4, 3]), Tensor::<f64>::zeros(&[4, 1]));
/// for _ in 0..3 {
///     let l = loss::mse(&model.forward(&x), &y, loss::Reduction::Mean);
///     let grads = ddp.backward(&l, &model.named_parameters());
///     opt.step(&grads);
/// }
/// ddp.check_parameters(&model)?;
/// # Ok::<(), tensorgrad::Error>(())
/// ```
pub struct DataParallel<E: Element = f32> {
    comm: Arc<dyn Communicator>,
    config: DataParallelConfig,
    plan: Option<Plan>,
    worker: Option<Worker<E>>,
    /// Each bucket's buffer from the last step, reused (no allocation, no page faults).
    spare: Vec<Option<Vec<E>>>,
}

impl<E: Element> std::fmt::Debug for DataParallel<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel")
            .field("rank", &self.comm.rank())
            .field("size", &self.comm.size())
            .field("config", &self.config)
            .finish()
    }
}

/// The buckets of one set of parameters.
struct Plan {
    /// The parameters' ids and lengths, in the order given.
    ids: Vec<TensorId>,
    /// For each parameter (by position): its bucket, its offset in the bucket and its index
    /// among the bucket's members (where its presence flag is).
    place: Vec<(usize, usize, usize)>,
    /// For each bucket: its parameters (positions) and its number of values (without flags).
    buckets: Vec<(Vec<usize>, usize)>,
    /// Parameter id → position.
    index: HashMap<TensorId, usize>,
    /// Each parameter's number of values.
    sizes: Vec<usize>,
}

impl Plan {
    /// Buckets of at most `cap` bytes over the parameters, last parameter first (the order the
    /// backward pass tends to finish them).
    fn new<E: Element>(params: &[(String, Tensor<E>)], cap: usize) -> Plan {
        let size = std::mem::size_of::<E>();
        let mut place = vec![(0, 0, 0); params.len()];
        let mut buckets: Vec<(Vec<usize>, usize)> = Vec::new();
        for (i, (_, p)) in params.iter().enumerate().rev() {
            let n = p.numel();
            let fits = buckets.last().is_some_and(|(members, len)| !members.is_empty() && (len + n) * size <= cap);
            if !fits {
                buckets.push((Vec::new(), 0));
            }
            let b = buckets.len() - 1;
            let (members, len) = &mut buckets[b];
            place[i] = (b, *len, members.len());
            members.push(i);
            *len += n;
        }
        Plan {
            ids: params.iter().map(|(_, p)| p.id()).collect(),
            place,
            buckets,
            index: params.iter().enumerate().map(|(i, (_, p))| (p.id(), i)).collect(),
            sizes: params.iter().map(|(_, p)| p.numel()).collect(),
        }
    }

    fn matches<E: Element>(&self, params: &[(String, Tensor<E>)]) -> bool {
        self.ids.len() == params.len() && self.ids.iter().zip(params).all(|(id, (_, p))| *id == p.id())
    }
}

/// The background thread that reduces buckets: bucket index and values in, the same out.
struct Worker<E: Element> {
    send: Option<Sender<(usize, Vec<E>)>>,
    done: Receiver<(usize, Vec<E>)>,
    thread: Option<JoinHandle<()>>,
}

impl<E: Element> Worker<E> {
    fn start(comm: Arc<dyn Communicator>) -> Worker<E> {
        let (send, jobs) = channel::<(usize, Vec<E>)>();
        let (finished, done) = channel();
        let thread = std::thread::Builder::new()
            .name("tensorgrad-allreduce".into())
            .spawn(move || {
                for (b, mut values) in jobs {
                    comm.all_reduce(buffer(&mut values), ReduceOp::Mean);
                    if finished.send((b, values)).is_err() {
                        break;
                    }
                }
            })
            .expect("DataParallel: cannot start the all-reduce thread");
        Worker { send: Some(send), done, thread: Some(thread) }
    }
}

impl<E: Element> Drop for Worker<E> {
    fn drop(&mut self) {
        drop(self.send.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One step's buckets being filled and reduced.
struct Step<'p, E: Element> {
    plan: &'p Plan,
    /// Each bucket's values followed by one presence flag per member.
    values: Vec<Option<Vec<E>>>,
    /// Members still missing, per bucket.
    missing: Vec<usize>,
    /// The next bucket to send: buckets go in index order on every rank.
    next: usize,
}

impl<'p, E: Element> Step<'p, E> {
    /// The step's buckets, on last step's buffers where there are some.
    fn new(plan: &'p Plan, spare: &mut [Option<Vec<E>>]) -> Self {
        let values = plan
            .buckets
            .iter()
            .enumerate()
            .map(|(b, (members, len))| {
                let mut v = spare.get_mut(b).and_then(Option::take).unwrap_or_default();
                v.resize(len + members.len(), E::zero());
                v[*len..].fill(E::zero()); // no gradient yet
                Some(v)
            })
            .collect();
        Step { plan, values, missing: plan.buckets.iter().map(|(m, _)| m.len()).collect(), next: 0 }
    }

    /// Copies parameter `i`'s gradient (in any layout) into its bucket and flags it present.
    fn fill(&mut self, i: usize, grad: &Tensor<E>) {
        let (b, offset, k) = self.plan.place[i];
        let len = self.plan.buckets[b].1;
        let values = self.values[b].as_mut().expect("a bucket is filled before it is sent");
        let n = grad.numel();
        let (data, layout) = (grad.data(), grad.layout());
        let out = &mut values[offset..offset + n];
        if layout.is_contiguous() {
            out.copy_from_slice(&data[layout.offset()..layout.offset() + n]);
        } else {
            copy_strided(out, &Layout::contiguous(grad.shape()), &data, layout);
        }
        values[len + k] = E::one();
        self.missing[b] -= 1;
    }

    /// The buckets from `next` on that are complete (all of them when `all`, a parameter
    /// without a gradient as zeros), in order.
    fn ready(&mut self, all: bool) -> Vec<(usize, Vec<E>)> {
        let mut out = Vec::new();
        while self.next < self.values.len() && (all || self.missing[self.next] == 0) {
            let mut values = self.values[self.next].take().expect("each bucket is sent once");
            let (members, len) = &self.plan.buckets[self.next];
            for (k, &i) in members.iter().enumerate() {
                if values[len + k] == E::zero() {
                    let (_, offset, _) = self.plan.place[i];
                    values[offset..offset + self.plan.sizes[i]].fill(E::zero());
                }
            }
            out.push((self.next, values));
            self.next += 1;
        }
        out
    }
}

impl<E: Element> DataParallel<E> {
    /// Data-parallel training over `comm` with the default settings (25 MiB buckets, overlap).
    pub fn new(comm: Arc<dyn Communicator>) -> Self {
        Self::with_config(comm, DataParallelConfig::default())
    }

    /// Data-parallel training over `comm` with `config`.
    ///
    /// # Panics
    /// If `config.bucket_bytes` is 0.
    #[track_caller]
    pub fn with_config(comm: Arc<dyn Communicator>, config: DataParallelConfig) -> Self {
        if config.bucket_bytes == 0 {
            panic!("DataParallel: bucket_bytes must be at least 1");
        }
        DataParallel { comm, config, plan: None, worker: None, spare: Vec::new() }
    }

    /// The communicator.
    pub fn comm(&self) -> &Arc<dyn Communicator> {
        &self.comm
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// The number of processes.
    pub fn size(&self) -> usize {
        self.comm.size()
    }

    /// The settings.
    pub fn config(&self) -> DataParallelConfig {
        self.config
    }

    /// Copies rank 0's parameters and buffers (batch norm's running statistics) into every
    /// rank's model, so that all ranks start from the same state (PyTorch's DDP does this when
    /// it wraps a model). Every rank must call it.
    pub fn broadcast_state<M: Module<E> + ?Sized>(&self, model: &M) {
        if self.comm.size() == 1 {
            return;
        }
        let entries = state_entries(model);
        let mut flat: Vec<E> = Vec::with_capacity(entries.iter().map(|e| e.tensor.numel()).sum());
        for e in &entries {
            flat.extend(e.tensor.to_vec());
        }
        let piece = (self.config.bucket_bytes / std::mem::size_of::<E>()).max(1);
        for chunk in flat.chunks_mut(piece) {
            self.comm.broadcast(buffer(chunk), 0);
        }
        if self.comm.rank() != 0 {
            let mut at = 0;
            let values = entries
                .iter()
                .map(|e| {
                    let n = e.tensor.numel();
                    at += n;
                    flat[at - n..at].to_vec()
                })
                .collect();
            write_state(model, values);
        }
    }

    /// The backward pass from `loss`, with the gradients of `params` (the trainable
    /// parameters by name, e.g. `model.named_parameters()`, the same list on every rank)
    /// averaged over all ranks. Every rank must call it once per step.
    ///
    /// # Panics
    /// As [`Tensor::backward`].
    #[track_caller]
    pub fn backward(&mut self, loss: &Tensor<E>, params: &[(String, Tensor<E>)]) -> Gradients<E> {
        if self.comm.size() == 1 {
            return loss.backward();
        }
        if !self.plan.as_ref().is_some_and(|p| p.matches(params)) {
            self.plan = Some(Plan::new(params, self.config.bucket_bytes));
            self.spare.clear();
        }
        let overlap = self.config.overlap && self.comm.threads_allowed();
        if overlap && self.worker.is_none() {
            self.worker = Some(Worker::start(Arc::clone(&self.comm)));
        }
        let plan = self.plan.as_ref().expect("the plan was just made");
        let comm = &self.comm;
        let worker = self.worker.as_ref().filter(|_| overlap);
        let mut step = Step::new(plan, &mut self.spare);
        let mut reduced: Vec<Option<Vec<E>>> = vec![None; plan.buckets.len()];
        let send = |ready: Vec<(usize, Vec<E>)>, reduced: &mut Vec<Option<Vec<E>>>| {
            for (b, mut values) in ready {
                match worker {
                    Some(w) => {
                        let sent = w.send.as_ref().map(|s| s.send((b, values)));
                        if !matches!(sent, Some(Ok(()))) {
                            panic!("DataParallel: the all-reduce thread has stopped");
                        }
                    }
                    None => {
                        comm.all_reduce(buffer(&mut values), ReduceOp::Mean);
                        reduced[b] = Some(values);
                    }
                }
            }
        };
        let mut grads = loss.backward_with_hook(|leaf, g| {
            if let Some(&i) = plan.index.get(&leaf.id()) {
                step.fill(i, g);
                let ready = step.ready(false);
                send(ready, &mut reduced);
            }
        });
        let rest = step.ready(true);
        send(rest, &mut reduced);
        if let Some(w) = worker {
            let outstanding = reduced.iter().filter(|r| r.is_none()).count();
            for _ in 0..outstanding {
                let (b, values) = w.done.recv().expect("DataParallel: the all-reduce thread has stopped");
                reduced[b] = Some(values);
            }
        }
        for (b, (members, len)) in plan.buckets.iter().enumerate() {
            let values = reduced[b].as_ref().expect("every bucket was reduced");
            for (k, &i) in members.iter().enumerate() {
                let (_, offset, _) = plan.place[i];
                let p = &params[i].1;
                if values[len + k] == E::zero() {
                    grads.remove(p); // no rank had a gradient for it
                    continue;
                }
                let averaged = &values[offset..offset + plan.sizes[i]];
                // Into the local gradient's own buffer when nothing else holds it.
                let written = grads.get(p).filter(|g| g.shape() == p.shape() && g.is_contiguous()).and_then(|g| {
                    g.write_unique(|d| {
                        let fits = d.len() == averaged.len();
                        if fits {
                            d.copy_from_slice(averaged);
                        }
                        fits
                    })
                }) == Some(true);
                if !written {
                    grads.insert(p, Tensor::from_vec(averaged.to_vec(), p.shape()));
                }
            }
        }
        self.spare = reduced;
        grads
    }

    /// Checks that every rank's parameters and buffers are bit-for-bit those of rank 0 (a hash
    /// of each tensor's bits, gathered from every rank). Every rank must call it.
    ///
    /// # Errors
    /// [`Error::Distributed`] naming the first tensor and rank that differ.
    pub fn check_parameters<M: Module<E> + ?Sized>(&self, model: &M) -> Result<()> {
        let entries = state_entries(model);
        let local: Vec<f64> = entries.iter().map(|e| bit_fingerprint(&e.tensor.to_vec()) as f64).collect();
        let all = self.comm.all_gather(&local);
        let n = local.len();
        if all.len() != n * self.comm.size() {
            return Err(Error::Distributed {
                op: "DataParallel::check_parameters",
                reason: format!(
                    "the ranks hold different numbers of tensors ({} values gathered for {n} tensors on {} ranks)",
                    all.len(),
                    self.comm.size()
                ),
            });
        }
        for (r, theirs) in all.chunks(n).enumerate() {
            if let Some(k) = theirs.iter().zip(&all[..n]).position(|(a, b)| a != b) {
                return Err(Error::Distributed {
                    op: "DataParallel::check_parameters",
                    reason: format!("`{}` on rank {r} differs from rank 0's", entries[k].name),
                });
            }
        }
        Ok(())
    }
}
