//! Convolutions with PyTorch's semantics: `conv1d`/`conv2d`, `conv_transpose1d`/`conv_transpose2d`,
//! and im2col/col2im (`F.unfold`/`F.fold`, here [`Tensor::im2col`] and [`Tensor::col2im`]).
//!
//! A 1-D convolution is the 2-D one with a height of 1. Three bilinear primitives do all the
//! work (`kernels::conv`), each recorded with the other two as its backward, so gradients of
//! any order exist:
//!
//! - `F(x, w)`, the convolution;
//! - `T(dy, w)`, its input gradient (= the transposed convolution): `∂F/∂x` applied to `dy`;
//! - `K(x, dy)`, its weight gradient.
//!
//! From `⟨F(x, w), dy⟩ = ⟨x, T(dy, w)⟩ = ⟨w, K(x, dy)⟩`: `F`'s backward is `(T(g, w), K(x, g))`,
//! `T`'s is `(F(g, w), K(g, dy))`, `K`'s is `(T(dy, g), F(x, g))`. A first-order backward so
//! runs the kernels directly (nothing is recorded when recording is off); a recorded one
//! records the same primitives. The bias gradient is `g` summed over images and positions.
//! im2col and col2im are each other's backward. Inputs that are not contiguous are copied
//! once before the kernel.

use std::sync::Arc;

use crate::kernels::Par;
use crate::kernels::conv::{self, ConvGeom};
use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;

/// The padding of a convolution ([`ConvOptions::padding`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvPadding<const D: usize> {
    /// This many zeros on both sides of each spatial dim (PyTorch's `padding=(ph, pw)`).
    Explicit([usize; D]),
    /// No padding (PyTorch's `padding="valid"`).
    Valid,
    /// Enough zeros that the output has the input's size (PyTorch's `padding="same"`; stride 1
    /// only). When the total `dilation·(kernel − 1)` is odd, the extra zero goes after the input
    /// (right/bottom), as in PyTorch.
    Same,
}

impl<const D: usize> From<[usize; D]> for ConvPadding<D> {
    fn from(p: [usize; D]) -> Self {
        ConvPadding::Explicit(p)
    }
}

/// The options of [`Tensor::conv1d`] (`D = 1`) and [`Tensor::conv2d`] (`D = 2`), PyTorch's
/// arguments of the same names; per-dim values are `[h, w]` in 2-D.
///
/// ```
/// use tensorgrad::{Conv2dOptions, ConvPadding};
/// let o = Conv2dOptions { stride: [2, 2], padding: ConvPadding::Explicit([1, 1]), ..Default::default() };
/// assert_eq!((o.dilation, o.groups), ([1, 1], 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvOptions<const D: usize> {
    /// Step of the kernel over the input, per dim (default 1).
    pub stride: [usize; D],
    /// Zeros added around the input (default none).
    pub padding: ConvPadding<D>,
    /// Spacing between the kernel's taps, per dim (default 1).
    pub dilation: [usize; D],
    /// Channels are split into this many groups, each convolved with its own filters
    /// (default 1; `groups = in_channels` is a depthwise convolution). Must divide the input and
    /// output channels.
    pub groups: usize,
}

impl<const D: usize> Default for ConvOptions<D> {
    fn default() -> Self {
        ConvOptions { stride: [1; D], padding: ConvPadding::Explicit([0; D]), dilation: [1; D], groups: 1 }
    }
}

/// [`ConvOptions`] of a 1-D convolution.
pub type Conv1dOptions = ConvOptions<1>;
/// [`ConvOptions`] of a 2-D convolution.
pub type Conv2dOptions = ConvOptions<2>;

/// The options of [`Tensor::conv_transpose1d`] and [`Tensor::conv_transpose2d`], PyTorch's
/// arguments of the same names.
///
/// ```
/// use tensorgrad::ConvTranspose2dOptions;
/// let up = ConvTranspose2dOptions { stride: [2, 2], output_padding: [1, 1], ..Default::default() };
/// assert_eq!(up.padding, [0, 0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTransposeOptions<const D: usize> {
    /// The stride of the convolution this transposes (default 1): the output is about
    /// `stride` times larger.
    pub stride: [usize; D],
    /// The padding of the convolution this transposes (default 0): `dilation·(kernel − 1) −
    /// padding` zeros are added around the input.
    pub padding: [usize; D],
    /// Extra size added to one side of the output, to pick among the sizes a strided
    /// convolution maps to the same size (default 0; must be smaller than the stride or the
    /// dilation).
    pub output_padding: [usize; D],
    /// Spacing between the kernel's taps (default 1).
    pub dilation: [usize; D],
    /// Channel groups, as in [`ConvOptions::groups`] (default 1).
    pub groups: usize,
}

impl<const D: usize> Default for ConvTransposeOptions<D> {
    fn default() -> Self {
        ConvTransposeOptions { stride: [1; D], padding: [0; D], output_padding: [0; D], dilation: [1; D], groups: 1 }
    }
}

/// [`ConvTransposeOptions`] of a 1-D transposed convolution.
pub type ConvTranspose1dOptions = ConvTransposeOptions<1>;
/// [`ConvTransposeOptions`] of a 2-D transposed convolution.
pub type ConvTranspose2dOptions = ConvTransposeOptions<2>;

/// The options of [`Tensor::im2col`] and [`Tensor::col2im`] (PyTorch's `F.unfold`/`F.fold`
/// arguments after `kernel_size`), `[h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoldOptions {
    /// Spacing between the kernel's taps (default 1).
    pub dilation: [usize; 2],
    /// Zeros on both sides of each spatial dim (default 0).
    pub padding: [usize; 2],
    /// Step of the kernel (default 1).
    pub stride: [usize; 2],
}

impl Default for FoldOptions {
    fn default() -> Self {
        FoldOptions { dilation: [1, 1], padding: [0, 0], stride: [1, 1] }
    }
}

/// `[1, a]` for a 1-D value, `a` for a 2-D one: a 1-D convolution is a 2-D one of height 1.
fn two<const D: usize>(a: [usize; D], one: usize) -> [usize; 2] {
    if D == 1 { [one, a[0]] } else { [a[0], a[D - 1]] }
}

/// The contiguous values of `t` (copied only if `t` is a strided view) and where they start.
fn values<E: Element>(t: &Tensor<E>) -> (Arc<Vec<E>>, usize, usize) {
    let c = t.contiguous();
    let off = c.layout().offset();
    (c.data(), off, c.numel())
}

/// Runs `f` on the contiguous values of `t`.
fn with_values<E: Element, R>(t: &Tensor<E>, f: impl FnOnce(&[E]) -> R) -> R {
    let (d, off, n) = values(t);
    f(&d[off..off + n])
}

/// `F(x, w) + bias`: `[n, c, h, w]` by `[oc, c/groups, kh, kw]`.
fn conv_prim<E: Element>(x: &Tensor<E>, w: &Tensor<E>, bias: Option<&Tensor<E>>, g: ConvGeom) -> Tensor<E> {
    let out = with_values(x, |xv| {
        with_values(w, |wv| match bias {
            Some(b) => with_values(b, |bv| conv::forward(Par::current(), xv, wv, Some(bv), &g)),
            None => conv::forward(Par::current(), xv, wv, None, &g),
        })
    });
    let mut inputs = vec![x.clone(), w.clone()];
    inputs.extend(bias.cloned());
    Tensor::from_data(out, &[g.n, g.oc, g.oh, g.ow]).record("conv", inputs, move |c| {
        let gy = c.grad();
        let (x, w) = (&c.inputs[0], &c.inputs[1]);
        let mut grads =
            vec![c.needs(0).then(|| input_grad_prim(gy, w, g)), c.needs(1).then(|| weight_grad_prim(x, gy, g))];
        if c.inputs.len() == 3 {
            grads.push(c.needs(2).then(|| bias_grad(gy, g)));
        }
        grads
    })
}

/// The bias gradient: `g` `[n, oc, oh, ow]` summed over all but the channels.
fn bias_grad<E: Element>(gy: &Tensor<E>, g: ConvGeom) -> Tensor<E> {
    if crate::is_grad_enabled() && gy.needs_grad() {
        return gy.sum_dims_keepdim(&[0, 2, 3]).reshape(&[g.oc]);
    }
    let db = with_values(gy, |v| conv::bias_grad(v, g.n, g.oc, g.l_out()));
    Tensor::from_data(db, &[g.oc])
}

/// `T(dy, w)`: the input gradient of [`conv_prim`], `[n, oc, oh, ow]` → `[n, c, h, w]`.
fn input_grad_prim<E: Element>(dy: &Tensor<E>, w: &Tensor<E>, g: ConvGeom) -> Tensor<E> {
    let out = with_values(dy, |dv| with_values(w, |wv| conv::input_grad(Par::current(), dv, wv, &g)));
    Tensor::from_data(out, &[g.n, g.c, g.h, g.w]).record("conv_transpose", [dy.clone(), w.clone()], move |c| {
        let gx = c.grad();
        let (dy, w) = (&c.inputs[0], &c.inputs[1]);
        vec![c.needs(0).then(|| conv_prim(gx, w, None, g)), c.needs(1).then(|| weight_grad_prim(gx, dy, g))]
    })
}

/// `K(x, dy)`: the weight gradient of [`conv_prim`], `[oc, c/groups, kh, kw]`.
fn weight_grad_prim<E: Element>(x: &Tensor<E>, dy: &Tensor<E>, g: ConvGeom) -> Tensor<E> {
    let out = with_values(x, |xv| with_values(dy, |dv| conv::weight_grad(Par::current(), xv, dv, &g)));
    let shape = [g.oc, g.c / g.groups, g.kh, g.kw];
    Tensor::from_data(out, &shape).record("conv_weight_grad", [x.clone(), dy.clone()], move |c| {
        let gw = c.grad();
        let (x, dy) = (&c.inputs[0], &c.inputs[1]);
        vec![c.needs(0).then(|| input_grad_prim(dy, gw, g)), c.needs(1).then(|| conv_prim(x, gw, None, g))]
    })
}

/// im2col of `[n, c, h, w]` → `[n, c·kh·kw, oh·ow]`; its backward is [`fold_prim`].
fn unfold_prim<E: Element>(x: &Tensor<E>, g: ConvGeom) -> Tensor<E> {
    let out = with_values(x, |v| conv::unfold(Par::current(), v, &g));
    Tensor::from_data(out, &[g.n, g.c * g.kh * g.kw, g.l_out()])
        .record("im2col", [x.clone()], move |c| vec![Some(fold_prim(c.grad(), g))])
}

/// col2im of `[n, c·kh·kw, oh·ow]` → `[n, c, h, w]`; its backward is [`unfold_prim`].
fn fold_prim<E: Element>(cols: &Tensor<E>, g: ConvGeom) -> Tensor<E> {
    let out = with_values(cols, |v| conv::fold(Par::current(), v, &g));
    Tensor::from_data(out, &[g.n, g.c, g.h, g.w])
        .record("col2im", [cols.clone()], move |c| vec![Some(unfold_prim(c.grad(), g))])
}

/// `(in + lo + hi − dilation·(kernel − 1) − 1) / stride + 1`, or `None` when the padded input
/// is smaller than the dilated kernel.
fn out_size(input: usize, lo: usize, hi: usize, k: usize, s: usize, d: usize) -> Option<usize> {
    let span = d * (k - 1) + 1;
    (input + lo + hi >= span).then(|| (input + lo + hi - span) / s + 1)
}

impl<E: Element> Tensor<E> {
    /// 2-D convolution (PyTorch's `F.conv2d`, a cross-correlation): input `[N, C, H, W]` (or
    /// unbatched `[C, H, W]`), `weight` `[OC, C/groups, kh, kw]`, `bias` `[OC]` → `[N, OC, OH,
    /// OW]` with `OH = (H + pad_top + pad_bottom − dilation·(kh − 1) − 1) / stride + 1`.
    ///
    /// ∂x is the transposed convolution of the output gradient by the weight
    /// ([`conv_transpose2d`](Self::conv_transpose2d)), ∂weight the correlation of the input with
    /// the output gradient summed over images, ∂bias the output gradient summed over images and
    /// positions. Differentiable to any order.
    ///
    /// ```
    /// use tensorgrad::{Conv2dOptions, ConvPadding, Tensor};
    /// let x = Tensor::<f64>::ones(&[1, 1, 4, 4]);
    /// let w = Tensor::ones(&[2, 1, 3, 3]);
    /// let b = Tensor::from_slice(&[0.0, 1.0]);
    /// let y = x.conv2d(&w, Some(&b), Conv2dOptions { padding: ConvPadding::Same, ..Default::default() });
    /// assert_eq!(y.shape(), &[1, 2, 4, 4]);
    /// assert_eq!(y.get(&[0, 0, 0, 0]), 4.0); // a corner sees 2×2 ones
    /// assert_eq!(y.get(&[0, 1, 1, 1]), 10.0); // an inner pixel sees 9, plus the bias
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit (input not 3-D/4-D, weight not 4-D, channels ≠ `weight`'s
    /// in-channels × groups, groups not dividing the channels, bias not `[OC]`), a stride or
    /// dilation is 0, `Same` padding is used with a stride above 1, or the output would be empty.
    #[track_caller]
    pub fn conv2d(&self, weight: &Tensor<E>, bias: Option<&Tensor<E>>, options: Conv2dOptions) -> Tensor<E> {
        self.conv_nd("conv2d", weight, bias, options)
    }

    /// 1-D convolution (PyTorch's `F.conv1d`): input `[N, C, L]` (or unbatched `[C, L]`),
    /// `weight` `[OC, C/groups, k]`, `bias` `[OC]` → `[N, OC, OL]`. As
    /// [`conv2d`](Self::conv2d) with a height of 1.
    ///
    /// ```
    /// use tensorgrad::{Conv1dOptions, Tensor};
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 4]);
    /// let w = Tensor::from_vec(vec![1.0, -1.0], &[1, 1, 2]);
    /// assert_eq!(x.conv1d(&w, None, Conv1dOptions::default()).to_vec(), [-1.0, -1.0, -1.0]);
    /// ```
    ///
    /// # Panics
    /// As [`conv2d`](Self::conv2d).
    #[track_caller]
    pub fn conv1d(&self, weight: &Tensor<E>, bias: Option<&Tensor<E>>, options: Conv1dOptions) -> Tensor<E> {
        self.conv_nd("conv1d", weight, bias, options)
    }

    /// 2-D transposed convolution (PyTorch's `F.conv_transpose2d`, the input gradient of
    /// [`conv2d`](Self::conv2d)): input `[N, C_in, H, W]` (or unbatched), `weight` `[C_in,
    /// C_out/groups, kh, kw]`, `bias` `[C_out]` → `[N, C_out, OH, OW]` with `OH = (H − 1)·stride
    /// − 2·padding + dilation·(kh − 1) + output_padding + 1`.
    ///
    /// ```
    /// use tensorgrad::{ConvTranspose2dOptions, Tensor};
    /// let x = Tensor::<f64>::ones(&[1, 1, 2, 2]);
    /// let w = Tensor::ones(&[1, 1, 2, 2]);
    /// let opts = ConvTranspose2dOptions { stride: [2, 2], ..Default::default() };
    /// let y = x.conv_transpose2d(&w, None, opts); // each input pixel becomes a 2×2 block
    /// assert_eq!(y.shape(), &[1, 1, 4, 4]);
    /// assert!(y.to_vec().iter().all(|&v| v == 1.0));
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit (as [`conv2d`](Self::conv2d), with the weight's first dim the
    /// input channels), `output_padding` is not smaller than the stride or the dilation, or the
    /// output would be empty.
    #[track_caller]
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor<E>,
        bias: Option<&Tensor<E>>,
        options: ConvTranspose2dOptions,
    ) -> Tensor<E> {
        self.conv_transpose_nd("conv_transpose2d", weight, bias, options)
    }

    /// 1-D transposed convolution (PyTorch's `F.conv_transpose1d`): input `[N, C_in, L]`,
    /// `weight` `[C_in, C_out/groups, k]`, `bias` `[C_out]` → `[N, C_out, OL]`. As
    /// [`conv_transpose2d`](Self::conv_transpose2d) with a height of 1.
    ///
    /// ```
    /// use tensorgrad::{ConvTranspose1dOptions, Tensor};
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[1, 1, 2]);
    /// let w = Tensor::from_vec(vec![1.0, 10.0], &[1, 1, 2]);
    /// let y = x.conv_transpose1d(&w, None, ConvTranspose1dOptions::default());
    /// assert_eq!(y.to_vec(), [1.0, 12.0, 20.0]);
    /// ```
    ///
    /// # Panics
    /// As [`conv_transpose2d`](Self::conv_transpose2d).
    #[track_caller]
    pub fn conv_transpose1d(
        &self,
        weight: &Tensor<E>,
        bias: Option<&Tensor<E>>,
        options: ConvTranspose1dOptions,
    ) -> Tensor<E> {
        self.conv_transpose_nd("conv_transpose1d", weight, bias, options)
    }

    /// im2col, PyTorch's `F.unfold(input, kernel_size, dilation, padding, stride)` (named apart
    /// from PyTorch's `Tensor.unfold(dim, size, step)`, which is another op): input `[N, C, H,
    /// W]` (or unbatched `[C, H, W]`) → `[N, C·kh·kw, L]`, one column per position of the
    /// kernel, `L` the number of positions. Its backward is [`col2im`](Self::col2im).
    ///
    /// ```
    /// use tensorgrad::{FoldOptions, Tensor};
    /// let x = Tensor::<f64>::arange(9).reshape(&[1, 1, 3, 3]);
    /// let cols = x.im2col([2, 2], FoldOptions::default());
    /// assert_eq!(cols.shape(), &[1, 4, 4]);
    /// assert_eq!(cols.to_vec()[..4], [0.0, 1.0, 3.0, 4.0]); // top-left tap at each position
    /// ```
    ///
    /// # Panics
    /// If the input is not 3-D/4-D, a kernel size, stride or dilation is 0, or the padded input is
    /// smaller than the dilated kernel.
    #[track_caller]
    pub fn im2col(&self, kernel_size: [usize; 2], options: FoldOptions) -> Tensor<E> {
        const OP: &str = "im2col";
        let unbatched = match self.ndim() {
            3 => true,
            4 => false,
            _ => panic!("{OP}: expected input [N, C, H, W] or [C, H, W], got {:?}", self.shape()),
        };
        let x = if unbatched { self.unsqueeze(0) } else { self.clone() };
        let s = x.shape();
        let g = fold_geom(OP, s[0], s[1], [s[2], s[3]], kernel_size, options, s);
        let y = unfold_prim(&x, g);
        if unbatched { y.squeeze(0) } else { y }
    }

    /// col2im, PyTorch's `F.fold(input, output_size, kernel_size, dilation, padding, stride)`:
    /// columns `[N, C·kh·kw, L]` (or unbatched `[C·kh·kw, L]`) are summed back into an image
    /// `[N, C, output_size[0], output_size[1]]`, overlapping positions added. The adjoint of
    /// [`im2col`](Self::im2col), and its backward.
    ///
    /// ```
    /// use tensorgrad::{FoldOptions, Tensor};
    /// let x = Tensor::<f64>::ones(&[1, 1, 3, 3]);
    /// let back = x.im2col([2, 2], FoldOptions::default()).col2im([3, 3], [2, 2], FoldOptions::default());
    /// assert_eq!(back.to_vec(), [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]); // taps per pixel
    /// ```
    ///
    /// # Panics
    /// If the input is not 2-D/3-D, its second-to-last dim is not a multiple of `kh·kw`, its last
    /// dim is not the number of kernel positions in `output_size`, or as [`im2col`](Self::im2col).
    #[track_caller]
    pub fn col2im(&self, output_size: [usize; 2], kernel_size: [usize; 2], options: FoldOptions) -> Tensor<E> {
        const OP: &str = "col2im";
        let unbatched = match self.ndim() {
            2 => true,
            3 => false,
            _ => panic!("{OP}: expected input [N, C·kh·kw, L] or [C·kh·kw, L], got {:?}", self.shape()),
        };
        let x = if unbatched { self.unsqueeze(0) } else { self.clone() };
        let s = x.shape();
        let kk = kernel_size[0] * kernel_size[1];
        if kk == 0 || s[1] % kk != 0 {
            panic!(
                "{OP}: input {:?}: dim 1 ({}) must be a multiple of the kernel's {kernel_size:?} size {kk}",
                self.shape(),
                s[1]
            );
        }
        let g = fold_geom(OP, s[0], s[1] / kk, output_size, kernel_size, options, self.shape());
        if g.l_out() != s[2] {
            panic!(
                "{OP}: input {:?} has {} columns, but output_size {output_size:?} with kernel {kernel_size:?}, \
                 dilation {:?}, padding {:?} and stride {:?} has {} positions ({}×{})",
                self.shape(),
                s[2],
                options.dilation,
                options.padding,
                options.stride,
                g.l_out(),
                g.oh,
                g.ow
            );
        }
        let y = fold_prim(&x, g);
        if unbatched { y.squeeze(0) } else { y }
    }

    /// The convolution of either dimensionality, as a 2-D one.
    #[track_caller]
    pub(crate) fn conv_nd<const D: usize>(
        &self,
        op: &str,
        weight: &Tensor<E>,
        bias: Option<&Tensor<E>>,
        o: ConvOptions<D>,
    ) -> Tensor<E> {
        let (xs, ws) = (self.shape(), weight.shape());
        let unbatched = if self.ndim() == D + 1 {
            true
        } else if self.ndim() == D + 2 {
            false
        } else {
            let want = if D == 1 { "[N, C, L] or [C, L]" } else { "[N, C, H, W] or [C, H, W]" };
            panic!("{op}: expected input {want}, got {xs:?} (weight {ws:?})");
        };
        if weight.ndim() != D + 2 {
            let want = if D == 1 {
                "[out_channels, in_channels/groups, k]"
            } else {
                "[out_channels, in_channels/groups, kh, kw]"
            };
            panic!("{op}: expected weight {want}, got {ws:?} (input {xs:?})");
        }
        let x = if unbatched { self.unsqueeze(0) } else { self.clone() };
        let (n, c) = (x.shape()[0], x.shape()[1]);
        let (oc, cg) = (ws[0], ws[1]);
        let groups = o.groups;
        if groups == 0 || c % groups != 0 || oc % groups != 0 {
            panic!(
                "{op}: groups {groups} must divide the input channels {c} and the output channels {oc} (input {xs:?}, \
                 weight {ws:?})"
            );
        }
        if cg * groups != c {
            panic!(
                "{op}: input {xs:?} has {c} channels, but weight {ws:?} with groups {groups} expects {} channels",
                cg * groups
            );
        }
        if let Some(b) = bias
            && b.shape() != [oc]
        {
            panic!("{op}: bias has shape {:?}, expected [{oc}] (weight {ws:?})", b.shape());
        }
        check_steps(op, "stride", &o.stride);
        check_steps(op, "dilation", &o.dilation);
        let spatial: [usize; D] = std::array::from_fn(|i| x.shape()[2 + i]);
        let kernel: [usize; D] = std::array::from_fn(|i| ws[2 + i]);
        if kernel.contains(&0) {
            panic!("{op}: weight {ws:?} has an empty kernel");
        }
        // Padding before and after, per dim.
        let pads: [(usize, usize); D] = std::array::from_fn(|i| match o.padding {
            ConvPadding::Explicit(p) => (p[i], p[i]),
            ConvPadding::Valid => (0, 0),
            ConvPadding::Same => {
                let total = o.dilation[i] * (kernel[i] - 1);
                (total / 2, total - total / 2)
            }
        });
        if o.padding == ConvPadding::Same && o.stride.iter().any(|&s| s != 1) {
            panic!("{op}: padding Same is not supported for strided convolutions (stride {:?})", o.stride);
        }
        let outs: [usize; D] = std::array::from_fn(|i| {
            out_size(spatial[i], pads[i].0, pads[i].1, kernel[i], o.stride[i], o.dilation[i]).unwrap_or_else(|| {
                panic!(
                    "{op}: input {xs:?} padded by {:?} is smaller than weight {ws:?}'s kernel dilated by {:?}: the output \
                     would be empty",
                    pads.map(|p| p.0),
                    o.dilation
                )
            })
        });
        let ([h, w], [kh, kw], [oh, ow]) = (two(spatial, 1), two(kernel, 1), two(outs, 1));
        let ([sh, sw], [dh, dw]) = (two(o.stride, 1), two(o.dilation, 1));
        let [ph, pw] = two(pads.map(|p| p.0), 0);
        let g = ConvGeom { n, c, oc, groups, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw };
        let x4 = if D == 1 { x.unsqueeze(2) } else { x };
        let w4 = if D == 1 { weight.unsqueeze(2) } else { weight.clone() };
        let y = conv_prim(&x4, &w4, bias, g);
        let y = if D == 1 { y.squeeze(2) } else { y };
        if unbatched { y.squeeze(0) } else { y }
    }

    /// The transposed convolution of either dimensionality, as a 2-D one.
    #[track_caller]
    pub(crate) fn conv_transpose_nd<const D: usize>(
        &self,
        op: &str,
        weight: &Tensor<E>,
        bias: Option<&Tensor<E>>,
        o: ConvTransposeOptions<D>,
    ) -> Tensor<E> {
        let (xs, ws) = (self.shape(), weight.shape());
        let unbatched = if self.ndim() == D + 1 {
            true
        } else if self.ndim() == D + 2 {
            false
        } else {
            let want = if D == 1 { "[N, C, L] or [C, L]" } else { "[N, C, H, W] or [C, H, W]" };
            panic!("{op}: expected input {want}, got {xs:?} (weight {ws:?})");
        };
        if weight.ndim() != D + 2 {
            let want = if D == 1 {
                "[in_channels, out_channels/groups, k]"
            } else {
                "[in_channels, out_channels/groups, kh, kw]"
            };
            panic!("{op}: expected weight {want}, got {ws:?} (input {xs:?})");
        }
        let x = if unbatched { self.unsqueeze(0) } else { self.clone() };
        let (n, cin) = (x.shape()[0], x.shape()[1]);
        let groups = o.groups;
        if groups == 0 || cin % groups != 0 {
            panic!("{op}: groups {groups} must divide the input channels {cin} (input {xs:?}, weight {ws:?})");
        }
        if ws[0] != cin {
            panic!("{op}: input {xs:?} has {cin} channels, but weight {ws:?} expects {}", ws[0]);
        }
        let cout = ws[1] * groups;
        if let Some(b) = bias
            && b.shape() != [cout]
        {
            panic!("{op}: bias has shape {:?}, expected [{cout}] (weight {ws:?}, groups {groups})", b.shape());
        }
        check_steps(op, "stride", &o.stride);
        check_steps(op, "dilation", &o.dilation);
        let spatial: [usize; D] = std::array::from_fn(|i| x.shape()[2 + i]);
        let kernel: [usize; D] = std::array::from_fn(|i| ws[2 + i]);
        if kernel.contains(&0) || spatial.contains(&0) {
            panic!("{op}: empty input {xs:?} or kernel (weight {ws:?})");
        }
        for i in 0..D {
            if o.output_padding[i] >= o.stride[i] && o.output_padding[i] >= o.dilation[i] {
                panic!(
                    "{op}: output_padding {:?} must be smaller than either the stride {:?} or the dilation {:?}",
                    o.output_padding, o.stride, o.dilation
                );
            }
        }
        let outs: [usize; D] = std::array::from_fn(|i| {
            let full = (spatial[i] - 1) * o.stride[i] + o.dilation[i] * (kernel[i] - 1) + o.output_padding[i] + 1;
            if full <= 2 * o.padding[i] {
                panic!(
                    "{op}: input {xs:?} with weight {ws:?}, stride {:?}, padding {:?}, dilation {:?} and output_padding \
                     {:?} gives an empty output",
                    o.stride, o.padding, o.dilation, o.output_padding
                );
            }
            full - 2 * o.padding[i]
        });
        let ([h, w], [kh, kw], [oh, ow]) = (two(outs, 1), two(kernel, 1), two(spatial, 1));
        let ([sh, sw], [dh, dw], [ph, pw]) = (two(o.stride, 1), two(o.dilation, 1), two(o.padding, 0));
        // The convolution this is the input gradient of: from [n, cout, h, w] to [n, cin, oh, ow].
        let g = ConvGeom { n, c: cout, oc: cin, groups, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw };
        let x4 = if D == 1 { x.unsqueeze(2) } else { x };
        let w4 = if D == 1 { weight.unsqueeze(2) } else { weight.clone() };
        let mut y = input_grad_prim(&x4, &w4, g);
        if let Some(b) = bias {
            y = &y + &b.reshape(&[1, cout, 1, 1]);
        }
        let y = if D == 1 { y.squeeze(2) } else { y };
        if unbatched { y.squeeze(0) } else { y }
    }
}

/// Panics unless every value of a stride or dilation is at least 1.
#[track_caller]
fn check_steps(op: &str, what: &str, v: &[usize]) {
    if v.contains(&0) {
        panic!("{op}: {what} {v:?} must be at least 1 in every dim");
    }
}

/// The geometry of an im2col/col2im of `[n, c, h, w]` images.
#[track_caller]
fn fold_geom(
    op: &str,
    n: usize,
    c: usize,
    [h, w]: [usize; 2],
    [kh, kw]: [usize; 2],
    o: FoldOptions,
    shape: &[usize],
) -> ConvGeom {
    check_steps(op, "stride", &o.stride);
    check_steps(op, "dilation", &o.dilation);
    if kh == 0 || kw == 0 {
        panic!("{op}: kernel_size {:?} must be at least 1 in every dim", [kh, kw]);
    }
    let size = |i: usize, k: usize, d: usize| {
        out_size(i, o.padding[d], o.padding[d], k, o.stride[d], o.dilation[d]).unwrap_or_else(|| {
            panic!(
                "{op}: input {shape:?} (image {:?}) padded by {:?} is smaller than the kernel {:?} dilated by {:?}",
                [h, w],
                o.padding,
                [kh, kw],
                o.dilation
            )
        })
    };
    let (oh, ow) = (size(h, kh, 0), size(w, kw, 1));
    let ([sh, sw], [ph, pw], [dh, dw]) = (o.stride, o.padding, o.dilation);
    ConvGeom { n, c, oc: c, groups: 1, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw }
}
