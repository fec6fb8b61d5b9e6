//! [`DataLoader`]: a [`Dataset`] in shuffled mini-batches, optionally prefetched on a
//! background thread.

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rayon::prelude::*;

use super::dataset::{Batch, Dataset, Sample, collate};
use super::sampler::DistributedSampler;
use super::split::permutation;
use crate::{Element, no_grad};

/// Mini-batches of a [`Dataset`], as PyTorch's `DataLoader`: a batch size, seeded shuffling, the
/// last partial batch kept or dropped, and optional prefetching.
///
/// - **Order.** Without shuffling, samples come in index order. With [`shuffle`](Self::shuffle),
///   the order of epoch `e` is [`permutation`]`(len, seed + e)`: it depends only on the seed and
///   the epoch, so a run is reproduced, or resumed at an epoch, with the same batches. This is
///   the order [`Trainer::fit`](crate::train::Trainer::fit) uses for in-memory tensors, so with
///   the same seed and batch size a loader over a [`TensorDataset`](super::TensorDataset) yields
///   the batches `fit(&x, &y, …)` would.
/// - **Last batch.** Kept, smaller, by default; dropped with [`drop_last`](Self::drop_last).
/// - **Prefetch.** With [`prefetch`](Self::prefetch)`(k)`, a background thread loads up to `k`
///   batches ahead while the caller trains on the current one; with
///   [`parallel`](Self::parallel), the samples of a batch are read in parallel on rayon's pool
///   (for a [`Dataset::get`] that reads files or decodes). Neither changes the batches.
///
/// The loader holds the dataset behind an [`Arc`], so it is cheap to clone and can hand the
/// dataset to its loading thread; hence the dataset must be `'static` (own its data, or hold an
/// `Arc` of it).
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::data::{DataLoader, TensorDataset};
///
/// let x = Tensor::<f32>::arange(10).reshape(&[10, 1]);
/// let y = Tensor::<f32>::zeros(&[10]);
/// let loader = DataLoader::new(TensorDataset::new(&x, &y), 4).shuffle(true).seed(7);
/// assert_eq!(loader.len(), 3); // 4 + 4 + 2
/// let sizes: Vec<usize> = loader.epoch(0).map(|b| b.len()).collect();
/// assert_eq!(sizes, [4, 4, 2]);
///
/// // The same seed and epoch give the same batches, another epoch another order.
/// let first = |e| loader.epoch(e).next().unwrap().inputs[0].to_vec();
/// assert_eq!(first(0), first(0));
/// assert_ne!(loader.order(0), loader.order(1));
///
/// // Dropping the partial batch; loading on a background thread.
/// let loader = loader.drop_last(true).prefetch(2);
/// assert_eq!(loader.epoch(0).map(|b| b.len()).collect::<Vec<_>>(), [4, 4]);
/// ```
#[derive(Clone)]
pub struct DataLoader<E: Element = f32> {
    dataset: Arc<dyn Dataset<E>>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
    prefetch: usize,
    parallel: bool,
    /// This process's (rank, number of processes) in data-parallel training.
    shard: Option<(usize, usize)>,
}

impl<E: Element> fmt::Debug for DataLoader<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataLoader")
            .field("samples", &self.dataset.len())
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("seed", &self.seed)
            .field("drop_last", &self.drop_last)
            .field("prefetch", &self.prefetch)
            .field("parallel", &self.parallel)
            .field("shard", &self.shard)
            .finish()
    }
}

impl<E: Element> DataLoader<E> {
    /// Batches of `batch_size` samples of `dataset`, in index order, the last one kept even if
    /// smaller, loaded when asked for.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    #[track_caller]
    pub fn new(dataset: impl Dataset<E> + 'static, batch_size: usize) -> Self {
        if batch_size == 0 {
            panic!("DataLoader::new: batch size must be at least 1");
        }
        DataLoader {
            dataset: Arc::new(dataset),
            batch_size,
            shuffle: false,
            seed: 0,
            drop_last: false,
            prefetch: 0,
            parallel: false,
            shard: None,
        }
    }

    /// Only this process's share of each epoch, for data-parallel training on `num_replicas`
    /// processes: the samples a [`DistributedSampler`](super::DistributedSampler) with the
    /// loader's seed and shuffling gives `rank` (every process shuffles the epoch alike and
    /// takes every `num_replicas`-th sample from `rank`; the epoch is padded with samples from
    /// its start so that every process gets the same number), then batched. `Trainer::fit_loader`
    /// in [distributed](crate::train::Trainer::distributed) mode shards its loader this way.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::data::{DataLoader, TensorDataset};
    ///
    /// let data = TensorDataset::new(&Tensor::<f32>::arange(10).reshape(&[10, 1]), &Tensor::zeros(&[10]));
    /// let loader = DataLoader::new(data, 2).shuffle(true).seed(3);
    /// let (a, b) = (loader.clone().shard(0, 2), loader.clone().shard(1, 2));
    /// assert_eq!((a.len(), b.len()), (3, 3)); // 5 samples each, in batches of 2, 2 and 1
    /// let mut seen: Vec<usize> = a.order(4).into_iter().chain(b.order(4)).collect();
    /// seen.sort();
    /// assert_eq!(seen, (0..10).collect::<Vec<_>>()); // each sample once per epoch
    /// ```
    ///
    /// # Panics
    /// If `rank` is not below `num_replicas`.
    #[track_caller]
    pub fn shard(mut self, rank: usize, num_replicas: usize) -> Self {
        if rank >= num_replicas {
            panic!("DataLoader::shard: rank {rank} is not below num_replicas {num_replicas}");
        }
        self.shard = (num_replicas > 1).then_some((rank, num_replicas));
        self
    }

    /// The (rank, number of processes) given to [`shard`](Self::shard), if any.
    pub fn shard_of(&self) -> Option<(usize, usize)> {
        self.shard
    }

    /// The sampler of this loader's shard, if it is sharded.
    fn sampler(&self) -> Option<DistributedSampler> {
        let (rank, replicas) = self.shard?;
        Some(DistributedSampler::new(self.dataset.len(), replicas, rank).shuffle(self.shuffle).seed(self.seed))
    }

    /// Shuffles the samples every epoch (default off), in an order given by the
    /// [`seed`](Self::seed) and the epoch.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The seed of the shuffling (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Drops the last batch of an epoch when it is smaller than the batch size (default off:
    /// it is kept).
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Loads up to `batches` batches ahead on a background thread (default 0: each batch is
    /// loaded when asked for, on the caller's thread). A panic while loading reaches the caller
    /// when it asks for that batch.
    pub fn prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches;
        self
    }

    /// Reads the samples of each batch in parallel on rayon's thread pool with
    /// [`Dataset::get`], then stacks them (default off: one [`Dataset::get_batch`] call).
    /// The batches are the same either way.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::data::{DataLoader, FnDataset, Sample};
    /// // Samples that take a while to make (here: a sum), read 8 at a time in parallel.
    /// let data = FnDataset::new(32, |i| {
    ///     let x: f32 = (0..1000).map(|k| ((i * k) % 7) as f32).sum();
    ///     Sample::new(Tensor::from_slice(&[x]), Tensor::scalar(i as f32))
    /// });
    /// let serial = DataLoader::new(data, 8).shuffle(true);
    /// let parallel = serial.clone().parallel(true);
    /// let targets = |l: &DataLoader| l.epoch(0).flat_map(|b| b.target.to_vec()).collect::<Vec<f32>>();
    /// assert_eq!(targets(&serial), targets(&parallel));
    /// ```
    pub fn parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// The dataset.
    pub fn dataset(&self) -> &dyn Dataset<E> {
        &*self.dataset
    }

    /// Samples per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The number of samples in the dataset.
    pub fn num_samples(&self) -> usize {
        self.dataset.len()
    }

    /// Batches per epoch (of this process's share, when [sharded](Self::shard)).
    pub fn len(&self) -> usize {
        self.batches_of(self.sampler().map_or(self.dataset.len(), |s| s.num_samples()))
    }

    /// How many batches `n` samples make.
    fn batches_of(&self, n: usize) -> usize {
        if self.drop_last { n / self.batch_size } else { n.div_ceil(self.batch_size) }
    }

    /// Whether an epoch has no batch (an empty dataset, or fewer samples than a batch with
    /// [`drop_last`](Self::drop_last)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The order in which epoch `epoch` visits the samples (all of them, the dropped tail
    /// included; this process's share when [sharded](Self::shard)).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::data::{DataLoader, TensorDataset, permutation};
    /// let data = TensorDataset::new(&Tensor::<f32>::zeros(&[6, 1]), &Tensor::zeros(&[6]));
    /// let loader = DataLoader::new(data, 4);
    /// assert_eq!(loader.order(3), [0, 1, 2, 3, 4, 5]); // no shuffling
    /// let loader = loader.shuffle(true).seed(10);
    /// assert_eq!(loader.order(3), permutation(6, 13)); // seed + epoch
    /// ```
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        match self.sampler() {
            Some(sampler) => sampler.indices(epoch),
            None => self.whole_order(epoch),
        }
    }

    /// The order of all the samples in epoch `epoch`, the shard ignored.
    fn whole_order(&self, epoch: usize) -> Vec<usize> {
        let n = self.dataset.len();
        if self.shuffle { permutation(n, self.seed.wrapping_add(epoch as u64)) } else { (0..n).collect() }
    }

    /// The batches of epoch `epoch` (counting from 0), in order.
    pub fn epoch(&self, epoch: usize) -> EpochBatches<E> {
        self.batches_from(epoch, 0)
    }

    /// Every `size`-th batch of epoch 0 from batch `rank` on (the loader's shard ignored): one
    /// process's share of an evaluation, each sample on exactly one process.
    pub(crate) fn strided_batches(&self, rank: usize, size: usize) -> EpochBatches<E> {
        let count = self.batches_of(self.dataset.len());
        let order = self.whole_order(0);
        let chunks =
            order.chunks(self.batch_size).take(count).skip(rank).step_by(size).map(<[usize]>::to_vec).collect();
        EpochBatches::inline(Arc::clone(&self.dataset), chunks, self.parallel)
    }

    /// The batches of epoch `epoch` from batch `first` on: the rest of an interrupted epoch.
    pub(crate) fn batches_from(&self, epoch: usize, first: usize) -> EpochBatches<E> {
        let order = self.order(epoch);
        let count = self.len().saturating_sub(first);
        let (bs, parallel) = (self.batch_size, self.parallel);
        let chunks: Vec<Vec<usize>> = order.chunks(bs).skip(first).take(count).map(<[usize]>::to_vec).collect();
        if self.prefetch > 0 && count > 0 {
            let dataset = Arc::clone(&self.dataset);
            let (tx, rx) = sync_channel(self.prefetch - 1);
            let spawned = std::thread::Builder::new().name("tensorgrad-loader".into()).spawn(move || {
                for idx in &chunks {
                    if tx.send(load(&*dataset, idx, parallel)).is_err() {
                        return; // the consumer stopped early
                    }
                }
            });
            if let Ok(handle) = spawned {
                return EpochBatches {
                    source: Source::Prefetch { rx: Some(rx), handle: Some(handle) },
                    remaining: count,
                };
            }
            // No thread to be had: load on the caller's thread instead.
            let chunks = self.order(epoch).chunks(bs).skip(first).take(count).map(<[usize]>::to_vec).collect();
            return EpochBatches::inline(Arc::clone(&self.dataset), chunks, parallel);
        }
        EpochBatches::inline(Arc::clone(&self.dataset), chunks, parallel)
    }
}

/// The samples `idx` of `dataset` as a batch, without recording a graph.
#[track_caller]
fn load<E: Element>(dataset: &dyn Dataset<E>, idx: &[usize], parallel: bool) -> Batch<E> {
    no_grad(|| {
        if parallel && idx.len() > 1 {
            let samples: Vec<Sample<E>> = idx.par_iter().map(|&i| no_grad(|| dataset.get(i))).collect();
            collate(&samples, Some(idx))
        } else {
            dataset.get_batch(idx)
        }
    })
}

enum Source<E: Element> {
    Inline { dataset: Arc<dyn Dataset<E>>, chunks: std::vec::IntoIter<Vec<usize>>, parallel: bool },
    Prefetch { rx: Option<Receiver<Batch<E>>>, handle: Option<JoinHandle<()>> },
}

/// The batches of one epoch of a [`DataLoader`] ([`DataLoader::epoch`]).
///
/// An iterator that knows how many batches are left. Dropping it early (a `break`) stops the
/// loading thread of a prefetching loader.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::data::{DataLoader, TensorDataset};
///
/// let (x, y) = (Tensor::<f32>::zeros(&[10, 3]), Tensor::<f32>::zeros(&[10]));
/// let loader = DataLoader::new(TensorDataset::new(&x, &y), 4).prefetch(2);
/// let mut batches = loader.epoch(0);
/// assert_eq!(batches.len(), 3);
/// let first = batches.next().unwrap();
/// assert_eq!(first.inputs[0].shape(), &[4, 3]);
/// assert_eq!(batches.len(), 2);
/// drop(batches); // stops the loading thread
/// ```
pub struct EpochBatches<E: Element = f32> {
    source: Source<E>,
    remaining: usize,
}

impl<E: Element> EpochBatches<E> {
    fn inline(dataset: Arc<dyn Dataset<E>>, chunks: Vec<Vec<usize>>, parallel: bool) -> Self {
        let remaining = chunks.len();
        EpochBatches { source: Source::Inline { dataset, chunks: chunks.into_iter(), parallel }, remaining }
    }
}

impl<E: Element> fmt::Debug for EpochBatches<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefetching = matches!(self.source, Source::Prefetch { .. });
        f.debug_struct("EpochBatches").field("remaining", &self.remaining).field("prefetching", &prefetching).finish()
    }
}

impl<E: Element> Iterator for EpochBatches<E> {
    type Item = Batch<E>;

    fn next(&mut self) -> Option<Batch<E>> {
        if self.remaining == 0 {
            return None;
        }
        let batch = match &mut self.source {
            Source::Inline { dataset, chunks, parallel } => load(&**dataset, &chunks.next()?, *parallel),
            Source::Prefetch { rx, handle } => match rx.as_ref().map(Receiver::recv) {
                Some(Ok(batch)) => batch,
                _ => {
                    // The loading thread ended early: it panicked. Re-raise its panic here.
                    rx.take();
                    if let Some(Err(payload)) = handle.take().map(JoinHandle::join) {
                        std::panic::resume_unwind(payload);
                    }
                    self.remaining = 0;
                    return None;
                }
            },
        };
        self.remaining -= 1;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<E: Element> ExactSizeIterator for EpochBatches<E> {}

impl<E: Element> Drop for EpochBatches<E> {
    fn drop(&mut self) {
        if let Source::Prefetch { rx, handle } = &mut self.source {
            // Closing the channel stops the loading thread at its next batch.
            rx.take();
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}
