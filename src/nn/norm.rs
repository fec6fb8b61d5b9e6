//! `LayerNorm`, `RmsNorm` and `BatchNorm1d/2d/3d`: normalisation layers with PyTorch's parameters,
//! buffers and defaults.

use super::module::{Buffer, Module, Param, join};
use crate::{BatchNormOptions, Element, Tensor};

/// Layer normalisation over the trailing dims `normalized_shape` (PyTorch's `nn.LayerNorm`):
/// `eps` 1e-5, and a learned `weight` (ones) and `bias` (zeros) of that shape unless built
/// without them. Parameter names are PyTorch's (`weight`, `bias`), so state dicts map 1:1.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{LayerNorm, Module};
/// let ln: LayerNorm = LayerNorm::new(&[4]);
/// let y = ln.forward(&Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 4]));
/// assert!(y.sum().item().abs() < 1e-5);
/// assert_eq!(ln.named_parameters().iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["weight", "bias"]);
/// ```
#[derive(Clone, Debug)]
pub struct LayerNorm<E: Element = f32> {
    shape: Vec<usize>,
    eps: f64,
    weight: Option<Param<E>>,
    bias: Option<Param<E>>,
}

impl<E: Element> LayerNorm<E> {
    /// A layer with PyTorch's defaults: `eps = 1e-5`, affine weight and bias.
    pub fn new(normalized_shape: &[usize]) -> Self {
        Self::with_options(normalized_shape, 1e-5, true, true)
    }

    /// A layer with the given `eps`, and a learned weight and bias only where asked
    /// (`elementwise_affine`, and `bias` as in PyTorch ≥ 2.1).
    ///
    /// # Panics
    /// If `normalized_shape` is empty or `eps` is negative or not finite.
    #[track_caller]
    pub fn with_options(normalized_shape: &[usize], eps: f64, elementwise_affine: bool, bias: bool) -> Self {
        if normalized_shape.is_empty() {
            panic!("LayerNorm: normalized_shape must have at least one dim");
        }
        if !(eps >= 0.0 && eps.is_finite()) {
            panic!("LayerNorm: eps {eps} must be finite and non-negative");
        }
        LayerNorm {
            shape: normalized_shape.to_vec(),
            eps,
            weight: elementwise_affine.then(|| Param::new(Tensor::ones(normalized_shape))),
            bias: (elementwise_affine && bias).then(|| Param::new(Tensor::zeros(normalized_shape))),
        }
    }

    /// The trailing dims normalised over.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.shape
    }
}

impl<E: Element> Module<E> for LayerNorm<E> {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let w = self.weight.as_ref().map(Param::tensor);
        let b = self.bias.as_ref().map(Param::tensor);
        x.layer_norm(&self.shape, w.as_ref(), b.as_ref(), self.eps)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        if let Some(w) = &self.weight {
            f(join(prefix, "weight"), w);
        }
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }

    fn describe(&self) -> String {
        format!("LayerNorm({:?}, eps={}, elementwise_affine={})", self.shape, self.eps, self.weight.is_some())
    }
}

/// RMS normalisation over the trailing dims `normalized_shape` (PyTorch's `nn.RMSNorm`):
/// `x / √(mean(x²) + eps) · weight`, with a learned `weight` (ones) unless built without it, and
/// `eps: None` meaning the machine epsilon of the element type, as in PyTorch.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Module, RmsNorm};
/// let norm: RmsNorm = RmsNorm::new(&[2]);
/// let y = norm.forward(&Tensor::from_vec(vec![3.0, 4.0], &[1, 2]));
/// assert!((y.powf(2.0).mean().item() - 1.0).abs() < 1e-5); // unit root mean square
/// ```
#[derive(Clone, Debug)]
pub struct RmsNorm<E: Element = f32> {
    shape: Vec<usize>,
    eps: Option<f64>,
    weight: Option<Param<E>>,
}

impl<E: Element> RmsNorm<E> {
    /// A layer with PyTorch's defaults: `eps = None` (machine epsilon), a learned weight.
    pub fn new(normalized_shape: &[usize]) -> Self {
        Self::with_options(normalized_shape, None, true)
    }

    /// A layer with the given `eps` and, if `elementwise_affine`, a learned weight.
    ///
    /// # Panics
    /// If `normalized_shape` is empty or `eps` is negative or not finite.
    #[track_caller]
    pub fn with_options(normalized_shape: &[usize], eps: Option<f64>, elementwise_affine: bool) -> Self {
        if normalized_shape.is_empty() {
            panic!("RmsNorm: normalized_shape must have at least one dim");
        }
        if let Some(e) = eps
            && !(e >= 0.0 && e.is_finite())
        {
            panic!("RmsNorm: eps {e} must be finite and non-negative");
        }
        RmsNorm {
            shape: normalized_shape.to_vec(),
            eps,
            weight: elementwise_affine.then(|| Param::new(Tensor::ones(normalized_shape))),
        }
    }
}

impl<E: Element> Module<E> for RmsNorm<E> {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let w = self.weight.as_ref().map(Param::tensor);
        x.rms_norm(&self.shape, w.as_ref(), self.eps)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        if let Some(w) = &self.weight {
            f(join(prefix, "weight"), w);
        }
    }

    fn describe(&self) -> String {
        match self.eps {
            Some(e) => format!("RMSNorm({:?}, eps={e}, elementwise_affine={})", self.shape, self.weight.is_some()),
            None => format!("RMSNorm({:?}, eps=None, elementwise_affine={})", self.shape, self.weight.is_some()),
        }
    }
}

/// The options of a batch-norm layer, with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance under the square root (1e-5).
    pub eps: f64,
    /// The weight of each batch's statistics in the running ones (0.1); `None` keeps a
    /// cumulative average instead (weight `1/num_batches_tracked`), as PyTorch's `momentum=None`.
    pub momentum: Option<f64>,
    /// A learned per-channel `weight` (ones) and `bias` (zeros) (true).
    pub affine: bool,
    /// Keep running statistics for evaluation mode (true); without them the layer normalises
    /// with each batch's statistics in both modes.
    pub track_running_stats: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig { eps: 1e-5, momentum: Some(0.1), affine: true, track_running_stats: true }
    }
}

/// Batch normalisation over the channels of `[N, C, …]` inputs (PyTorch's `nn.BatchNorm1d`,
/// `nn.BatchNorm2d`, `nn.BatchNorm3d`: [`BatchNorm1d`], [`BatchNorm2d`], [`BatchNorm3d`], which
/// differ only in the input rank they accept, `D` spatial dims).
///
/// In training mode each channel is normalised with the batch's mean and variance and the
/// running statistics are updated (see [`Tensor::batch_norm`]); in evaluation mode
/// ([`Module::eval`]) the running statistics are used. Parameters `weight`, `bias` and buffers
/// `running_mean`, `running_var`, `num_batches_tracked` ([`Buffer`]) have PyTorch's names, so a
/// PyTorch `state_dict` loads 1:1 and weight files carry the statistics.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{BatchNorm2d, Module};
///
/// let mut bn: BatchNorm2d = BatchNorm2d::new(3);
/// let x = Tensor::randn(&[8, 3, 4, 4], 0.0, 1.0, 0);
/// let y = bn.forward(&x); // training mode: batch statistics
/// assert!(y.mean().item().abs() < 1e-5);
/// assert_eq!(bn.named_buffers()[2].1.item(), 1.0); // num_batches_tracked
/// bn.eval();
/// let z = bn.forward(&x); // running statistics: 0.9·(0, 1) + 0.1·(batch mean, unbiased var)
/// assert_eq!(z.shape(), &[8, 3, 4, 4]);
/// ```
#[derive(Clone, Debug)]
pub struct BatchNorm<E: Element, const D: usize> {
    channels: usize,
    config: BatchNormConfig,
    weight: Option<Param<E>>,
    bias: Option<Param<E>>,
    running_mean: Option<Buffer<E>>,
    running_var: Option<Buffer<E>>,
    num_batches_tracked: Option<Buffer<E>>,
    training: bool,
}

/// Batch norm over `[N, C]` or `[N, C, L]` (PyTorch's `nn.BatchNorm1d`).
pub type BatchNorm1d<E = f32> = BatchNorm<E, 1>;
/// Batch norm over `[N, C, H, W]` (PyTorch's `nn.BatchNorm2d`).
pub type BatchNorm2d<E = f32> = BatchNorm<E, 2>;
/// Batch norm over `[N, C, D, H, W]` (PyTorch's `nn.BatchNorm3d`).
pub type BatchNorm3d<E = f32> = BatchNorm<E, 3>;

impl<E: Element, const D: usize> BatchNorm<E, D> {
    /// A layer over `channels` channels with PyTorch's defaults, in training mode.
    pub fn new(channels: usize) -> Self {
        Self::with_config(channels, BatchNormConfig::default())
    }

    /// A layer with the given options.
    ///
    /// # Panics
    /// If `channels` is 0, or `eps` or `momentum` is negative or not finite.
    #[track_caller]
    pub fn with_config(channels: usize, config: BatchNormConfig) -> Self {
        let name = Self::name();
        if channels == 0 {
            panic!("{name}: num_features must be at least 1");
        }
        if !(config.eps >= 0.0 && config.eps.is_finite()) {
            panic!("{name}: eps {} must be finite and non-negative", config.eps);
        }
        if let Some(m) = config.momentum
            && !(m >= 0.0 && m.is_finite())
        {
            panic!("{name}: momentum {m} must be finite and non-negative");
        }
        let track = config.track_running_stats;
        BatchNorm {
            channels,
            config,
            weight: config.affine.then(|| Param::new(Tensor::ones(&[channels]))),
            bias: config.affine.then(|| Param::new(Tensor::zeros(&[channels]))),
            running_mean: track.then(|| Buffer::new(Tensor::zeros(&[channels]))),
            running_var: track.then(|| Buffer::new(Tensor::ones(&[channels]))),
            num_batches_tracked: track.then(Buffer::counter),
            training: true,
        }
    }

    fn name() -> &'static str {
        match D {
            1 => "BatchNorm1d",
            2 => "BatchNorm2d",
            _ => "BatchNorm3d",
        }
    }

    /// The number of channels (`num_features`).
    pub fn num_features(&self) -> usize {
        self.channels
    }

    /// The learned scale, if the layer is affine.
    pub fn weight(&self) -> Option<&Param<E>> {
        self.weight.as_ref()
    }

    /// The learned shift, if the layer is affine.
    pub fn bias(&self) -> Option<&Param<E>> {
        self.bias.as_ref()
    }

    /// The running mean, if the layer tracks statistics.
    pub fn running_mean(&self) -> Option<&Buffer<E>> {
        self.running_mean.as_ref()
    }

    /// The running variance, if the layer tracks statistics.
    pub fn running_var(&self) -> Option<&Buffer<E>> {
        self.running_var.as_ref()
    }
}

impl<E: Element, const D: usize> Module<E> for BatchNorm<E, D> {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let name = Self::name();
        let ok = if D == 1 { matches!(x.ndim(), 2 | 3) } else { x.ndim() == D + 2 };
        if !ok {
            let want = match D {
                1 => "[N, C] or [N, C, L]",
                2 => "[N, C, H, W]",
                _ => "[N, C, D, H, W]",
            };
            panic!("{name}: expected an input {want}, got shape {:?}", x.shape());
        }
        if x.shape()[1] != self.channels {
            panic!("{name}: the input {:?} has {} channels, the layer {}", x.shape(), x.shape()[1], self.channels);
        }
        let mut momentum = self.config.momentum.unwrap_or(0.0);
        if self.training
            && let Some(count) = &self.num_batches_tracked
        {
            let n = count.value().item() + E::one();
            count.set(Tensor::scalar(n));
            if self.config.momentum.is_none() {
                momentum = 1.0 / n.to_f64().unwrap_or(1.0);
            }
        }
        let w = self.weight.as_ref().map(Param::tensor);
        let b = self.bias.as_ref().map(Param::tensor);
        let rm = self.running_mean.as_ref().map(Buffer::value);
        let rv = self.running_var.as_ref().map(Buffer::value);
        x.batch_norm(BatchNormOptions {
            running_mean: rm.as_ref(),
            running_var: rv.as_ref(),
            weight: w.as_ref(),
            bias: b.as_ref(),
            training: self.training || rm.is_none(),
            momentum,
            eps: self.config.eps,
        })
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        if let Some(w) = &self.weight {
            f(join(prefix, "weight"), w);
        }
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer<E>)) {
        for (name, b) in [
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
            ("num_batches_tracked", &self.num_batches_tracked),
        ] {
            if let Some(b) = b {
                f(join(prefix, name), b);
            }
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn describe(&self) -> String {
        let momentum = self.config.momentum.map_or("None".to_string(), |m| m.to_string());
        format!(
            "{}({}, eps={}, momentum={momentum}, affine={}, track_running_stats={})",
            Self::name(),
            self.channels,
            self.config.eps,
            self.config.affine,
            self.config.track_running_stats
        )
    }
}
