//! Convolution kernels over contiguous `[N, C, H, W]` buffers (a 1-D convolution is a 2-D one
//! with `H = 1`): im2col ([`unfold`]) and col2im ([`fold`]); the convolution as one GEMM per
//! image and group, `out[g] = W[g] · cols[g]`, written straight into the `[N, OC, OH·OW]`
//! output with the bias added by the GEMM's epilogue; its input gradient (`W[g]ᵀ · dY[g]`, then
//! col2im) and weight gradient (`Σ_images dY[g] · cols[g]ᵀ`); and a direct kernel for depthwise
//! convolutions (`groups = C = OC`), where a GEMM per channel would be one row high.
//!
//! A 1×1 convolution with stride 1 and no padding skips im2col: the image is its own column
//! matrix.
//!
//! **Threads.** A batch of at least as many images as threads runs one image per task (each
//! with its own column buffer); a smaller batch runs image by image with the GEMM (and im2col)
//! split. Only one image's columns exist per task at a time. The weight gradient adds the
//! images in a fixed number of pieces (depending on the batch size only), each summed in
//! order, then the pieces in order, so its bits do not depend on the number of threads; the
//! other outputs are computed by one task each.

use rayon::prelude::*;

use super::Par;
use super::entry::instance;
use super::gemm::{self, BOperand};
use super::matmul::MatRef;
use crate::tensor::element::Element;
use crate::tensor::memory;

/// The geometry of one convolution: input `[n, c, h, w]`, weight `[oc, c / groups, kh, kw]`,
/// output `[n, oc, oh, ow]`. `ph`/`pw` are the zero rows/columns added before the input (at the
/// top and left); what is added after it is implied by `oh`/`ow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub oc: usize,
    pub groups: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub dh: usize,
    pub dw: usize,
}

impl ConvGeom {
    /// Input channels per group.
    fn cg(&self) -> usize {
        self.c / self.groups
    }
    /// Output channels per group.
    fn ocg(&self) -> usize {
        self.oc / self.groups
    }
    /// Kernel positions per channel.
    fn kk(&self) -> usize {
        self.kh * self.kw
    }
    /// Output positions per image.
    fn l(&self) -> usize {
        self.oh * self.ow
    }
    /// Output positions per image (`oh·ow`).
    pub(crate) fn l_out(&self) -> usize {
        self.l()
    }
    /// Values of one input image.
    fn in_img(&self) -> usize {
        self.c * self.h * self.w
    }
    /// Values of one output image.
    fn out_img(&self) -> usize {
        self.oc * self.l()
    }
    /// A 1×1 kernel, stride 1, no padding: the image is its own column matrix.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.ph == 0
            && self.pw == 0
            && self.oh == self.h
            && self.ow == self.w
    }
    /// One filter per channel (`groups = C = OC`): the direct kernel.
    pub(crate) fn is_depthwise(&self) -> bool {
        self.groups == self.c && self.oc == self.c && self.c > 1
    }
    /// Multiply-adds of the whole convolution.
    fn macs(&self) -> usize {
        self.n * self.oc * self.l() * self.cg() * self.kk()
    }
    /// Whether to run one image per task: enough images for every thread and enough work.
    fn batch_par(&self, par: Par) -> bool {
        par.is_parallel() && self.n >= par.threads() && par.for_work(self.macs() as f64 / 8.0).is_parallel()
    }
}

/// The outputs `o` in `0..count` whose input position `o·stride + off − pad` lies in
/// `0..size`, as a range.
fn valid(count: usize, off: usize, pad: usize, stride: usize, size: usize) -> (usize, usize) {
    let lo = if pad > off { (pad - off).div_ceil(stride) } else { 0 };
    let hi = if size + pad > off { (size + pad - off).div_ceil(stride).min(count) } else { 0 };
    (lo.min(hi), hi)
}

/// The columns of one channel plane `x` (`h × w`): `kh·kw` rows of `oh·ow` values.
fn unfold_plane<E: Element>(x: &[E], g: &ConvGeom, out: &mut [E]) {
    let l = g.l();
    for ky in 0..g.kh {
        let (ylo, yhi) = valid(g.oh, ky * g.dh, g.ph, g.sh, g.h);
        for kx in 0..g.kw {
            let (xlo, xhi) = valid(g.ow, kx * g.dw, g.pw, g.sw, g.w);
            let row = &mut out[(ky * g.kw + kx) * l..][..l];
            for oy in 0..g.oh {
                let dst = &mut row[oy * g.ow..][..g.ow];
                if oy < ylo || oy >= yhi || xlo >= xhi {
                    dst.fill(E::zero());
                    continue;
                }
                let iy = oy * g.sh + ky * g.dh - g.ph;
                let src = &x[iy * g.w..][..g.w];
                dst[..xlo].fill(E::zero());
                dst[xhi..].fill(E::zero());
                let ix0 = xlo * g.sw + kx * g.dw - g.pw;
                if g.sw == 1 {
                    dst[xlo..xhi].copy_from_slice(&src[ix0..ix0 + xhi - xlo]);
                } else {
                    for (d, s) in dst[xlo..xhi].iter_mut().zip(src[ix0..].iter().step_by(g.sw)) {
                        *d = *s;
                    }
                }
            }
        }
    }
}

/// Adds the columns `cols` (`kh·kw` rows of `oh·ow`) of one channel back into its plane `x`.
fn fold_plane<E: Element>(cols: &[E], g: &ConvGeom, x: &mut [E]) {
    let l = g.l();
    for ky in 0..g.kh {
        let (ylo, yhi) = valid(g.oh, ky * g.dh, g.ph, g.sh, g.h);
        for kx in 0..g.kw {
            let (xlo, xhi) = valid(g.ow, kx * g.dw, g.pw, g.sw, g.w);
            if xlo >= xhi {
                continue;
            }
            let row = &cols[(ky * g.kw + kx) * l..][..l];
            for oy in ylo..yhi {
                let src = &row[oy * g.ow + xlo..oy * g.ow + xhi];
                let iy = oy * g.sh + ky * g.dh - g.ph;
                let ix0 = xlo * g.sw + kx * g.dw - g.pw;
                let dst = &mut x[iy * g.w..][..g.w];
                if g.sw == 1 {
                    for (d, s) in dst[ix0..ix0 + src.len()].iter_mut().zip(src) {
                        *d += *s;
                    }
                } else {
                    for (d, s) in dst[ix0..].iter_mut().step_by(g.sw).zip(src) {
                        *d += *s;
                    }
                }
            }
        }
    }
}

/// Columns of `planes` consecutive channel planes of `x` into `out` (`kh·kw·oh·ow` per plane),
/// split into tasks of planes when `par` allows.
fn unfold_planes<E: Element>(par: Par, x: &[E], planes: usize, g: &ConvGeom, out: &mut [E]) {
    let (hw, kl) = (g.h * g.w, g.kk() * g.l());
    let (x, out) = (&x[..planes * hw], &mut out[..planes * kl]);
    if par.for_elems(planes * kl).is_parallel() && planes > 1 {
        out.par_chunks_mut(kl).zip(x.par_chunks(hw)).for_each(|(o, p)| unfold_plane(p, g, o));
    } else {
        out.chunks_mut(kl).zip(x.chunks(hw)).for_each(|(o, p)| unfold_plane(p, g, o));
    }
}

/// Folds `planes` planes' columns into `x` (overwritten), as [`unfold_planes`].
fn fold_planes<E: Element>(par: Par, cols: &[E], planes: usize, g: &ConvGeom, x: &mut [E]) {
    let (hw, kl) = (g.h * g.w, g.kk() * g.l());
    let (x, cols) = (&mut x[..planes * hw], &cols[..planes * kl]);
    let one = |(p, c): (&mut [E], &[E])| {
        p.fill(E::zero());
        fold_plane(c, g, p)
    };
    if par.for_elems(planes * kl).is_parallel() && planes > 1 {
        x.par_chunks_mut(hw).zip(cols.par_chunks(kl)).for_each(one);
    } else {
        x.chunks_mut(hw).zip(cols.chunks(kl)).for_each(one);
    }
}

/// im2col (PyTorch's `F.unfold`): `x` is `[n, c, h, w]`, the result `[n, c·kh·kw, oh·ow]`.
pub(crate) fn unfold<E: Element>(par: Par, x: &[E], g: &ConvGeom) -> Vec<E> {
    type F<T> = fn(Par, &[T], &ConvGeom) -> Vec<T>;
    static F32: F<f32> = unfold_impl::<f32>;
    static F64: F<f64> = unfold_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, x, g)
}

fn unfold_impl<E: Element>(par: Par, x: &[E], g: &ConvGeom) -> Vec<E> {
    let planes = g.n * g.c;
    let mut out = memory::take(planes * g.kk() * g.l());
    unfold_planes(par, x, planes, g, &mut out);
    out
}

/// col2im (PyTorch's `F.fold`): `cols` is `[n, c·kh·kw, oh·ow]`, the result `[n, c, h, w]`,
/// overlapping columns added.
pub(crate) fn fold<E: Element>(par: Par, cols: &[E], g: &ConvGeom) -> Vec<E> {
    type F<T> = fn(Par, &[T], &ConvGeom) -> Vec<T>;
    static F32: F<f32> = fold_impl::<f32>;
    static F64: F<f64> = fold_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, cols, g)
}

fn fold_impl<E: Element>(par: Par, cols: &[E], g: &ConvGeom) -> Vec<E> {
    let planes = g.n * g.c;
    let mut out = memory::take(planes * g.h * g.w);
    fold_planes(par, cols, planes, g, &mut out);
    out
}

/// The convolution `[n, c, h, w] ⋆ [oc, c/groups, kh, kw] (+ bias [oc]) → [n, oc, oh, ow]`.
pub(crate) fn forward<E: Element>(par: Par, x: &[E], w: &[E], bias: Option<&[E]>, g: &ConvGeom) -> Vec<E> {
    type F<T> = fn(Par, &[T], &[T], Option<&[T]>, &ConvGeom) -> Vec<T>;
    static F32: F<f32> = forward_impl::<f32>;
    static F64: F<f64> = forward_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, x, w, bias, g)
}

fn forward_impl<E: Element>(par: Par, x: &[E], w: &[E], bias: Option<&[E]>, g: &ConvGeom) -> Vec<E> {
    assert!(x.len() >= g.n * g.in_img() && w.len() >= g.oc * g.cg() * g.kk(), "conv kernel: buffers too small");
    let mut out = memory::take(g.n * g.out_img());
    if out.is_empty() {
        return out;
    }
    if g.is_depthwise() {
        depthwise_forward(par, x, w, bias, g, &mut out);
        return out;
    }
    let cols_len = if g.is_pointwise() { 0 } else { g.c * g.kk() * g.l() };
    let one = |ip: Par, i: usize, o: &mut [E], cols: &mut Vec<E>| {
        let xi = &x[i * g.in_img()..][..g.in_img()];
        let (b, l) = (
            if g.is_pointwise() {
                xi
            } else {
                unfold_planes(ip, xi, g.c, g, cols);
                &cols[..]
            },
            g.l(),
        );
        let (ocg, k) = (g.ocg(), g.cg() * g.kk());
        for grp in 0..g.groups {
            let add_bias = |row: usize, _: usize, v: &mut [E]| {
                if let Some(bias) = bias {
                    let b = bias[grp * ocg + row];
                    v.iter_mut().for_each(|v| *v += b);
                }
            };
            let wm = MatRef { offset: grp * ocg * k, rs: k, cs: 1 };
            let bm = MatRef { offset: grp * k * l, rs: l, cs: 1 };
            let epi: Option<gemm::Epilogue<'_, E>> = if bias.is_some() { Some(&add_bias) } else { None };
            gemm::gemm(ip, ocg, k, l, w, wm, BOperand::Strided(b, bm), &mut o[grp * ocg * l..], l, false, epi);
        }
    };
    if g.batch_par(par) {
        out.par_chunks_mut(g.out_img())
            .enumerate()
            .for_each_init(|| memory::take(cols_len), |cols, (i, o)| one(Par::Seq, i, o, cols));
    } else {
        let mut cols = memory::take(cols_len);
        out.chunks_mut(g.out_img()).enumerate().for_each(|(i, o)| one(par, i, o, &mut cols));
        memory::recycle(cols);
    }
    out
}

/// The input gradient of [`forward`]: `dy` `[n, oc, oh, ow]` → `[n, c, h, w]` (also the
/// transposed convolution of `dy` by `w`).
pub(crate) fn input_grad<E: Element>(par: Par, dy: &[E], w: &[E], g: &ConvGeom) -> Vec<E> {
    type F<T> = fn(Par, &[T], &[T], &ConvGeom) -> Vec<T>;
    static F32: F<f32> = input_grad_impl::<f32>;
    static F64: F<f64> = input_grad_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, dy, w, g)
}

fn input_grad_impl<E: Element>(par: Par, dy: &[E], w: &[E], g: &ConvGeom) -> Vec<E> {
    assert!(dy.len() >= g.n * g.out_img() && w.len() >= g.oc * g.cg() * g.kk(), "conv kernel: buffers too small");
    let mut dx = memory::take(g.n * g.in_img());
    if dx.is_empty() {
        return dx;
    }
    if g.is_depthwise() || g.l() == 0 {
        depthwise_input_grad(par, dy, w, g, &mut dx);
        return dx;
    }
    let pointwise = g.is_pointwise();
    let cols_len = if pointwise { 0 } else { g.c * g.kk() * g.l() };
    let one = |ip: Par, i: usize, dxi: &mut [E], cols: &mut Vec<E>| {
        let dyi = &dy[i * g.out_img()..][..g.out_img()];
        let (ocg, k, l) = (g.ocg(), g.cg() * g.kk(), g.l());
        let target: &mut [E] = if pointwise { &mut *dxi } else { &mut cols[..] };
        for grp in 0..g.groups {
            // W[g]ᵀ: element (j, o) at w[(grp·ocg + o)·k + j].
            let wm = MatRef { offset: grp * ocg * k, rs: 1, cs: k };
            let bm = MatRef { offset: grp * ocg * l, rs: l, cs: 1 };
            gemm::gemm(ip, k, ocg, l, w, wm, BOperand::Strided(dyi, bm), &mut target[grp * k * l..], l, false, None);
        }
        if !pointwise {
            fold_planes(ip, cols, g.c, g, dxi);
        }
    };
    if g.batch_par(par) {
        dx.par_chunks_mut(g.in_img())
            .enumerate()
            .for_each_init(|| memory::take(cols_len), |cols, (i, o)| one(Par::Seq, i, o, cols));
    } else {
        let mut cols = memory::take(cols_len);
        dx.chunks_mut(g.in_img()).enumerate().for_each(|(i, o)| one(par, i, o, &mut cols));
        memory::recycle(cols);
    }
    dx
}

/// The weight gradient of [`forward`] from its input `x` and output gradient `dy`:
/// `[oc, c/groups, kh, kw]`.
pub(crate) fn weight_grad<E: Element>(par: Par, x: &[E], dy: &[E], g: &ConvGeom) -> Vec<E> {
    type F<T> = fn(Par, &[T], &[T], &ConvGeom) -> Vec<T>;
    static F32: F<f32> = weight_grad_impl::<f32>;
    static F64: F<f64> = weight_grad_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, x, dy, g)
}

/// How many pieces the images of a weight gradient are summed in (a function of the batch
/// size only, so the sum's order does not depend on the threads).
const WEIGHT_GRAD_PIECES: usize = 8;

fn weight_grad_impl<E: Element>(par: Par, x: &[E], dy: &[E], g: &ConvGeom) -> Vec<E> {
    assert!(x.len() >= g.n * g.in_img() && dy.len() >= g.n * g.out_img(), "conv kernel: buffers too small");
    let (ocg, k, l) = (g.ocg(), g.cg() * g.kk(), g.l());
    let wlen = g.oc * k;
    if g.is_depthwise() {
        return depthwise_weight_grad(par, x, dy, g);
    }
    if g.n == 0 || l == 0 || wlen == 0 {
        return memory::zeroed(wlen);
    }
    let pointwise = g.is_pointwise();
    let cols_len = if pointwise { 0 } else { g.c * g.kk() * l };
    // Images i0..i1 added into `acc` (zeroed), in order.
    let piece = |ip: Par, i0: usize, i1: usize, acc: &mut [E], cols: &mut Vec<E>| {
        for i in i0..i1 {
            let xi = &x[i * g.in_img()..][..g.in_img()];
            let dyi = &dy[i * g.out_img()..][..g.out_img()];
            let b = if pointwise {
                xi
            } else {
                unfold_planes(ip, xi, g.c, g, cols);
                &cols[..]
            };
            for grp in 0..g.groups {
                let am = MatRef { offset: grp * ocg * l, rs: l, cs: 1 };
                // colsᵀ[g]: element (p, j) at cols[(grp·k + j)·l + p].
                let bm = MatRef { offset: grp * k * l, rs: 1, cs: l };
                gemm::gemm(ip, ocg, l, k, dyi, am, BOperand::Strided(b, bm), &mut acc[grp * ocg * k..], k, true, None);
            }
        }
    };
    let pieces = g.n.min(WEIGHT_GRAD_PIECES);
    let bounds = |p: usize| (p * g.n / pieces, (p + 1) * g.n / pieces);
    let mut partial = memory::zeroed(pieces * wlen);
    if g.batch_par(par) {
        partial.par_chunks_mut(wlen).enumerate().for_each_init(
            || memory::take(cols_len),
            |cols, (p, acc)| {
                let (i0, i1) = bounds(p);
                piece(Par::Seq, i0, i1, acc, cols)
            },
        );
    } else {
        let mut cols = memory::take(cols_len);
        for (p, acc) in partial.chunks_mut(wlen).enumerate() {
            let (i0, i1) = bounds(p);
            piece(par, i0, i1, acc, &mut cols);
        }
        memory::recycle(cols);
    }
    let (first, rest) = partial.split_at_mut(wlen);
    for part in rest.chunks(wlen) {
        first.iter_mut().zip(part).for_each(|(a, &b)| *a += b);
    }
    let out = memory::copied(first);
    memory::recycle(partial);
    out
}

/// The bias gradient: `dy` `[n, oc, l]` summed over images and positions, `[oc]`.
pub(crate) fn bias_grad<E: Element>(dy: &[E], n: usize, oc: usize, l: usize) -> Vec<E> {
    let mut out = vec![E::zero(); oc];
    for img in dy[..n * oc * l].chunks(oc * l.max(1)) {
        for (o, plane) in out.iter_mut().zip(img.chunks(l.max(1))) {
            *o += plane.iter().copied().sum::<E>();
        }
    }
    out
}

/// The direct depthwise convolution, one task per `(image, channel)` plane.
fn depthwise_forward<E: Element>(par: Par, x: &[E], w: &[E], bias: Option<&[E]>, g: &ConvGeom, out: &mut [E]) {
    let (hw, l, kk) = (g.h * g.w, g.l(), g.kk());
    let one = |(p, o): (usize, &mut [E])| {
        let c = p % g.c;
        o.fill(bias.map_or(E::zero(), |b| b[c]));
        let xp = &x[p * hw..][..hw];
        let wc = &w[c * kk..][..kk];
        for ky in 0..g.kh {
            let (ylo, yhi) = valid(g.oh, ky * g.dh, g.ph, g.sh, g.h);
            for kx in 0..g.kw {
                let (xlo, xhi) = valid(g.ow, kx * g.dw, g.pw, g.sw, g.w);
                let wv = wc[ky * g.kw + kx];
                if xlo >= xhi {
                    continue;
                }
                for oy in ylo..yhi {
                    let iy = oy * g.sh + ky * g.dh - g.ph;
                    let ix0 = xlo * g.sw + kx * g.dw - g.pw;
                    let dst = &mut o[oy * g.ow + xlo..oy * g.ow + xhi];
                    let src = &xp[iy * g.w..][..g.w];
                    if g.sw == 1 {
                        dst.iter_mut().zip(&src[ix0..ix0 + xhi - xlo]).for_each(|(d, &s)| *d += wv * s);
                    } else {
                        dst.iter_mut().zip(src[ix0..].iter().step_by(g.sw)).for_each(|(d, &s)| *d += wv * s);
                    }
                }
            }
        }
    };
    if par.for_elems(out.len() * kk).is_parallel() {
        out.par_chunks_mut(l).enumerate().for_each(one);
    } else {
        out.chunks_mut(l).enumerate().for_each(one);
    }
}

/// The input gradient of the depthwise convolution, one task per plane. (Also the general
/// case's answer when the output is empty: zeros.)
fn depthwise_input_grad<E: Element>(par: Par, dy: &[E], w: &[E], g: &ConvGeom, dx: &mut [E]) {
    let (hw, l, kk) = (g.h * g.w, g.l(), g.kk());
    if l == 0 || !g.is_depthwise() {
        dx.fill(E::zero());
        return;
    }
    let one = |(p, o): (usize, &mut [E])| {
        let c = p % g.c;
        o.fill(E::zero());
        let dyp = &dy[p * l..][..l];
        let wc = &w[c * kk..][..kk];
        for ky in 0..g.kh {
            let (ylo, yhi) = valid(g.oh, ky * g.dh, g.ph, g.sh, g.h);
            for kx in 0..g.kw {
                let (xlo, xhi) = valid(g.ow, kx * g.dw, g.pw, g.sw, g.w);
                let wv = wc[ky * g.kw + kx];
                if xlo >= xhi {
                    continue;
                }
                for oy in ylo..yhi {
                    let iy = oy * g.sh + ky * g.dh - g.ph;
                    let ix0 = xlo * g.sw + kx * g.dw - g.pw;
                    let src = &dyp[oy * g.ow + xlo..oy * g.ow + xhi];
                    let dst = &mut o[iy * g.w..][..g.w];
                    if g.sw == 1 {
                        dst[ix0..ix0 + src.len()].iter_mut().zip(src).for_each(|(d, &s)| *d += wv * s);
                    } else {
                        dst[ix0..].iter_mut().step_by(g.sw).zip(src).for_each(|(d, &s)| *d += wv * s);
                    }
                }
            }
        }
    };
    if par.for_elems(dy.len().min(g.n * g.out_img()) * kk).is_parallel() {
        dx.par_chunks_mut(hw).enumerate().for_each(one);
    } else {
        dx.chunks_mut(hw).enumerate().for_each(one);
    }
}

/// The weight gradient of the depthwise convolution, one task per channel (its images in
/// order).
fn depthwise_weight_grad<E: Element>(par: Par, x: &[E], dy: &[E], g: &ConvGeom) -> Vec<E> {
    let (hw, l, kk) = (g.h * g.w, g.l(), g.kk());
    let mut dw = memory::zeroed(g.c * kk);
    let one = |(c, o): (usize, &mut [E])| {
        for img in 0..g.n {
            let p = img * g.c + c;
            let (xp, dyp) = (&x[p * hw..][..hw], &dy[p * l..][..l]);
            for ky in 0..g.kh {
                let (ylo, yhi) = valid(g.oh, ky * g.dh, g.ph, g.sh, g.h);
                for kx in 0..g.kw {
                    let (xlo, xhi) = valid(g.ow, kx * g.dw, g.pw, g.sw, g.w);
                    if xlo >= xhi {
                        continue;
                    }
                    let mut s = E::zero();
                    for oy in ylo..yhi {
                        let iy = oy * g.sh + ky * g.dh - g.ph;
                        let ix0 = xlo * g.sw + kx * g.dw - g.pw;
                        let d = &dyp[oy * g.ow + xlo..oy * g.ow + xhi];
                        let src = &xp[iy * g.w..][..g.w];
                        if g.sw == 1 {
                            s += d.iter().zip(&src[ix0..ix0 + d.len()]).fold(E::zero(), |a, (&d, &x)| a + d * x);
                        } else {
                            s += d.iter().zip(src[ix0..].iter().step_by(g.sw)).fold(E::zero(), |a, (&d, &x)| a + d * x);
                        }
                    }
                    o[ky * g.kw + kx] += s;
                }
            }
        }
    };
    if l > 0 && par.for_elems(g.n * g.out_img() * kk).is_parallel() {
        dw.par_chunks_mut(kk).enumerate().for_each(one);
    } else if l > 0 {
        dw.chunks_mut(kk).enumerate().for_each(one);
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(
        c: usize,
        oc: usize,
        groups: usize,
        (h, w): (usize, usize),
        k: usize,
        s: usize,
        p: usize,
        d: usize,
    ) -> ConvGeom {
        let o = |i: usize| (i + 2 * p - d * (k - 1) - 1) / s + 1;
        ConvGeom {
            n: 2,
            c,
            oc,
            groups,
            h,
            w,
            kh: k,
            kw: k,
            oh: o(h),
            ow: o(w),
            sh: s,
            sw: s,
            ph: p,
            pw: p,
            dh: d,
            dw: d,
        }
    }

    /// The convolution by its definition, one output at a time.
    fn naive(x: &[f64], w: &[f64], g: &ConvGeom) -> Vec<f64> {
        let mut out = vec![0.0; g.n * g.oc * g.l()];
        for n in 0..g.n {
            for o in 0..g.oc {
                let grp = o / g.ocg();
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = 0.0;
                        for ci in 0..g.cg() {
                            let c = grp * g.cg() + ci;
                            for ky in 0..g.kh {
                                for kx in 0..g.kw {
                                    let iy = (oy * g.sh + ky * g.dh) as isize - g.ph as isize;
                                    let ix = (ox * g.sw + kx * g.dw) as isize - g.pw as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                        continue;
                                    }
                                    let xv = x[((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize];
                                    s += xv * w[((o * g.cg() + ci) * g.kh + ky) * g.kw + kx];
                                }
                            }
                        }
                        out[((n * g.oc + o) * g.oh + oy) * g.ow + ox] = s;
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: usize) -> Vec<f64> {
        (0..n).map(|i| ((i * 7919 + seed * 104_729) % 201) as f64 / 50.0 - 2.0).collect()
    }

    #[test]
    fn kernels_match_the_definition_and_each_other() {
        let cases = [
            geom(3, 4, 1, (5, 6), 3, 1, 1, 1),
            geom(4, 6, 2, (7, 5), 2, 2, 1, 1),
            geom(4, 4, 4, (6, 6), 3, 2, 2, 2),
            geom(3, 5, 1, (4, 4), 1, 1, 0, 1),
            geom(2, 2, 2, (5, 7), 3, 1, 0, 1),
            geom(1, 3, 1, (1, 9), 1, 2, 0, 1),
        ];
        for g in cases {
            let x = values(g.n * g.in_img(), 1);
            let w = values(g.oc * g.cg() * g.kk(), 2);
            let want = naive(&x, &w, &g);
            for par in [Par::Seq, Par::Rayon { threads: 2 }] {
                let got = forward(par, &x, &w, None, &g);
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-12, "{g:?}: {a} vs {b}");
                }
                // ⟨conv(x, w), dy⟩ = ⟨x, input_grad(dy, w)⟩ = ⟨w, weight_grad(x, dy)⟩.
                let dy = values(want.len(), 3);
                let lhs: f64 = want.iter().zip(&dy).map(|(a, b)| a * b).sum();
                let dx = input_grad(par, &dy, &w, &g);
                let dw = weight_grad(par, &x, &dy, &g);
                let r1: f64 = dx.iter().zip(&x).map(|(a, b)| a * b).sum();
                let r2: f64 = dw.iter().zip(&w).map(|(a, b)| a * b).sum();
                assert!((lhs - r1).abs() < 1e-9 && (lhs - r2).abs() < 1e-9, "{g:?}: {lhs} {r1} {r2}");
                // fold is unfold's adjoint.
                let cols = unfold(par, &x, &g);
                let c2 = values(cols.len(), 4);
                let back = fold(par, &c2, &g);
                let a: f64 = cols.iter().zip(&c2).map(|(a, b)| a * b).sum();
                let b: f64 = back.iter().zip(&x).map(|(a, b)| a * b).sum();
                assert!((a - b).abs() < 1e-9);
            }
        }
    }
}
