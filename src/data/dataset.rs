//! [`Dataset`]: samples read one at a time by index, in memory ([`TensorDataset`], a
//! `Vec<Sample>`) or produced on demand ([`FnDataset`]), and [`Batch`]es stacked from them.

use crate::{Element, Tensor, no_grad};

/// One sample: one or more input tensors and a target tensor, without the batch dim.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::data::Sample;
///
/// let s = Sample::new(Tensor::from_slice(&[0.5f32, 1.5]), Tensor::scalar(1.0));
/// assert_eq!((s.inputs.len(), s.inputs[0].shape(), s.target.shape()), (1, &[2][..], &[][..]));
/// ```
#[derive(Clone, Debug)]
pub struct Sample<E: Element = f32> {
    /// The model's inputs, in the order its [`forward_many`](crate::nn::Module::forward_many)
    /// takes them (one for most models).
    pub inputs: Vec<Tensor<E>>,
    /// What the loss compares the output with.
    pub target: Tensor<E>,
}

impl<E: Element> Sample<E> {
    /// A sample with one input.
    pub fn new(input: Tensor<E>, target: Tensor<E>) -> Self {
        Sample { inputs: vec![input], target }
    }

    /// A sample with several inputs, for a model with several inputs.
    ///
    /// # Panics
    /// If `inputs` is empty.
    #[track_caller]
    pub fn with_inputs(inputs: Vec<Tensor<E>>, target: Tensor<E>) -> Self {
        if inputs.is_empty() {
            panic!("Sample::with_inputs: a sample needs at least one input");
        }
        Sample { inputs, target }
    }
}

/// A mini-batch: samples stacked along a new dim 0 (each input and the target).
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::data::{DataLoader, TensorDataset};
///
/// let x = Tensor::<f32>::arange(12).reshape(&[6, 2]);
/// let y = Tensor::from_slice(&[0.0f32, 1.0, 0.0, 1.0, 0.0, 1.0]);
/// let loader = DataLoader::new(TensorDataset::new(&x, &y), 4);
/// let batches: Vec<_> = loader.epoch(0).collect();
/// assert_eq!(batches[0].inputs[0].shape(), &[4, 2]);
/// assert_eq!(batches[0].target.shape(), &[4]);
/// assert_eq!((batches[0].len(), batches[1].len()), (4, 2)); // the last batch is partial
/// ```
#[derive(Clone, Debug)]
pub struct Batch<E: Element = f32> {
    /// The stacked inputs, each `[batch, …]`.
    pub inputs: Vec<Tensor<E>>,
    /// The stacked targets, `[batch, …]`.
    pub target: Tensor<E>,
}

impl<E: Element> Batch<E> {
    /// The number of samples in the batch.
    pub fn len(&self) -> usize {
        self.target.shape().first().copied().unwrap_or(0)
    }

    /// Whether the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stacks samples into a batch: input `k` of the batch is input `k` of every sample stacked
    /// along a new dim 0, and likewise the target (scalar targets become a `[batch]` tensor).
    /// No graph is recorded.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::data::{Batch, Sample};
    ///
    /// let a = Sample::new(Tensor::from_slice(&[1.0f32, 2.0]), Tensor::scalar(0.0));
    /// let b = Sample::new(Tensor::from_slice(&[3.0f32, 4.0]), Tensor::scalar(1.0));
    /// let batch = Batch::collate(&[a, b]);
    /// assert_eq!(batch.inputs[0].shape(), &[2, 2]);
    /// assert_eq!(batch.target.to_vec(), [0.0, 1.0]);
    /// ```
    ///
    /// # Panics
    /// If `samples` is empty, or the samples differ in their number of inputs or in the shape
    /// of an input or of the target (the message names the sample).
    #[track_caller]
    pub fn collate(samples: &[Sample<E>]) -> Self {
        collate(samples, None)
    }
}

/// [`Batch::collate`], naming each sample by its index in the dataset when `indices` is given.
#[track_caller]
pub(crate) fn collate<E: Element>(samples: &[Sample<E>], indices: Option<&[usize]>) -> Batch<E> {
    let Some(first) = samples.first() else {
        panic!("collate: needs at least one sample");
    };
    let name = |pos: usize| match indices {
        Some(ix) => format!("sample {} (dataset index {})", pos, ix[pos]),
        None => format!("sample {pos}"),
    };
    for (pos, s) in samples.iter().enumerate() {
        if s.inputs.len() != first.inputs.len() {
            panic!("collate: {} has {} inputs but {} has {}", name(pos), s.inputs.len(), name(0), first.inputs.len());
        }
        for (k, (a, b)) in s.inputs.iter().zip(&first.inputs).enumerate() {
            if a.shape() != b.shape() {
                panic!(
                    "collate: input {k} of {} has shape {:?} but that of {} has {:?}; samples stack only when their shapes agree (pad them first)",
                    name(pos),
                    a.shape(),
                    name(0),
                    b.shape()
                );
            }
        }
        if s.target.shape() != first.target.shape() {
            panic!(
                "collate: the target of {} has shape {:?} but that of {} has {:?}",
                name(pos),
                s.target.shape(),
                name(0),
                first.target.shape()
            );
        }
    }
    no_grad(|| {
        let stack = |pick: &dyn Fn(&Sample<E>) -> &Tensor<E>| {
            let parts: Vec<Tensor<E>> = samples.iter().map(|s| pick(s).clone()).collect();
            Tensor::stack(&parts, 0).detach()
        };
        Batch {
            inputs: (0..first.inputs.len()).map(|k| stack(&|s: &Sample<E>| &s.inputs[k])).collect(),
            target: stack(&|s: &Sample<E>| &s.target),
        }
    })
}

/// Samples that can be read one at a time by index, as PyTorch's map-style `Dataset`; a
/// [`DataLoader`](super::DataLoader) shuffles and batches them.
///
/// Implement [`len`](Self::len) and [`get`](Self::get). `get` may read from disk or compute the
/// sample, so the data need not fit in memory; it is called from a background thread when the
/// loader prefetches (hence `Send + Sync`). A dataset that can gather many samples at once
/// faster than one by one (tensors in memory) also overrides [`get_batch`](Self::get_batch).
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::data::{Dataset, Sample};
///
/// /// The squares: input `[i]`, target `[i²]`, never stored.
/// struct Squares(usize);
///
/// impl Dataset for Squares {
///     fn len(&self) -> usize {
///         self.0
///     }
///     fn get(&self, i: usize) -> Sample {
///         Sample::new(Tensor::from_slice(&[i as f32]), Tensor::from_slice(&[(i * i) as f32]))
///     }
/// }
///
/// let batch = Squares(10).get_batch(&[3, 4]);
/// assert_eq!(batch.inputs[0].to_vec(), [3.0, 4.0]);
/// assert_eq!(batch.target.shape(), &[2, 1]);
/// ```
pub trait Dataset<E: Element = f32>: Send + Sync {
    /// The number of samples.
    fn len(&self) -> usize;

    /// Sample `index`, for `index` in `0..len()`.
    fn get(&self, index: usize) -> Sample<E>;

    /// Whether the dataset has no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples `indices`, in that order, stacked into a batch. The default calls
    /// [`get`](Self::get) for each and stacks them ([`Batch::collate`]).
    #[track_caller]
    fn get_batch(&self, indices: &[usize]) -> Batch<E> {
        let samples: Vec<Sample<E>> = indices.iter().map(|&i| self.get(i)).collect();
        collate(&samples, Some(indices))
    }
}

/// `Dataset` for a shared or boxed dataset: every method forwards to the dataset.
macro_rules! forward_dataset {
    ($($ptr:ty),*) => {$(
        impl<E: Element, D: Dataset<E> + ?Sized> Dataset<E> for $ptr {
            fn len(&self) -> usize {
                (**self).len()
            }
            fn get(&self, index: usize) -> Sample<E> {
                (**self).get(index)
            }
            #[track_caller]
            fn get_batch(&self, indices: &[usize]) -> Batch<E> {
                (**self).get_batch(indices)
            }
        }
    )*};
}

forward_dataset!(std::sync::Arc<D>, Box<D>);

/// Samples collected in memory, e.g. from an iterator: `let data: Vec<Sample> = it.collect();`.
impl<E: Element> Dataset<E> for Vec<Sample<E>> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    #[track_caller]
    fn get(&self, index: usize) -> Sample<E> {
        match self.as_slice().get(index) {
            Some(s) => s.clone(),
            None => panic!("Dataset::get: index {index} is out of range for {} samples", self.as_slice().len()),
        }
    }
}

/// Tensors in memory whose rows (dim 0) are the samples, as PyTorch's `TensorDataset`: one or
/// more input tensors and a target tensor with the same number of rows.
///
/// A batch is one gather (`index_select`) per tensor, the same copy
/// [`Trainer::fit`](crate::train::Trainer::fit) makes, so training through a
/// [`DataLoader`](super::DataLoader) over a `TensorDataset` reproduces `fit(&x, &y, …)`.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::data::{Dataset, TensorDataset};
///
/// let x = Tensor::<f32>::arange(6).reshape(&[3, 2]);
/// let y = Tensor::from_slice(&[0.0f32, 1.0, 0.0]);
/// let data = TensorDataset::new(&x, &y);
/// assert_eq!(data.len(), 3);
/// assert_eq!(data.get(1).inputs[0].to_vec(), [2.0, 3.0]);
/// assert_eq!(data.get_batch(&[2, 0]).inputs[0].to_vec(), [4.0, 5.0, 0.0, 1.0]);
/// ```
#[derive(Clone, Debug)]
pub struct TensorDataset<E: Element = f32> {
    inputs: Vec<Tensor<E>>,
    target: Tensor<E>,
}

impl<E: Element> TensorDataset<E> {
    /// Rows of `x` as inputs and rows of `y` as targets.
    ///
    /// # Panics
    /// If either is a scalar or their numbers of rows differ.
    #[track_caller]
    pub fn new(x: &Tensor<E>, y: &Tensor<E>) -> Self {
        Self::with_inputs(std::slice::from_ref(x), y)
    }

    /// Rows of each of `inputs` as the inputs of a model with several inputs, rows of `target`
    /// as targets. Each batch's inputs go to the model's
    /// [`forward_many`](crate::nn::Module::forward_many) in this order.
    ///
    /// ```
    /// use tensorgrad::data::{DataLoader, TensorDataset};
    /// use tensorgrad::nn::{Linear, Module, Param, param_name};
    /// use tensorgrad::optim::{Adam, AdamConfig};
    /// use tensorgrad::train::{FitOptions, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// /// Two inputs, a branch each, outputs added.
    /// struct TwoBranches {
    ///     a: Linear,
    ///     b: Linear,
    /// }
    ///
    /// impl Module for TwoBranches {
    ///     fn forward(&self, _x: &Tensor) -> Tensor {
    ///         panic!("TwoBranches takes two inputs");
    ///     }
    ///     fn forward_many(&self, inputs: &[&Tensor]) -> Tensor {
    ///         self.a.forward(inputs[0]) + self.b.forward(inputs[1])
    ///     }
    ///     fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param)) {
    ///         self.a.visit_params(&param_name(prefix, "a"), f);
    ///         self.b.visit_params(&param_name(prefix, "b"), f);
    ///     }
    /// }
    ///
    /// // y = sum of the first input's features − the second input
    /// let x1 = Tensor::<f32>::randn(&[64, 3], 0.0, 1.0, 0);
    /// let x2 = Tensor::<f32>::randn(&[64, 1], 0.0, 1.0, 1);
    /// let y = x1.sum_dim(1, true) - &x2;
    /// let data = TensorDataset::with_inputs(&[x1, x2], &y);
    /// let loader = DataLoader::new(data, 16).shuffle(true);
    ///
    /// let model = TwoBranches { a: Linear::new(3, 1, 2), b: Linear::new(1, 1, 3) };
    /// let opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.05, ..Default::default() });
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse);
    /// let history = trainer.fit_loader(&loader, &FitOptions { epochs: 60, verbose: false, ..Default::default() })?;
    /// assert!(history.last("loss").unwrap() < 1e-3);
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `inputs` is empty, a tensor is a scalar, or the numbers of rows differ.
    #[track_caller]
    pub fn with_inputs(inputs: &[Tensor<E>], target: &Tensor<E>) -> Self {
        if inputs.is_empty() {
            panic!("TensorDataset: needs at least one input tensor");
        }
        if target.ndim() == 0 {
            panic!("TensorDataset: the target needs a sample dim, got a scalar");
        }
        let n = target.shape()[0];
        for (k, x) in inputs.iter().enumerate() {
            if x.ndim() == 0 || x.shape()[0] != n {
                panic!(
                    "TensorDataset: input {k} of shape {:?} does not have the target's {n} rows (target shape {:?})",
                    x.shape(),
                    target.shape()
                );
            }
        }
        TensorDataset { inputs: inputs.iter().map(Tensor::detach).collect(), target: target.detach() }
    }

    /// The input tensors.
    pub fn inputs(&self) -> &[Tensor<E>] {
        &self.inputs
    }

    /// The target tensor.
    pub fn target(&self) -> &Tensor<E> {
        &self.target
    }
}

impl<E: Element> Dataset<E> for TensorDataset<E> {
    fn len(&self) -> usize {
        self.target.shape()[0]
    }

    #[track_caller]
    fn get(&self, index: usize) -> Sample<E> {
        let n = self.len();
        if index >= n {
            panic!("TensorDataset::get: index {index} is out of range for {n} samples");
        }
        let row = |t: &Tensor<E>| t.narrow(0, index, 1).squeeze(0);
        Sample { inputs: self.inputs.iter().map(row).collect(), target: row(&self.target) }
    }

    #[track_caller]
    fn get_batch(&self, indices: &[usize]) -> Batch<E> {
        let rows = |t: &Tensor<E>| t.index_select(0, indices).detach();
        Batch { inputs: self.inputs.iter().map(rows).collect(), target: rows(&self.target) }
    }
}

/// A dataset whose sample `i` is `f(i)`: samples computed or read on demand (from files, a
/// database, a generator), so the data need not fit in memory.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::data::{Dataset, FnDataset, Sample};
///
/// // 1000 noisy points of y = 2x, made when asked for.
/// let data = FnDataset::new(1000, |i| {
///     let x = i as f32 / 1000.0;
///     Sample::new(Tensor::from_slice(&[x]), Tensor::from_slice(&[2.0 * x]))
/// });
/// assert_eq!(data.len(), 1000);
/// assert_eq!(data.get(500).target.to_vec(), [1.0]);
/// ```
#[derive(Clone)]
pub struct FnDataset<F> {
    len: usize,
    f: F,
}

impl<F> FnDataset<F> {
    /// `len` samples, sample `i` being `f(i)`.
    pub fn new(len: usize, f: F) -> Self {
        FnDataset { len, f }
    }
}

impl<F> std::fmt::Debug for FnDataset<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnDataset").field("len", &self.len).finish_non_exhaustive()
    }
}

impl<E: Element, F: Fn(usize) -> Sample<E> + Send + Sync> Dataset<E> for FnDataset<F> {
    fn len(&self) -> usize {
        self.len
    }

    #[track_caller]
    fn get(&self, index: usize) -> Sample<E> {
        if index >= self.len {
            panic!("FnDataset::get: index {index} is out of range for {} samples", self.len);
        }
        (self.f)(index)
    }
}
