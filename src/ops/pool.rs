//! Pooling over the trailing one or two dims, with PyTorch's semantics: `max_pool1d`/`2d`
//! (with their indices), `avg_pool1d`/`2d`, `adaptive_avg_pool1d`/`2d` and
//! `adaptive_max_pool2d`.
//!
//! Every pooling is a kernel over the input's planes (`kernels::pool`; a 1-D pooling is a 2-D
//! one with planes of height 1). Max pooling saves the flat index of each maximum in its plane;
//! its backward adds each gradient at that index (`plane_scatter`), whose own backward reads the
//! gradient back through the indices (`plane_gather`): an adjoint pair, like `gather`/`scatter`,
//! so max pooling can be differentiated any number of times. Average pooling is linear: its
//! backward is its adjoint (spreading each gradient over its window divided by the window's
//! divisor), whose backward is average pooling again.
//!
//! The indices of `max_pool*_with_indices` are a constant tensor of whole numbers in the
//! element type (PyTorch returns `int64`): they take no gradient, and in `f32` they are exact
//! for planes of up to 2²⁴ elements.

use std::sync::Arc;

use crate::kernels::Par;
use crate::kernels::pool::{
    Geometry, Win, avg_pool, avg_pool_adjoint, indices_as, max_pool, plane_gather, plane_scatter,
};
use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;

/// The options of [`Tensor::max_pool1d`] and [`MaxPool1d`](crate::nn::MaxPool1d), PyTorch's
/// arguments of `F.max_pool1d`. `Default` is a window of 1; build with
/// [`MaxPool1dConfig::new`] and the setters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool1dConfig {
    /// The window length.
    pub kernel_size: usize,
    /// The step between windows; `None` is `kernel_size`.
    pub stride: Option<usize>,
    /// `−∞` added at both ends, at most `kernel_size / 2`.
    pub padding: usize,
    /// The distance between two elements of a window.
    pub dilation: usize,
    /// Whether to count a last, partial window (which must start inside the input or the left
    /// padding).
    pub ceil_mode: bool,
}

impl Default for MaxPool1dConfig {
    fn default() -> Self {
        MaxPool1dConfig { kernel_size: 1, stride: None, padding: 0, dilation: 1, ceil_mode: false }
    }
}

/// The options of [`Tensor::max_pool2d`] and [`MaxPool2d`](crate::nn::MaxPool2d) (PyTorch's
/// `F.max_pool2d`), each a `[height, width]` pair. `Default` is a 1×1 window; build with
/// [`MaxPool2dConfig::new`] and the setters (which set both dims).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dConfig {
    /// The window size.
    pub kernel_size: [usize; 2],
    /// The step between windows; `None` is `kernel_size`.
    pub stride: Option<[usize; 2]>,
    /// `−∞` added at both ends of each dim, at most half the window.
    pub padding: [usize; 2],
    /// The distance between two elements of a window.
    pub dilation: [usize; 2],
    /// Whether to count a last, partial window (which must start inside the input or the left
    /// padding).
    pub ceil_mode: bool,
}

impl Default for MaxPool2dConfig {
    fn default() -> Self {
        MaxPool2dConfig { kernel_size: [1, 1], stride: None, padding: [0, 0], dilation: [1, 1], ceil_mode: false }
    }
}

/// The options of [`Tensor::avg_pool1d`] and [`AvgPool1d`](crate::nn::AvgPool1d) (PyTorch's
/// `F.avg_pool1d`). `Default` is a window of 1 with `count_include_pad`, as PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool1dConfig {
    /// The window length.
    pub kernel_size: usize,
    /// The step between windows; `None` is `kernel_size`.
    pub stride: Option<usize>,
    /// Zeros added at both ends, at most `kernel_size / 2`.
    pub padding: usize,
    /// Whether to count a last, partial window.
    pub ceil_mode: bool,
    /// Whether the padding counts in the divisor.
    pub count_include_pad: bool,
}

impl Default for AvgPool1dConfig {
    fn default() -> Self {
        AvgPool1dConfig { kernel_size: 1, stride: None, padding: 0, ceil_mode: false, count_include_pad: true }
    }
}

/// The options of [`Tensor::avg_pool2d`] and [`AvgPool2d`](crate::nn::AvgPool2d) (PyTorch's
/// `F.avg_pool2d`), each a `[height, width]` pair. `Default` is a 1×1 window with
/// `count_include_pad`, as PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2dConfig {
    /// The window size.
    pub kernel_size: [usize; 2],
    /// The step between windows; `None` is `kernel_size`.
    pub stride: Option<[usize; 2]>,
    /// Zeros added at both ends of each dim, at most half the window.
    pub padding: [usize; 2],
    /// Whether to count a last, partial window.
    pub ceil_mode: bool,
    /// Whether the padding counts in the divisor.
    pub count_include_pad: bool,
    /// Divide every window's sum by this instead of its size.
    pub divisor_override: Option<usize>,
}

impl Default for AvgPool2dConfig {
    fn default() -> Self {
        AvgPool2dConfig {
            kernel_size: [1, 1],
            stride: None,
            padding: [0, 0],
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
        }
    }
}

macro_rules! setters {
    ($t:ty, $wrap:expr) => {
        impl $t {
            /// A window of `kernel_size` (in every dim), the other options at their defaults.
            pub fn new(kernel_size: usize) -> Self {
                Self { kernel_size: $wrap(kernel_size), ..Self::default() }
            }

            /// Sets the stride (in every dim).
            pub fn stride(mut self, stride: usize) -> Self {
                self.stride = Some($wrap(stride));
                self
            }

            /// Sets the padding (in every dim).
            pub fn padding(mut self, padding: usize) -> Self {
                self.padding = $wrap(padding);
                self
            }

            /// Sets `ceil_mode`.
            pub fn ceil_mode(mut self, ceil_mode: bool) -> Self {
                self.ceil_mode = ceil_mode;
                self
            }
        }
    };
}

setters!(MaxPool1dConfig, |k: usize| k);
setters!(MaxPool2dConfig, |k: usize| [k, k]);
setters!(AvgPool1dConfig, |k: usize| k);
setters!(AvgPool2dConfig, |k: usize| [k, k]);

impl MaxPool1dConfig {
    /// Sets the dilation.
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.dilation = dilation;
        self
    }
}

impl MaxPool2dConfig {
    /// Sets the dilation (in both dims).
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.dilation = [dilation, dilation];
        self
    }
}

impl AvgPool1dConfig {
    /// Sets `count_include_pad`.
    pub fn count_include_pad(mut self, count_include_pad: bool) -> Self {
        self.count_include_pad = count_include_pad;
        self
    }
}

impl AvgPool2dConfig {
    /// Sets `count_include_pad`.
    pub fn count_include_pad(mut self, count_include_pad: bool) -> Self {
        self.count_include_pad = count_include_pad;
        self
    }

    /// Sets the divisor of every window.
    pub fn divisor_override(mut self, divisor: usize) -> Self {
        self.divisor_override = Some(divisor);
        self
    }
}

/// The options of one pooling in 2-D form (a 1-D pooling has a trivial first dim).
struct Spec {
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    d: [usize; 2],
    ceil: bool,
}

impl Spec {
    fn one_d(k: usize, s: Option<usize>, p: usize, d: usize, ceil: bool) -> Spec {
        Spec { k: [1, k], s: [1, s.unwrap_or(k)], p: [0, p], d: [1, d], ceil }
    }

    fn two_d(k: [usize; 2], s: Option<[usize; 2]>, p: [usize; 2], d: [usize; 2], ceil: bool) -> Spec {
        Spec { k, s: s.unwrap_or(k), p, d, ceil }
    }

    /// Checks the options (PyTorch's rules), naming `op` and, for 1-D, only the second dim.
    #[track_caller]
    fn check(&self, op: &str, dims: usize) {
        let show = |a: [usize; 2]| if dims == 1 { format!("{}", a[1]) } else { format!("{a:?}") };
        if self.k.contains(&0) || self.s.contains(&0) || self.d.contains(&0) {
            panic!(
                "{op}: kernel_size, stride and dilation must be greater than zero, got kernel_size {}, stride {}, dilation {}",
                show(self.k),
                show(self.s),
                show(self.d)
            );
        }
        if (0..2).any(|i| self.p[i] > self.k[i] / 2) {
            panic!("{op}: padding {} must be at most half of kernel_size {}", show(self.p), show(self.k));
        }
    }
}

/// PyTorch's output length of a pooling along one dim, or `None` when it would be below 1.
fn out_len(l: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Option<usize> {
    let span = (l + 2 * p) as isize - (d * (k - 1) + 1) as isize;
    let s_i = s as isize;
    let mut out = (span + if ceil { s_i - 1 } else { 0 }).div_euclid(s_i) + 1;
    // The last window must start inside the input or the left padding.
    if ceil && out >= 1 && (out as usize - 1) * s >= l + p {
        out -= 1;
    }
    (out >= 1).then_some(out as usize)
}

/// The windows of a max pooling along one dim of length `l`, for `out` outputs.
fn max_windows(l: usize, k: usize, s: usize, p: usize, d: usize, out: usize) -> Vec<Win> {
    (0..out)
        .map(|o| {
            let start = (o * s) as isize - p as isize;
            let j0 = if start < 0 { (start.unsigned_abs()).div_ceil(d) } else { 0 };
            let first = start + (j0 * d) as isize;
            let count = if j0 >= k || first >= l as isize { 0 } else { (k - j0).min((l - 1 - first as usize) / d + 1) };
            Win { start: (first.max(0) as usize).min(l.saturating_sub(1)), count, step: d }
        })
        .collect()
}

/// The windows of an average pooling along one dim of length `l`, for `out` outputs, and each
/// window's length with the padding counted.
fn avg_windows(l: usize, k: usize, s: usize, p: usize, out: usize) -> (Vec<Win>, Vec<usize>) {
    (0..out)
        .map(|o| {
            let start = (o * s) as isize - p as isize;
            let end = (start + k as isize).min((l + p) as isize);
            let padded = (end - start) as usize;
            let (a, b) = (start.max(0) as usize, (end.min(l as isize)).max(0) as usize);
            (Win { start: a.min(l.saturating_sub(1)), count: b.saturating_sub(a), step: 1 }, padded)
        })
        .unzip()
}

/// PyTorch's adaptive windows: output `i` of `out` covers `⌊i·l/out⌋..⌈(i+1)·l/out⌉`.
fn adaptive_windows(l: usize, out: usize) -> Vec<Win> {
    (0..out)
        .map(|i| {
            let (a, b) = (i * l / out, ((i + 1) * l).div_ceil(out));
            Win { start: a, count: b - a, step: 1 }
        })
        .collect()
}

/// The dims before the pooled ones and the input plane `[h, w]` of a pooling over the last
/// `dims` (1 or 2) dims; checks the rank (one batch dim or none, as PyTorch).
#[track_caller]
fn split_shape(op: &str, shape: &[usize], dims: usize) -> (Vec<usize>, [usize; 2]) {
    let ok = shape.len() == dims + 1 || shape.len() == dims + 2;
    if !ok {
        let want = if dims == 1 { "2-D [C, L] or 3-D [N, C, L]" } else { "3-D [C, H, W] or 4-D [N, C, H, W]" };
        panic!("{op}: expects a {want} input, got shape {shape:?}");
    }
    let lead = shape[..shape.len() - dims].to_vec();
    let hw = if dims == 1 { [1, shape[shape.len() - 1]] } else { [shape[shape.len() - 2], shape[shape.len() - 1]] };
    if hw.contains(&0) {
        panic!("{op}: the pooled dims of the input of shape {shape:?} must not be empty");
    }
    (lead, hw)
}

/// The output sizes `[oh, ow]` of `spec` on a plane `hw`, or a panic naming the input shape.
#[track_caller]
fn out_sizes(op: &str, spec: &Spec, hw: [usize; 2], shape: &[usize], dims: usize) -> [usize; 2] {
    let o = |i: usize| out_len(hw[i], spec.k[i], spec.s[i], spec.p[i], spec.d[i], spec.ceil);
    match (o(0), o(1)) {
        (Some(a), Some(b)) => [a, b],
        _ => {
            let k = if dims == 1 { format!("{}", spec.k[1]) } else { format!("{:?}", spec.k) };
            panic!("{op}: input of shape {shape:?} is too small for kernel_size {k} (the output would be empty)")
        }
    }
}

/// `lead` followed by the pooled output sizes.
fn with_spatial(lead: &[usize], o: [usize; 2], dims: usize) -> Vec<usize> {
    let mut s = lead.to_vec();
    if dims == 2 {
        s.push(o[0]);
    }
    s.push(o[1]);
    s
}

/// Calls `f` with the tensor's elements as one row-major slice (copied if strided).
fn with_data<E: Element, R>(t: &Tensor<E>, f: impl FnOnce(&[E]) -> R) -> R {
    let t = t.detach().contiguous();
    let data = t.data();
    let off = t.layout().offset();
    f(&data[off..off + t.numel()])
}

/// Max pooling's indices: position `i` of each output plane came from position `idx[i]` of its
/// input plane.
struct PlaneMap {
    idx: Vec<usize>,
    in_plane: usize,
    out_plane: usize,
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
}

/// The indices of a max pooling, made into a tensor only when asked for.
struct Indices(Arc<PlaneMap>);

impl Indices {
    fn tensor<E: Element>(&self) -> Tensor<E> {
        Tensor::from_data(indices_as(&self.0.idx), &self.0.out_shape)
    }
}

/// An average pooling: windows, one factor per output position, and the shapes.
struct AvgPlan<E> {
    geo: Geometry,
    scale: Vec<E>,
    planes: usize,
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
}

impl<E: Element> Tensor<E> {
    /// 1-D max pooling over the last dim of a `[N, C, L]` (or `[C, L]`) input, PyTorch's
    /// `F.max_pool1d`. ∂/∂x adds each output's gradient at the position of its maximum (the
    /// first one where several are equal).
    ///
    /// ```
    /// use tensorgrad::{MaxPool1dConfig, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 3.0, 2.0, 5.0, 4.0], &[1, 1, 5]);
    /// assert_eq!(x.max_pool1d(MaxPool1dConfig::new(2)).to_vec(), vec![3.0, 5.0]);
    /// assert_eq!(x.max_pool1d(MaxPool1dConfig::new(2).ceil_mode(true)).to_vec(), vec![3.0, 5.0, 4.0]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 2-D or 3-D, an option is 0, the padding is more than half the
    /// window, or the input is too small for one window.
    #[track_caller]
    pub fn max_pool1d(&self, cfg: MaxPool1dConfig) -> Tensor<E> {
        let spec = Spec::one_d(cfg.kernel_size, cfg.stride, cfg.padding, cfg.dilation, cfg.ceil_mode);
        self.max_pool_spec("max_pool1d", &spec, 1).0
    }

    /// [`max_pool1d`](Self::max_pool1d) and, for each output, the index of its maximum in its
    /// input row (PyTorch's `return_indices=True`), as a constant tensor of whole numbers.
    ///
    /// ```
    /// use tensorgrad::{MaxPool1dConfig, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 2.0, 5.0], &[1, 4]);
    /// let (y, i) = x.max_pool1d_with_indices(MaxPool1dConfig::new(2));
    /// assert_eq!((y.to_vec(), i.to_vec()), (vec![3.0, 5.0], vec![1.0, 3.0]));
    /// ```
    ///
    /// # Panics
    /// As [`max_pool1d`](Self::max_pool1d).
    #[track_caller]
    pub fn max_pool1d_with_indices(&self, cfg: MaxPool1dConfig) -> (Tensor<E>, Tensor<E>) {
        let spec = Spec::one_d(cfg.kernel_size, cfg.stride, cfg.padding, cfg.dilation, cfg.ceil_mode);
        let (y, i) = self.max_pool_spec("max_pool1d", &spec, 1);
        (y, i.tensor())
    }

    /// 2-D max pooling over the last two dims of a `[N, C, H, W]` (or `[C, H, W]`) input,
    /// PyTorch's `F.max_pool2d`. ∂/∂x adds each output's gradient at the position of its
    /// maximum (the first one in row-major order where several are equal).
    ///
    /// ```
    /// use tensorgrad::{MaxPool2dConfig, Tensor};
    /// let x = Tensor::<f32>::arange(16).reshape(&[1, 1, 4, 4]);
    /// assert_eq!(x.max_pool2d(MaxPool2dConfig::new(2)).to_vec(), vec![5.0, 7.0, 13.0, 15.0]);
    /// let y = x.max_pool2d(MaxPool2dConfig::new(3).stride(2).padding(1));
    /// assert_eq!(y.shape(), &[1, 1, 2, 2]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 3-D or 4-D, an option is 0, the padding is more than half the
    /// window, or the input is too small for one window.
    #[track_caller]
    pub fn max_pool2d(&self, cfg: MaxPool2dConfig) -> Tensor<E> {
        let spec = Spec::two_d(cfg.kernel_size, cfg.stride, cfg.padding, cfg.dilation, cfg.ceil_mode);
        self.max_pool_spec("max_pool2d", &spec, 2).0
    }

    /// [`max_pool2d`](Self::max_pool2d) and, for each output, the flat index `h·W + w` of its
    /// maximum in its input plane (PyTorch's `return_indices=True`), as a constant tensor of
    /// whole numbers (exact in `f32` for planes of up to 2²⁴ elements).
    ///
    /// ```
    /// use tensorgrad::{MaxPool2dConfig, Tensor};
    /// let x = Tensor::<f64>::arange(16).reshape(&[1, 4, 4]);
    /// let (_, i) = x.max_pool2d_with_indices(MaxPool2dConfig::new(2));
    /// assert_eq!(i.to_vec(), vec![5.0, 7.0, 13.0, 15.0]);
    /// ```
    ///
    /// # Panics
    /// As [`max_pool2d`](Self::max_pool2d).
    #[track_caller]
    pub fn max_pool2d_with_indices(&self, cfg: MaxPool2dConfig) -> (Tensor<E>, Tensor<E>) {
        let spec = Spec::two_d(cfg.kernel_size, cfg.stride, cfg.padding, cfg.dilation, cfg.ceil_mode);
        let (y, i) = self.max_pool_spec("max_pool2d", &spec, 2);
        (y, i.tensor())
    }

    /// 2-D adaptive max pooling to `output_size` `[oh, ow]` (PyTorch's `F.adaptive_max_pool2d`):
    /// output `(i, j)` is the maximum over rows `⌊i·H/oh⌋..⌈(i+1)·H/oh⌉` and the same for
    /// columns. ∂/∂x as [`max_pool2d`](Self::max_pool2d).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let x = Tensor::<f32>::arange(9).reshape(&[1, 3, 3]);
    /// assert_eq!(x.adaptive_max_pool2d([2, 2]).to_vec(), vec![4.0, 5.0, 7.0, 8.0]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 3-D or 4-D or an output size is 0.
    #[track_caller]
    pub fn adaptive_max_pool2d(&self, output_size: [usize; 2]) -> Tensor<E> {
        let op = "adaptive_max_pool2d";
        let (lead, hw) = split_shape(op, self.shape(), 2);
        check_output_size(op, &output_size, self.shape());
        let geo = Geometry {
            h: hw[0],
            w: hw[1],
            rows: adaptive_windows(hw[0], output_size[0]),
            cols: adaptive_windows(hw[1], output_size[1]),
        };
        self.max_pool_geo(op, geo, with_spatial(&lead, output_size, 2)).0
    }

    /// A max pooling given its options.
    #[track_caller]
    fn max_pool_spec(&self, op: &'static str, spec: &Spec, dims: usize) -> (Tensor<E>, Indices) {
        let (lead, hw) = split_shape(op, self.shape(), dims);
        spec.check(op, dims);
        let o = out_sizes(op, spec, hw, self.shape(), dims);
        let geo = Geometry {
            h: hw[0],
            w: hw[1],
            rows: max_windows(hw[0], spec.k[0], spec.s[0], spec.p[0], spec.d[0], o[0]),
            cols: max_windows(hw[1], spec.k[1], spec.s[1], spec.p[1], spec.d[1], o[1]),
        };
        self.max_pool_geo(op, geo, with_spatial(&lead, o, dims))
    }

    /// Max pooling over given windows: the values (recorded) and the indices (constant).
    fn max_pool_geo(&self, op: &'static str, geo: Geometry, out_shape: Vec<usize>) -> (Tensor<E>, Indices) {
        let planes = self.numel() / geo.in_plane();
        let (vals, idx) = with_data(self, |x| max_pool(Par::current(), x, planes, &geo));
        let map = Arc::new(PlaneMap {
            idx,
            in_plane: geo.in_plane(),
            out_plane: geo.out_plane(),
            in_shape: self.shape().to_vec(),
            out_shape: out_shape.clone(),
        });
        let indices = Indices(Arc::clone(&map));
        let values = Tensor::from_data(vals, &out_shape)
            .record(op, [self.clone()], move |c| vec![Some(c.grad().plane_scatter(&map))]);
        (values, indices)
    }

    /// Max pooling's values read through its indices (the adjoint of `plane_scatter`, which is
    /// its backward).
    fn plane_gather(&self, map: &Arc<PlaneMap>) -> Tensor<E> {
        let out = with_data(self, |g| plane_gather(Par::current(), g, map.in_plane, &map.idx, map.out_plane));
        let m = Arc::clone(map);
        Tensor::from_data(out, &map.out_shape)
            .record("max_pool_gather", [self.clone()], move |c| vec![Some(c.grad().plane_scatter(&m))])
    }

    /// Max pooling's backward: zeros of the input's shape with each gradient added at its
    /// maximum's index. Its backward is `plane_gather`.
    fn plane_scatter(&self, map: &Arc<PlaneMap>) -> Tensor<E> {
        let out = with_data(self, |g| plane_scatter(Par::current(), g, &map.idx, map.out_plane, map.in_plane));
        let m = Arc::clone(map);
        Tensor::from_data(out, &map.in_shape)
            .record("max_pool_backward", [self.clone()], move |c| vec![Some(c.grad().plane_gather(&m))])
    }

    /// 1-D average pooling over the last dim of a `[N, C, L]` (or `[C, L]`) input, PyTorch's
    /// `F.avg_pool1d`. ∂/∂x spreads each output's gradient evenly over its window (divided by
    /// the same divisor).
    ///
    /// ```
    /// use tensorgrad::{AvgPool1dConfig, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 2.0, 6.0], &[1, 1, 4]);
    /// assert_eq!(x.avg_pool1d(AvgPool1dConfig::new(2)).to_vec(), vec![2.0, 4.0]);
    /// let padded = x.avg_pool1d(AvgPool1dConfig::new(2).padding(1).count_include_pad(false));
    /// assert_eq!(padded.to_vec(), vec![1.0, 2.5, 6.0]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 2-D or 3-D, an option is 0, the padding is more than half the
    /// window, or the input is too small for one window.
    #[track_caller]
    pub fn avg_pool1d(&self, cfg: AvgPool1dConfig) -> Tensor<E> {
        let spec = Spec::one_d(cfg.kernel_size, cfg.stride, cfg.padding, 1, cfg.ceil_mode);
        self.avg_pool_spec("avg_pool1d", &spec, 1, cfg.count_include_pad, None)
    }

    /// 2-D average pooling over the last two dims of a `[N, C, H, W]` (or `[C, H, W]`) input,
    /// PyTorch's `F.avg_pool2d`. ∂/∂x spreads each output's gradient evenly over its window.
    ///
    /// ```
    /// use tensorgrad::{AvgPool2dConfig, Tensor};
    /// let x = Tensor::<f32>::arange(16).reshape(&[1, 1, 4, 4]);
    /// assert_eq!(x.avg_pool2d(AvgPool2dConfig::new(2)).to_vec(), vec![2.5, 4.5, 10.5, 12.5]);
    /// ```
    ///
    /// # Panics
    /// As [`avg_pool1d`](Self::avg_pool1d), for 3-D or 4-D inputs, and if `divisor_override`
    /// is 0.
    #[track_caller]
    pub fn avg_pool2d(&self, cfg: AvgPool2dConfig) -> Tensor<E> {
        let spec = Spec::two_d(cfg.kernel_size, cfg.stride, cfg.padding, [1, 1], cfg.ceil_mode);
        self.avg_pool_spec("avg_pool2d", &spec, 2, cfg.count_include_pad, cfg.divisor_override)
    }

    /// 1-D adaptive average pooling of a `[N, C, L]` (or `[C, L]`) input to `output_size`
    /// (PyTorch's `F.adaptive_avg_pool1d`): output `i` is the mean of positions
    /// `⌊i·L/out⌋..⌈(i+1)·L/out⌉` (windows may overlap; the output may be longer than the input).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0], &[1, 5]);
    /// assert_eq!(x.adaptive_avg_pool1d(2).to_vec(), vec![2.0, 4.0]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 2-D or 3-D or `output_size` is 0.
    #[track_caller]
    pub fn adaptive_avg_pool1d(&self, output_size: usize) -> Tensor<E> {
        let op = "adaptive_avg_pool1d";
        let (lead, hw) = split_shape(op, self.shape(), 1);
        check_output_size(op, &[output_size], self.shape());
        let geo = Geometry { h: 1, w: hw[1], rows: adaptive_windows(1, 1), cols: adaptive_windows(hw[1], output_size) };
        self.adaptive_avg(op, geo, with_spatial(&lead, [1, output_size], 1))
    }

    /// 2-D adaptive average pooling of a `[N, C, H, W]` (or `[C, H, W]`) input to
    /// `output_size` `[oh, ow]` (PyTorch's `F.adaptive_avg_pool2d`), with the windows of
    /// [`adaptive_avg_pool1d`](Self::adaptive_avg_pool1d) in each dim. `[1, 1]` is global
    /// average pooling.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let x = Tensor::<f32>::arange(8).reshape(&[2, 2, 2]);
    /// assert_eq!(x.adaptive_avg_pool2d([1, 1]).to_vec(), vec![1.5, 5.5]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 3-D or 4-D or an output size is 0.
    #[track_caller]
    pub fn adaptive_avg_pool2d(&self, output_size: [usize; 2]) -> Tensor<E> {
        let op = "adaptive_avg_pool2d";
        let (lead, hw) = split_shape(op, self.shape(), 2);
        check_output_size(op, &output_size, self.shape());
        let geo = Geometry {
            h: hw[0],
            w: hw[1],
            rows: adaptive_windows(hw[0], output_size[0]),
            cols: adaptive_windows(hw[1], output_size[1]),
        };
        self.adaptive_avg(op, geo, with_spatial(&lead, output_size, 2))
    }

    /// An adaptive average pooling: each window divided by its size.
    fn adaptive_avg(&self, op: &'static str, geo: Geometry, out_shape: Vec<usize>) -> Tensor<E> {
        let mut scale = Vec::with_capacity(geo.out_plane());
        for r in &geo.rows {
            for c in &geo.cols {
                scale.push(E::one() / E::from_usize(r.count * c.count).unwrap_or_else(E::nan));
            }
        }
        self.avg_plan(op, geo, scale, out_shape)
    }

    /// An average pooling given its options.
    #[track_caller]
    fn avg_pool_spec(
        &self,
        op: &'static str,
        spec: &Spec,
        dims: usize,
        count_include_pad: bool,
        divisor_override: Option<usize>,
    ) -> Tensor<E> {
        let (lead, hw) = split_shape(op, self.shape(), dims);
        spec.check(op, dims);
        if divisor_override == Some(0) {
            panic!("{op}: divisor_override must be greater than zero, got 0");
        }
        let o = out_sizes(op, spec, hw, self.shape(), dims);
        let (rows, rpad) = avg_windows(hw[0], spec.k[0], spec.s[0], spec.p[0], o[0]);
        let (cols, cpad) = avg_windows(hw[1], spec.k[1], spec.s[1], spec.p[1], o[1]);
        let mut scale = Vec::with_capacity(o[0] * o[1]);
        for (r, rp) in rows.iter().zip(&rpad) {
            for (c, cp) in cols.iter().zip(&cpad) {
                let div = match divisor_override {
                    Some(d) => d,
                    None if count_include_pad => rp * cp,
                    None => r.count * c.count,
                };
                scale.push(E::one() / E::from_usize(div).unwrap_or_else(E::nan));
            }
        }
        let geo = Geometry { h: hw[0], w: hw[1], rows, cols };
        self.avg_plan(op, geo, scale, with_spatial(&lead, o, dims))
    }

    /// Records an average pooling with its plan.
    fn avg_plan(&self, op: &'static str, geo: Geometry, scale: Vec<E>, out_shape: Vec<usize>) -> Tensor<E> {
        let planes = self.numel() / geo.in_plane();
        let plan = Arc::new(AvgPlan { geo, scale, planes, in_shape: self.shape().to_vec(), out_shape });
        self.avg_apply(op, &plan)
    }

    /// The average pooling `plan` of `self`; its backward is `avg_adjoint`.
    fn avg_apply(&self, op: &'static str, plan: &Arc<AvgPlan<E>>) -> Tensor<E> {
        let out = with_data(self, |x| avg_pool(Par::current(), x, plan.planes, &plan.geo, &plan.scale));
        let p = Arc::clone(plan);
        Tensor::from_data(out, &plan.out_shape)
            .record(op, [self.clone()], move |c| vec![Some(c.grad().avg_adjoint(&p))])
    }

    /// The adjoint of average pooling (its backward); its own backward is the pooling.
    fn avg_adjoint(&self, plan: &Arc<AvgPlan<E>>) -> Tensor<E> {
        let out = with_data(self, |g| avg_pool_adjoint(Par::current(), g, plan.planes, &plan.geo, &plan.scale));
        let p = Arc::clone(plan);
        Tensor::from_data(out, &plan.in_shape)
            .record("avg_pool_backward", [self.clone()], move |c| vec![Some(c.grad().avg_apply("avg_pool", &p))])
    }
}

/// Panics if an adaptive pooling's output size is 0.
#[track_caller]
fn check_output_size(op: &str, output_size: &[usize], shape: &[usize]) {
    if output_size.contains(&0) {
        panic!("{op}: output_size {output_size:?} must be positive (input of shape {shape:?})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lengths_follow_pytorch() {
        assert_eq!(out_len(5, 2, 2, 0, 1, false), Some(2));
        assert_eq!(out_len(5, 2, 2, 0, 1, true), Some(3));
        // ceil_mode drops a last window that would start in the right padding.
        assert_eq!(out_len(5, 2, 2, 1, 1, true), Some(3));
        assert_eq!(out_len(4, 3, 2, 1, 1, true), Some(3));
        assert_eq!(out_len(4, 3, 2, 1, 1, false), Some(2));
        assert_eq!(out_len(1, 3, 1, 0, 1, false), None);
        assert_eq!(out_len(7, 3, 2, 1, 2, false), Some(3));
    }
}
