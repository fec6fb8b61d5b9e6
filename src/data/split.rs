//! Seeded shuffling, train/validation/test splits and mini-batches of row indices.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// `0, 1, …, n − 1` in an order shuffled by a generator seeded with `seed`.
///
/// The same `n` and `seed` always give the same order (with the same version of `rand`, whose
/// `StdRng` algorithm may change between major versions).
///
/// ```
/// let p = tensorgrad::data::permutation(5, 7);
/// assert_eq!(p, tensorgrad::data::permutation(5, 7));
/// let mut sorted = p.clone();
/// sorted.sort();
/// assert_eq!(sorted, [0, 1, 2, 3, 4]);
/// ```
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    order
}

/// `fraction · n` rounded up (as scikit-learn sizes a test set), ignoring the rounding error
/// of the product so that `0.7 · 10` gives 7, not 8.
fn share(n: usize, fraction: f64) -> usize {
    let x = fraction * n as f64;
    let nearest = x.round();
    let count = if (x - nearest).abs() <= 1e-9 * nearest.max(1.0) { nearest } else { x.ceil() };
    (count as usize).min(n)
}

#[track_caller]
fn check_fraction(what: &str, fraction: f64) {
    if !(0.0..=1.0).contains(&fraction) {
        panic!("{what}: the fraction must be in [0, 1], got {fraction}");
    }
}

/// Shuffles the row indices `0..n` with `seed` and splits them into `(train, test)`, with
/// `⌈test_fraction · n⌉` test rows as in scikit-learn's `train_test_split`.
///
/// Both parts are in shuffled order; together they hold every index exactly once. The same
/// arguments always give the same split.
///
/// # Panics
/// If `test_fraction` is not in `[0, 1]`.
///
/// ```
/// use tensorgrad::data::train_test_split;
/// let (train, test) = train_test_split(10, 0.2, 42);
/// assert_eq!((train.len(), test.len()), (8, 2));
/// assert_eq!(train_test_split(10, 0.2, 42), (train, test));
/// ```
#[track_caller]
pub fn train_test_split(n: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    check_fraction("train_test_split", test_fraction);
    let mut order = permutation(n, seed);
    let train = order.split_off(share(n, test_fraction));
    (train, order)
}

/// Row indices split three ways by [`train_val_test_split`].
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::data::train_val_test_split;
///
/// let x = Tensor::<f32>::arange(20).reshape(&[10, 2]);
/// let split = train_val_test_split(10, 0.2, 0.2, 7);
/// let x_train = x.index_select(0, &split.train); // rows of x, as `x[train]` in NumPy
/// assert_eq!(x_train.shape(), &[6, 2]);
/// let mut all = [split.train.clone(), split.validation.clone(), split.test.clone()].concat();
/// all.sort();
/// assert_eq!(all, (0..10).collect::<Vec<_>>()); // every row exactly once
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// The training rows.
    pub train: Vec<usize>,
    /// The validation rows.
    pub validation: Vec<usize>,
    /// The test rows.
    pub test: Vec<usize>,
}

/// Shuffles the row indices `0..n` with `seed` and splits them into train, validation and test
/// parts, with `⌈test_fraction · n⌉` test rows, then `⌈validation_fraction · n⌉` validation rows
/// (fewer if too few rows are left), and the rest for training.
///
/// The parts are in shuffled order and together hold every index exactly once. The same
/// arguments always give the same split, and the test part is the one
/// [`train_test_split`]`(n, test_fraction, seed)` gives.
///
/// # Panics
/// If a fraction is not in `[0, 1]` or the two add up to more than 1.
///
/// ```
/// use tensorgrad::data::train_val_test_split;
/// let split = train_val_test_split(100, 0.1, 0.2, 0);
/// assert_eq!((split.train.len(), split.validation.len(), split.test.len()), (70, 10, 20));
/// ```
#[track_caller]
pub fn train_val_test_split(n: usize, validation_fraction: f64, test_fraction: f64, seed: u64) -> Split {
    check_fraction("train_val_test_split", validation_fraction);
    check_fraction("train_val_test_split", test_fraction);
    if validation_fraction + test_fraction > 1.0 + 1e-12 {
        panic!(
            "train_val_test_split: validation ({validation_fraction}) and test ({test_fraction}) fractions add up to more than 1"
        );
    }
    let mut order = permutation(n, seed);
    let n_test = share(n, test_fraction);
    let n_val = share(n, validation_fraction).min(n - n_test);
    let mut rest = order.split_off(n_test);
    let train = rest.split_off(n_val);
    Split { train, validation: rest, test: order }
}

/// Mini-batches of row indices, from [`batches`] or [`batches_from`].
///
/// Every index appears in exactly one batch; all batches have `batch_size` indices except
/// perhaps the last, which holds the remainder (as in Keras's `fit`).
///
/// ```
/// use tensorgrad::data::batches;
/// let mut it = batches(10, 4, Some(0)); // shuffled with seed 0
/// assert_eq!(it.len(), 3); // an ExactSizeIterator
/// let sizes: Vec<usize> = it.by_ref().map(|b| b.len()).collect();
/// assert_eq!(sizes, [4, 4, 2]);
/// assert_eq!(it.next(), None);
/// ```
#[derive(Clone, Debug)]
pub struct Batches {
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl Iterator for Batches {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        let batch = self.order[self.next..end].to_vec();
        self.next = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.order.len() - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches {}

/// Mini-batches of the row indices `0..n`, in order or shuffled with a seed.
///
/// With `shuffle_seed = Some(seed)` the indices are shuffled first, reproducibly; pass a
/// different seed each epoch (e.g. `seed + epoch`) for a new order per epoch.
///
/// # Panics
/// If `batch_size` is 0.
///
/// ```
/// use tensorgrad::data::batches;
/// let all: Vec<Vec<usize>> = batches(5, 2, None).collect();
/// assert_eq!(all, [vec![0, 1], vec![2, 3], vec![4]]);
/// assert_eq!(batches(5, 2, Some(1)).len(), 3);
/// ```
#[track_caller]
pub fn batches(n: usize, batch_size: usize, shuffle_seed: Option<u64>) -> Batches {
    check_batch_size(batch_size);
    let order = match shuffle_seed {
        Some(seed) => permutation(n, seed),
        None => (0..n).collect(),
    };
    Batches { order, batch_size, next: 0 }
}

/// Mini-batches of the given row indices (e.g. the training part of a split), in the given
/// order or shuffled with a seed.
///
/// # Panics
/// If `batch_size` is 0.
///
/// ```
/// use tensorgrad::data::{batches_from, train_test_split};
/// let (train, _test) = train_test_split(10, 0.2, 0);
/// let n: usize = batches_from(&train, 3, Some(5)).map(|b| b.len()).sum();
/// assert_eq!(n, 8);
/// ```
#[track_caller]
pub fn batches_from(indices: &[usize], batch_size: usize, shuffle_seed: Option<u64>) -> Batches {
    check_batch_size(batch_size);
    let mut order = indices.to_vec();
    if let Some(seed) = shuffle_seed {
        order.shuffle(&mut StdRng::seed_from_u64(seed));
    }
    Batches { order, batch_size, next: 0 }
}

#[track_caller]
fn check_batch_size(batch_size: usize) {
    if batch_size == 0 {
        panic!("batches: batch_size must be at least 1, got 0");
    }
}
