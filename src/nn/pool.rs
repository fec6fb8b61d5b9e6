//! Pooling layers: `MaxPool1d`/`MaxPool2d`, `AvgPool1d`/`AvgPool2d`,
//! `AdaptiveAvgPool1d`/`AdaptiveAvgPool2d`, with PyTorch's options, defaults and `repr`.
//! Each is its op ([`Tensor::max_pool2d`] and the others) with the options kept in the module;
//! none has parameters.

use super::module::{Module, Param};
use crate::{AvgPool1dConfig, AvgPool2dConfig, Element, MaxPool1dConfig, MaxPool2dConfig, Tensor};

/// PyTorch's way of printing a pair: one number when both are equal, else a tuple.
fn pair(p: [usize; 2]) -> String {
    if p[0] == p[1] { p[0].to_string() } else { format!("({}, {})", p[0], p[1]) }
}

/// Python's `True`/`False`.
fn py(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// 1-D max pooling over `[N, C, L]` (or `[C, L]`) inputs, PyTorch's `nn.MaxPool1d`; see
/// [`Tensor::max_pool1d`].
///
/// ```
/// use tensorgrad::nn::{MaxPool1d, Module};
/// use tensorgrad::Tensor;
/// let pool = MaxPool1d::new(2);
/// let y: Tensor = pool.forward(&Tensor::zeros(&[4, 3, 10]));
/// assert_eq!(y.shape(), &[4, 3, 5]);
/// assert_eq!(Module::<f32>::describe(&pool), "MaxPool1d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MaxPool1d {
    /// The pooling's options.
    pub config: MaxPool1dConfig,
}

impl MaxPool1d {
    /// Windows of `kernel_size`, stride `kernel_size`, no padding.
    pub fn new(kernel_size: usize) -> Self {
        MaxPool1d { config: MaxPool1dConfig::new(kernel_size) }
    }

    /// A layer with the given options.
    pub fn with_config(config: MaxPool1dConfig) -> Self {
        MaxPool1d { config }
    }
}

impl<E: Element> Module<E> for MaxPool1d {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        x.max_pool1d(self.config)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "MaxPool1d(kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={})",
            c.kernel_size,
            c.stride.unwrap_or(c.kernel_size),
            c.padding,
            c.dilation,
            py(c.ceil_mode)
        )
    }
}

/// 2-D max pooling over `[N, C, H, W]` (or `[C, H, W]`) inputs, PyTorch's `nn.MaxPool2d`; see
/// [`Tensor::max_pool2d`].
///
/// ```
/// use tensorgrad::nn::{MaxPool2d, Module};
/// use tensorgrad::{MaxPool2dConfig, Tensor};
/// let pool = MaxPool2d::with_config(MaxPool2dConfig::new(3).stride(2).padding(1));
/// let y: Tensor = pool.forward(&Tensor::zeros(&[2, 8, 112, 112]));
/// assert_eq!(y.shape(), &[2, 8, 56, 56]);
/// assert_eq!(Module::<f32>::describe(&pool), "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MaxPool2d {
    /// The pooling's options.
    pub config: MaxPool2dConfig,
}

impl MaxPool2d {
    /// Square windows of `kernel_size`, stride `kernel_size`, no padding.
    pub fn new(kernel_size: usize) -> Self {
        MaxPool2d { config: MaxPool2dConfig::new(kernel_size) }
    }

    /// A layer with the given options.
    pub fn with_config(config: MaxPool2dConfig) -> Self {
        MaxPool2d { config }
    }
}

impl<E: Element> Module<E> for MaxPool2d {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        x.max_pool2d(self.config)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "MaxPool2d(kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={})",
            pair(c.kernel_size),
            pair(c.stride.unwrap_or(c.kernel_size)),
            pair(c.padding),
            pair(c.dilation),
            py(c.ceil_mode)
        )
    }
}

/// 1-D average pooling over `[N, C, L]` (or `[C, L]`) inputs, PyTorch's `nn.AvgPool1d`; see
/// [`Tensor::avg_pool1d`].
///
/// ```
/// use tensorgrad::nn::{AvgPool1d, Module};
/// use tensorgrad::Tensor;
/// let pool = AvgPool1d::new(3);
/// let y: Tensor = pool.forward(&Tensor::ones(&[2, 4, 9]));
/// assert_eq!(y.shape(), &[2, 4, 3]);
/// assert_eq!(Module::<f32>::describe(&pool), "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AvgPool1d {
    /// The pooling's options.
    pub config: AvgPool1dConfig,
}

impl AvgPool1d {
    /// Windows of `kernel_size`, stride `kernel_size`, no padding.
    pub fn new(kernel_size: usize) -> Self {
        AvgPool1d { config: AvgPool1dConfig::new(kernel_size) }
    }

    /// A layer with the given options.
    pub fn with_config(config: AvgPool1dConfig) -> Self {
        AvgPool1d { config }
    }
}

impl<E: Element> Module<E> for AvgPool1d {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        x.avg_pool1d(self.config)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "AvgPool1d(kernel_size=({},), stride=({},), padding=({},))",
            c.kernel_size,
            c.stride.unwrap_or(c.kernel_size),
            c.padding
        )
    }
}

/// 2-D average pooling over `[N, C, H, W]` (or `[C, H, W]`) inputs, PyTorch's `nn.AvgPool2d`;
/// see [`Tensor::avg_pool2d`].
///
/// ```
/// use tensorgrad::nn::{AvgPool2d, Module};
/// use tensorgrad::Tensor;
/// let pool = AvgPool2d::new(2);
/// let y: Tensor = pool.forward(&Tensor::ones(&[1, 6, 24, 24]));
/// assert_eq!(y.shape(), &[1, 6, 12, 12]);
/// assert_eq!(Module::<f32>::describe(&pool), "AvgPool2d(kernel_size=2, stride=2, padding=0)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AvgPool2d {
    /// The pooling's options.
    pub config: AvgPool2dConfig,
}

impl AvgPool2d {
    /// Square windows of `kernel_size`, stride `kernel_size`, no padding.
    pub fn new(kernel_size: usize) -> Self {
        AvgPool2d { config: AvgPool2dConfig::new(kernel_size) }
    }

    /// A layer with the given options.
    pub fn with_config(config: AvgPool2dConfig) -> Self {
        AvgPool2d { config }
    }
}

impl<E: Element> Module<E> for AvgPool2d {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        x.avg_pool2d(self.config)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "AvgPool2d(kernel_size={}, stride={}, padding={})",
            pair(c.kernel_size),
            pair(c.stride.unwrap_or(c.kernel_size)),
            pair(c.padding)
        )
    }
}

/// 1-D adaptive average pooling to a fixed length, PyTorch's `nn.AdaptiveAvgPool1d`; see
/// [`Tensor::adaptive_avg_pool1d`].
///
/// ```
/// use tensorgrad::nn::{AdaptiveAvgPool1d, Module};
/// use tensorgrad::Tensor;
/// let pool = AdaptiveAvgPool1d::new(4);
/// let y: Tensor = pool.forward(&Tensor::ones(&[2, 3, 10]));
/// assert_eq!(y.shape(), &[2, 3, 4]);
/// assert_eq!(Module::<f32>::describe(&pool), "AdaptiveAvgPool1d(output_size=4)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool1d {
    output_size: usize,
}

impl AdaptiveAvgPool1d {
    /// Pools to `output_size` positions.
    pub fn new(output_size: usize) -> Self {
        AdaptiveAvgPool1d { output_size }
    }
}

impl<E: Element> Module<E> for AdaptiveAvgPool1d {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        x.adaptive_avg_pool1d(self.output_size)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        format!("AdaptiveAvgPool1d(output_size={})", self.output_size)
    }
}

/// 2-D adaptive average pooling to a fixed `[height, width]`, PyTorch's
/// `nn.AdaptiveAvgPool2d`; see [`Tensor::adaptive_avg_pool2d`]. `new([1, 1])` is global average
/// pooling.
///
/// ```
/// use tensorgrad::nn::{AdaptiveAvgPool2d, Module};
/// use tensorgrad::Tensor;
/// let pool = AdaptiveAvgPool2d::new([1, 1]);
/// let y: Tensor = pool.forward(&Tensor::ones(&[2, 64, 7, 7]));
/// assert_eq!(y.shape(), &[2, 64, 1, 1]);
/// assert_eq!(Module::<f32>::describe(&pool), "AdaptiveAvgPool2d(output_size=1)");
/// assert_eq!(Module::<f32>::describe(&AdaptiveAvgPool2d::new([5, 7])), "AdaptiveAvgPool2d(output_size=(5, 7))");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    output_size: [usize; 2],
}

impl AdaptiveAvgPool2d {
    /// Pools to `output_size` = `[height, width]`.
    pub fn new(output_size: [usize; 2]) -> Self {
        AdaptiveAvgPool2d { output_size }
    }
}

impl<E: Element> Module<E> for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        x.adaptive_avg_pool2d(self.output_size)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        format!("AdaptiveAvgPool2d(output_size={})", pair(self.output_size))
    }
}
