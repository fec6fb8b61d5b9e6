//! `DistributedSampler`: which samples each process of a data-parallel run takes in an epoch.

use super::split::permutation;

/// The share of a data set that one of `num_replicas` processes trains on in each epoch, with the
/// semantics of PyTorch's `torch.utils.data.distributed.DistributedSampler`.
///
/// Every process computes the same order for an epoch — shuffled by a generator seeded with
/// `seed + epoch` (the [`DataLoader`](super::DataLoader)'s rule), or `0..len` — and takes every
/// `num_replicas`-th index of it starting at its `rank`. So the shards are disjoint, their union
/// is the data set, and each epoch shuffles anew, the same way on every process.
///
/// Every process must run the same number of steps, so the shards have equal lengths:
/// - `drop_last: false` (PyTorch's default) pads the order by repeating its first indices until
///   its length divides by `num_replicas`: up to `num_replicas − 1` samples are seen twice in an
///   epoch;
/// - `drop_last: true` drops the last `len mod num_replicas` indices of the order: as many
///   samples (different ones each epoch when shuffled) are not seen in that epoch.
///
/// ```
/// use tensorgrad::data::DistributedSampler;
/// // 10 samples on 3 processes, without shuffling: the order is padded to 12 with 0 and 1.
/// let shards: Vec<Vec<usize>> =
///     (0..3).map(|rank| DistributedSampler::new(10, 3, rank).shuffle(false).indices(0)).collect();
/// assert_eq!(shards, [vec![0, 3, 6, 9], vec![1, 4, 7, 0], vec![2, 5, 8, 1]]);
/// // Dropping the tail instead: 9 samples, 3 each.
/// let s = DistributedSampler::new(10, 3, 1).shuffle(false).drop_last(true);
/// assert_eq!(s.indices(0), [1, 4, 7]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DistributedSampler {
    len: usize,
    num_replicas: usize,
    rank: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
}

impl DistributedSampler {
    /// The shard of process `rank` of `num_replicas` over a data set of `len` samples; shuffled
    /// with seed 0 and padded, as PyTorch's defaults.
    ///
    /// # Panics
    /// If `num_replicas` is 0 or `rank` is not below it.
    #[track_caller]
    pub fn new(len: usize, num_replicas: usize, rank: usize) -> Self {
        if num_replicas == 0 || rank >= num_replicas {
            panic!("DistributedSampler: rank {rank} is not below num_replicas {num_replicas}");
        }
        DistributedSampler { len, num_replicas, rank, shuffle: true, seed: 0, drop_last: false }
    }

    /// Shuffle each epoch (true by default) or keep the data set's order.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The seed the epoch's shuffle adds the epoch to (0 by default). It must be the same on
    /// every process.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Drop the tail that does not divide among the processes (true) or pad with repeated
    /// samples (false, the default).
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// The number of samples each process takes per epoch (the same on every process).
    pub fn num_samples(&self) -> usize {
        if self.drop_last { self.len / self.num_replicas } else { self.len.div_ceil(self.num_replicas) }
    }

    /// The samples of the whole epoch across all processes: `num_samples · num_replicas`.
    pub fn total_size(&self) -> usize {
        self.num_samples() * self.num_replicas
    }

    /// This process's sample indices for epoch `epoch` (counting from 0), in the order to take
    /// them. An empty data set gives an empty shard.
    pub fn indices(&self, epoch: usize) -> Vec<usize> {
        if self.len == 0 {
            return Vec::new();
        }
        let order = if self.shuffle {
            permutation(self.len, self.seed.wrapping_add(epoch as u64))
        } else {
            (0..self.len).collect()
        };
        let total = self.total_size();
        // Padding repeats the order from its start (as often as needed: fewer samples than
        // processes repeat them several times).
        let padded = order.iter().copied().cycle().take(total);
        padded.skip(self.rank).step_by(self.num_replicas).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_epoch_once_and_agree_on_the_shuffle() {
        for (len, replicas) in [(10, 3), (12, 4), (7, 2), (2, 5), (100, 7)] {
            for drop_last in [false, true] {
                for epoch in 0..3 {
                    let shards: Vec<Vec<usize>> = (0..replicas)
                        .map(|r| DistributedSampler::new(len, replicas, r).seed(9).drop_last(drop_last).indices(epoch))
                        .collect();
                    let n = shards[0].len();
                    assert!(shards.iter().all(|s| s.len() == n), "equal lengths");
                    let mut all: Vec<usize> = shards.concat();
                    all.sort();
                    let mut distinct = all.clone();
                    distinct.dedup();
                    if drop_last {
                        assert_eq!(all.len(), len - len % replicas);
                        assert_eq!(distinct.len(), all.len(), "no sample twice");
                    } else {
                        assert_eq!(distinct.len(), len, "every sample seen");
                        assert_eq!(all.len(), len.div_ceil(replicas) * replicas);
                    }
                    // Interleaving the shards rebuilds the epoch's order on every process.
                    let order = permutation(len, 9 + epoch as u64);
                    for k in 0..n * replicas {
                        let want = order[k % len];
                        if !drop_last || k < len {
                            assert_eq!(shards[k % replicas][k / replicas], want);
                        }
                    }
                }
            }
        }
        let a = DistributedSampler::new(50, 2, 0).indices(0);
        let b = DistributedSampler::new(50, 2, 0).indices(1);
        assert_ne!(a, b, "each epoch shuffles anew");
    }

    #[test]
    #[should_panic(expected = "DistributedSampler: rank 2 is not below num_replicas 2")]
    fn a_rank_out_of_range_is_refused() {
        let _ = DistributedSampler::new(10, 2, 2);
    }
}
