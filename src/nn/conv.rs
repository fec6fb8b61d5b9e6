//! Convolution layers: `Conv1d`, `Conv2d`, `ConvTranspose1d`, `ConvTranspose2d`, with PyTorch's
//! parameter names, shapes and default initialisation.

use super::init::Init;
use super::module::{Module, Param, join};
use crate::ops::conv::{ConvOptions, ConvPadding, ConvTransposeOptions};
use crate::{Element, RngSource, Tensor};

/// The settings of a [`Conv`] layer ([`Conv1d`], [`Conv2d`]): PyTorch's constructor arguments
/// after the channels and the kernel size. Only zero padding exists (PyTorch's default
/// `padding_mode="zeros"`).
///
/// ```
/// use tensorgrad::ConvPadding;
/// use tensorgrad::nn::{Conv2d, ConvConfig, Module};
/// let cfg = ConvConfig { padding: ConvPadding::Same, bias: false, ..Default::default() };
/// let conv: Conv2d = Conv2d::with_config(3, 8, [3, 3], cfg, 0);
/// assert_eq!(conv.num_parameters(), 8 * 3 * 3 * 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvConfig<const D: usize> {
    /// Step of the kernel, per spatial dim (default 1).
    pub stride: [usize; D],
    /// Zeros around the input (default none).
    pub padding: ConvPadding<D>,
    /// Spacing between the kernel's taps (default 1).
    pub dilation: [usize; D],
    /// Channel groups (default 1; `in_channels` for a depthwise convolution).
    pub groups: usize,
    /// Whether the layer adds a learned bias (default true).
    pub bias: bool,
}

impl<const D: usize> Default for ConvConfig<D> {
    fn default() -> Self {
        let o = ConvOptions::<D>::default();
        ConvConfig { stride: o.stride, padding: o.padding, dilation: o.dilation, groups: o.groups, bias: true }
    }
}

/// The settings of a [`ConvTranspose`] layer ([`ConvTranspose1d`], [`ConvTranspose2d`]), as
/// PyTorch's constructor arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTransposeConfig<const D: usize> {
    /// Stride of the convolution this transposes (default 1).
    pub stride: [usize; D],
    /// Padding of the convolution this transposes (default 0).
    pub padding: [usize; D],
    /// Extra size on one side of the output (default 0).
    pub output_padding: [usize; D],
    /// Spacing between the kernel's taps (default 1).
    pub dilation: [usize; D],
    /// Channel groups (default 1).
    pub groups: usize,
    /// Whether the layer adds a learned bias (default true).
    pub bias: bool,
}

impl<const D: usize> Default for ConvTransposeConfig<D> {
    fn default() -> Self {
        let o = ConvTransposeOptions::<D>::default();
        ConvTransposeConfig {
            stride: o.stride,
            padding: o.padding,
            output_padding: o.output_padding,
            dilation: o.dilation,
            groups: o.groups,
            bias: true,
        }
    }
}

/// A convolution layer over `D` spatial dims ([`Conv1d`]: `[N, C, L]`, [`Conv2d`]: `[N, C, H,
/// W]`; unbatched inputs are accepted as in PyTorch), running
/// [`Tensor::conv1d`]/[`Tensor::conv2d`].
///
/// # Parameters
/// `weight` `[out_channels, in_channels/groups, kernel…]` and `bias` `[out_channels]`,
/// PyTorch's names and layout, both initialised uniform on `±1/√fan_in` with `fan_in =
/// in_channels/groups · kernel size` (PyTorch's `kaiming_uniform_(a=√5)` and bias rule).
///
/// ```
/// use tensorgrad::{Tensor, nn::{Conv2d, Module}};
/// let conv: Conv2d = Conv2d::new(1, 6, [5, 5], 0); // LeNet's first layer
/// let y = conv.forward(&Tensor::zeros(&[2, 1, 28, 28]));
/// assert_eq!(y.shape(), &[2, 6, 24, 24]);
/// assert_eq!(conv.named_parameters()[0].0, "weight");
/// ```
#[derive(Clone, Debug)]
pub struct Conv<E: Element, const D: usize> {
    weight: Param<E>,
    bias: Option<Param<E>>,
    config: ConvConfig<D>,
}

/// A 1-D convolution layer (PyTorch's `nn.Conv1d`): input `[N, C, L]`.
pub type Conv1d<E = f32> = Conv<E, 1>;
/// A 2-D convolution layer (PyTorch's `nn.Conv2d`): input `[N, C, H, W]`.
pub type Conv2d<E = f32> = Conv<E, 2>;

/// A transposed convolution layer over `D` spatial dims ([`ConvTranspose1d`],
/// [`ConvTranspose2d`]), running [`Tensor::conv_transpose1d`]/[`Tensor::conv_transpose2d`].
///
/// # Parameters
/// `weight` `[in_channels, out_channels/groups, kernel…]` and `bias` `[out_channels]`
/// (PyTorch's layout), uniform on `±1/√fan_in` with PyTorch's `fan_in = out_channels/groups ·
/// kernel size` (computed from the weight's second dim, as PyTorch does).
///
/// ```
/// use tensorgrad::{Tensor, nn::{ConvTranspose2d, ConvTransposeConfig, Module}};
/// let cfg = ConvTransposeConfig { stride: [2, 2], ..Default::default() };
/// let up: ConvTranspose2d = ConvTranspose2d::with_config(8, 4, [2, 2], cfg, 0);
/// assert_eq!(up.forward(&Tensor::zeros(&[1, 8, 7, 7])).shape(), &[1, 4, 14, 14]);
/// ```
#[derive(Clone, Debug)]
pub struct ConvTranspose<E: Element, const D: usize> {
    weight: Param<E>,
    bias: Option<Param<E>>,
    config: ConvTransposeConfig<D>,
}

/// A 1-D transposed convolution layer (PyTorch's `nn.ConvTranspose1d`).
pub type ConvTranspose1d<E = f32> = ConvTranspose<E, 1>;
/// A 2-D transposed convolution layer (PyTorch's `nn.ConvTranspose2d`).
pub type ConvTranspose2d<E = f32> = ConvTranspose<E, 2>;

/// Weight and bias uniform on `±1/√fan_in`, fan_in from the weight's second dim and kernel.
fn init<E: Element>(shape: &[usize], bias: Option<usize>, rng: impl RngSource) -> (Param<E>, Option<Param<E>>) {
    let mut rng = rng.into_rng();
    let fan_in: usize = shape[1..].iter().product();
    let a = 1.0 / (fan_in.max(1) as f64).sqrt();
    let weight = Param::new(Init::Uniform(-a, a).tensor(shape, &mut rng));
    let bias = bias.map(|n| Param::new(Init::Uniform(-a, a).tensor(&[n], &mut rng)));
    (weight, bias)
}

/// `(a, b)` or `(a,)`, as Python prints a tuple.
fn tuple<const D: usize>(v: [usize; D]) -> String {
    if D == 1 { format!("({},)", v[0]) } else { format!("({})", v.map(|x| x.to_string()).join(", ")) }
}

/// PyTorch's `extra_repr` for the options that differ from their defaults.
fn repr_tail<const D: usize>(
    padding: String,
    output_padding: [usize; D],
    dilation: [usize; D],
    groups: usize,
    bias: bool,
) -> String {
    let mut s = padding;
    if output_padding != [0; D] {
        s += &format!(", output_padding={}", tuple(output_padding));
    }
    if dilation != [1; D] {
        s += &format!(", dilation={}", tuple(dilation));
    }
    if groups != 1 {
        s += &format!(", groups={groups}");
    }
    if !bias {
        s += ", bias=False";
    }
    s
}

#[track_caller]
fn check_channels(layer: &str, in_channels: usize, out_channels: usize, groups: usize) {
    if groups == 0 || !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
        panic!("{layer}: groups {groups} must divide in_channels {in_channels} and out_channels {out_channels}");
    }
}

impl<E: Element, const D: usize> Conv<E, D> {
    /// A layer with a `kernel_size` kernel, stride 1, no padding and a bias, initialised as in
    /// PyTorch. `rng` is `&mut` a generator or a `u64` seed ([`RngSource`]).
    ///
    /// # Panics
    /// As [`with_config`](Self::with_config).
    #[track_caller]
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: [usize; D], rng: impl RngSource) -> Self {
        Self::with_config(in_channels, out_channels, kernel_size, ConvConfig::default(), rng)
    }

    /// A layer with the given settings.
    ///
    /// # Panics
    /// If `groups` does not divide both channel counts.
    #[track_caller]
    pub fn with_config(
        in_channels: usize,
        out_channels: usize,
        kernel_size: [usize; D],
        config: ConvConfig<D>,
        rng: impl RngSource,
    ) -> Self {
        check_channels(Self::NAME, in_channels, out_channels, config.groups);
        let shape = [&[out_channels, in_channels / config.groups][..], &kernel_size].concat();
        let (weight, bias) = init(&shape, config.bias.then_some(out_channels), rng);
        Conv { weight, bias, config }
    }

    /// A layer over given tensors: `weight` `[out_channels, in_channels/groups, kernel…]`,
    /// `bias` `[out_channels]` (`config.bias` is set from it), for weights initialised or
    /// loaded elsewhere.
    ///
    /// ```
    /// use tensorgrad::{Tensor, nn::{Conv1d, ConvConfig, Module}};
    /// // A difference filter: y[t] = x[t + 1] − x[t].
    /// let conv = Conv1d::from_tensors(Tensor::from_vec(vec![-1.0f32, 1.0], &[1, 1, 2]), None, ConvConfig::default());
    /// assert_eq!(conv.forward(&Tensor::from_vec(vec![1.0, 4.0, 9.0], &[1, 1, 3])).to_vec(), [3.0, 5.0]);
    /// ```
    ///
    /// # Panics
    /// If `weight` is not `D + 2`-dimensional, `groups` is 0, or `bias` is not `[out_channels]`.
    #[track_caller]
    pub fn from_tensors(weight: Tensor<E>, bias: Option<Tensor<E>>, config: ConvConfig<D>) -> Self {
        let s = weight.shape();
        if s.len() != D + 2 {
            panic!("{}: weight must be [out_channels, in_channels/groups, kernel…], got {s:?}", Self::NAME);
        }
        check_channels(Self::NAME, s[1] * config.groups, s[0], config.groups);
        if let Some(b) = &bias
            && b.shape() != [s[0]]
        {
            panic!("{}: bias has shape {:?}, the weight {s:?} has {} output channels", Self::NAME, b.shape(), s[0]);
        }
        let config = ConvConfig { bias: bias.is_some(), ..config };
        Conv { weight: Param::new(weight), bias: bias.map(Param::new), config }
    }

    const NAME: &'static str = if D == 1 { "Conv1d" } else { "Conv2d" };

    /// The weight, `[out_channels, in_channels/groups, kernel…]`.
    pub fn weight(&self) -> &Param<E> {
        &self.weight
    }

    /// The bias, `[out_channels]`, if any.
    pub fn bias(&self) -> Option<&Param<E>> {
        self.bias.as_ref()
    }

    /// The layer's settings.
    pub fn config(&self) -> &ConvConfig<D> {
        &self.config
    }
}

impl<E: Element, const D: usize> Module<E> for Conv<E, D> {
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let c = self.config;
        let o = ConvOptions { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
        let b = self.bias.as_ref().map(|b| b.tensor());
        x.conv_nd(Self::NAME, &self.weight.tensor(), b.as_ref(), o)
    }

    fn describe(&self) -> String {
        let w = self.weight.value();
        let s = w.shape();
        let c = self.config;
        let padding = match c.padding {
            ConvPadding::Explicit(p) if p == [0; D] => String::new(),
            ConvPadding::Explicit(p) => format!(", padding={}", tuple(p)),
            ConvPadding::Valid => ", padding=valid".into(),
            ConvPadding::Same => ", padding=same".into(),
        };
        format!(
            "{}({}, {}, kernel_size={}, stride={}{})",
            Self::NAME,
            s[1] * c.groups,
            s[0],
            tuple::<D>(std::array::from_fn(|i| s[2 + i])),
            tuple(c.stride),
            repr_tail(padding, [0; D], c.dilation, c.groups, self.bias.is_some())
        )
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
}

impl<E: Element, const D: usize> ConvTranspose<E, D> {
    /// A layer with a `kernel_size` kernel, stride 1, no padding and a bias, initialised as in
    /// PyTorch. `rng` is `&mut` a generator or a `u64` seed ([`RngSource`]).
    ///
    /// # Panics
    /// As [`with_config`](Self::with_config).
    #[track_caller]
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: [usize; D], rng: impl RngSource) -> Self {
        Self::with_config(in_channels, out_channels, kernel_size, ConvTransposeConfig::default(), rng)
    }

    /// A layer with the given settings.
    ///
    /// # Panics
    /// If `groups` does not divide both channel counts.
    #[track_caller]
    pub fn with_config(
        in_channels: usize,
        out_channels: usize,
        kernel_size: [usize; D],
        config: ConvTransposeConfig<D>,
        rng: impl RngSource,
    ) -> Self {
        check_channels(Self::NAME, in_channels, out_channels, config.groups);
        let shape = [&[in_channels, out_channels / config.groups][..], &kernel_size].concat();
        let (weight, bias) = init(&shape, config.bias.then_some(out_channels), rng);
        ConvTranspose { weight, bias, config }
    }

    const NAME: &'static str = if D == 1 { "ConvTranspose1d" } else { "ConvTranspose2d" };

    /// The weight, `[in_channels, out_channels/groups, kernel…]`.
    pub fn weight(&self) -> &Param<E> {
        &self.weight
    }

    /// The bias, `[out_channels]`, if any.
    pub fn bias(&self) -> Option<&Param<E>> {
        self.bias.as_ref()
    }

    /// The layer's settings.
    pub fn config(&self) -> &ConvTransposeConfig<D> {
        &self.config
    }
}

impl<E: Element, const D: usize> Module<E> for ConvTranspose<E, D> {
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let c = self.config;
        let o = ConvTransposeOptions {
            stride: c.stride,
            padding: c.padding,
            output_padding: c.output_padding,
            dilation: c.dilation,
            groups: c.groups,
        };
        let b = self.bias.as_ref().map(|b| b.tensor());
        x.conv_transpose_nd(Self::NAME, &self.weight.tensor(), b.as_ref(), o)
    }

    fn describe(&self) -> String {
        let w = self.weight.value();
        let s = w.shape();
        let c = self.config;
        let padding = if c.padding == [0; D] { String::new() } else { format!(", padding={}", tuple(c.padding)) };
        format!(
            "{}({}, {}, kernel_size={}, stride={}{})",
            Self::NAME,
            s[0],
            s[1] * c.groups,
            tuple::<D>(std::array::from_fn(|i| s[2 + i])),
            tuple(c.stride),
            repr_tail(padding, c.output_padding, c.dilation, c.groups, self.bias.is_some())
        )
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
}
