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
//! **Chunks and threads.** Small images are batched: the columns of a chunk of images (about
//! [`CHUNK_COLS`] columns in all) form one matrix, so that a product is not dominated by its
//! packing; a large image is a chunk alone. Only one chunk's columns exist per task at a time.
//! With at least as many chunks as threads, each task runs whole chunks; otherwise chunks run in
//! turn with the GEMM (and im2col) split. The weight gradient adds the chunks in a fixed number
//! of pieces (depending on the problem only), each summed in order, then the pieces in order, so
//! its bits do not depend on the number of threads; every other output is computed by one task.

use std::ops::Range;

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
    /// Stride 1, no padding and short output rows: the products run over *wide* rows, as wide
    /// as the input (positions `ow..w` of each row are computed and dropped), so that each
    /// kernel tap's columns of a channel are one run of the input plane, copied at once
    /// instead of one short row at a time (LeNet's layers).
    fn is_wide(&self) -> bool {
        self.sh == 1
            && self.sw == 1
            && self.ph == 0
            && self.pw == 0
            && self.ow < self.w
            && self.ow <= WIDE_MAX_OW
            && !self.is_pointwise()
    }
    /// Columns of the column matrix per output row: `w` for wide rows, else `ow`.
    fn lw(&self) -> usize {
        if self.is_wide() { self.w } else { self.ow }
    }
    /// Columns of the column matrix per image: `oh · lw`.
    fn lc(&self) -> usize {
        self.oh * self.lw()
    }
    /// Images per product: enough that a product has about [`CHUNK_COLS`] columns (one image
    /// when it has that many alone, and always for a 1×1 convolution), with the chunk's columns
    /// at most [`CHUNK_ELEMS`] values.
    fn chunk(&self) -> usize {
        if self.is_pointwise() {
            return 1;
        }
        let l = self.lc().max(1);
        let by_mem = CHUNK_ELEMS / (self.c * self.kk() * l).max(1);
        CHUNK_COLS.div_ceil(l).min(by_mem).min(self.n).max(1)
    }
    /// Images per product for the forward pass and the input gradient, whose values do not
    /// depend on how the images are chunked: [`chunk`](Self::chunk), made smaller when that
    /// leaves fewer chunks than threads (ResNet's last stages, where a whole batch of 2×2 images
    /// is one chunk), so that the threads take chunks instead of splitting one thin product. The
    /// weight gradient keeps [`chunk`](Self::chunk), which fixes its order of additions.
    fn chunk_for(&self, par: Par) -> usize {
        let cs = self.chunk();
        let t = par.threads();
        if par.is_parallel() && !self.is_pointwise() && self.n >= t && self.n.div_ceil(cs) < t {
            self.n.div_ceil(t)
        } else {
            cs
        }
    }
    /// A task's buffers for a chunk of [`chunk`](Self::chunk) images (see [`Scratch`]).
    fn scratch<E: Element>(&self) -> Scratch<E> {
        self.scratch_for(self.chunk())
    }
    /// A task's buffers for a chunk of `cs` images.
    fn scratch_for<E: Element>(&self, cs: usize) -> Scratch<E> {
        let l = self.lc();
        let cols = if self.is_pointwise() { 0 } else { self.c * self.kk() * cs * l };
        let tmp = if cs > 1 || self.is_wide() { self.oc * cs * l } else { 0 };
        (memory::take(cols), memory::take(tmp))
    }
    /// Whether to run one chunk of images per task: enough chunks for every thread and enough
    /// work.
    fn batch_par(&self, par: Par) -> bool {
        self.batch_par_for(par, self.chunk())
    }
    /// [`batch_par`](Self::batch_par) for chunks of `cs` images.
    fn batch_par_for(&self, par: Par, cs: usize) -> bool {
        par.is_parallel()
            && self.n.div_ceil(cs) >= par.threads()
            && par.for_work(self.macs() as f64 / 8.0).is_parallel()
    }
}

/// Columns per product that small images are batched up to: a product of a few hundred
/// columns spends a large share of its time packing.
const CHUNK_COLS: usize = 1024;
/// Output rows up to this long run as wide rows ([`ConvGeom::is_wide`]).
const WIDE_MAX_OW: usize = 32;
/// At most this many values in a chunk's column matrix (16 MiB of `f32`).
const CHUNK_ELEMS: usize = 1 << 22;

/// The outputs `o` in `0..count` whose input position `o·stride + off − pad` lies in
/// `0..size`, as a range.
fn valid(count: usize, off: usize, pad: usize, stride: usize, size: usize) -> (usize, usize) {
    let lo = if pad > off { (pad - off).div_ceil(stride) } else { 0 };
    let hi = if size + pad > off { (size + pad - off).div_ceil(stride).min(count) } else { 0 };
    (lo.min(hi), hi)
}

/// Where the kernel's taps meet the input, one output row at a time: calls
/// `f(tap, out, iy, ix0)` for each tap `tap = ky·kw + kx` (in order) and each output row in which
/// it lands inside the input, `out` being the output positions `oy·ow + xlo..oy·ow + xhi` it
/// covers there and `iy`, `ix0` the input row and the first input column they read (then every
/// `sw`-th).
fn for_each_tap_row(g: &ConvGeom, mut f: impl FnMut(usize, Range<usize>, usize, usize)) {
    for ky in 0..g.kh {
        let (ylo, yhi) = valid(g.oh, ky * g.dh, g.ph, g.sh, g.h);
        for kx in 0..g.kw {
            let (xlo, xhi) = valid(g.ow, kx * g.dw, g.pw, g.sw, g.w);
            if xlo >= xhi {
                continue;
            }
            let ix0 = xlo * g.sw + kx * g.dw - g.pw;
            for oy in ylo..yhi {
                f(ky * g.kw + kx, oy * g.ow + xlo..oy * g.ow + xhi, oy * g.sh + ky * g.dh - g.ph, ix0);
            }
        }
    }
}

/// `dst[i] += a · row[ix0 + i·step]`: an output row from a strided run of an input row.
#[inline(always)]
fn add_from_strided<E: Element>(dst: &mut [E], row: &[E], ix0: usize, step: usize, a: E) {
    if step == 1 {
        let n = dst.len();
        dst.iter_mut().zip(&row[ix0..ix0 + n]).for_each(|(d, &s)| *d += a * s);
    } else {
        dst.iter_mut().zip(row[ix0..].iter().step_by(step)).for_each(|(d, &s)| *d += a * s);
    }
}

/// `row[ix0 + i·step] += a · src[i]`: the adjoint of [`add_from_strided`].
#[inline(always)]
fn add_to_strided<E: Element>(row: &mut [E], ix0: usize, step: usize, src: &[E], a: E) {
    if step == 1 {
        row[ix0..ix0 + src.len()].iter_mut().zip(src).for_each(|(d, &s)| *d += a * s);
    } else {
        row[ix0..].iter_mut().step_by(step).zip(src).for_each(|(d, &s)| *d += a * s);
    }
}

/// The columns of one channel plane `x` (`h × w`): `kh·kw` rows of `oh·ow` values, `rs` apart
/// in `out`.
fn unfold_plane<E: Element>(x: &[E], g: &ConvGeom, out: &mut [E], rs: usize) {
    let (l, ow) = (g.l(), g.ow);
    for ky in 0..g.kh {
        let (ylo, yhi) = valid(g.oh, ky * g.dh, g.ph, g.sh, g.h);
        for kx in 0..g.kw {
            let (xlo, xhi) = valid(ow, kx * g.dw, g.pw, g.sw, g.w);
            let row = &mut out[(ky * g.kw + kx) * rs..][..l];
            if xlo >= xhi || ylo >= yhi {
                row.fill(E::zero());
                continue;
            }
            // Zeros where the kernel tap falls in the padding: whole rows above and below, and
            // (one pass over the row rather than a short fill per output row) left and right.
            if xlo > 0 || xhi < ow {
                row.fill(E::zero());
            } else {
                row[..ylo * ow].fill(E::zero());
                row[yhi * ow..].fill(E::zero());
            }
            let n = xhi - xlo;
            let first = (ylo * g.sh + ky * g.dh - g.ph) * g.w + xlo * g.sw + kx * g.dw - g.pw;
            let step = g.sh * g.w;
            for (j, d) in row[ylo * ow..yhi * ow].chunks_exact_mut(ow).enumerate() {
                let s0 = first + j * step;
                let d = &mut d[xlo..xhi];
                if g.sw == 1 {
                    copy_row(d, &x[s0..s0 + n]);
                } else {
                    for (d, s) in d.iter_mut().zip(x[s0..].iter().step_by(g.sw)) {
                        *d = *s;
                    }
                }
            }
        }
    }
}

/// `dst = src` for the short rows of im2col: whole blocks of 8 and 4 values are fixed-size
/// copies (moves in registers), where `copy_from_slice` would call `memmove` for every row (a
/// quarter of LeNet's second convolution went into those calls).
#[inline(always)]
fn copy_row<E: Copy>(dst: &mut [E], src: &[E]) {
    let n = dst.len();
    if n > 64 {
        dst.copy_from_slice(&src[..n]);
        return;
    }
    let mut i = 0;
    while i + 8 <= n {
        let d: &mut [E; 8] = (&mut dst[i..i + 8]).try_into().expect("8 values");
        *d = src[i..i + 8].try_into().expect("8 values");
        i += 8;
    }
    if i + 4 <= n {
        let d: &mut [E; 4] = (&mut dst[i..i + 4]).try_into().expect("4 values");
        *d = src[i..i + 4].try_into().expect("4 values");
        i += 4;
    }
    for (d, s) in dst[i..].iter_mut().zip(&src[i..n]) {
        *d = *s;
    }
}

/// Adds the columns `cols` (`kh·kw` rows of `oh·ow`, `rs` apart) of one channel back into its
/// plane `x`.
fn fold_plane<E: Element>(cols: &[E], g: &ConvGeom, x: &mut [E], rs: usize) {
    for_each_tap_row(g, |tap, out, iy, ix0| {
        let src = &cols[tap * rs + out.start..tap * rs + out.end];
        add_to_strided(&mut x[iy * g.w..][..g.w], ix0, g.sw, src, E::one());
    });
}

/// Columns of `planes` consecutive channel planes of `x` into `out` (`kh·kw·oh·ow` per plane),
/// split into tasks of planes when `par` allows.
fn unfold_planes<E: Element>(par: Par, x: &[E], planes: usize, g: &ConvGeom, out: &mut [E]) {
    let (hw, kl) = (g.h * g.w, g.kk() * g.l());
    let (x, out) = (&x[..planes * hw], &mut out[..planes * kl]);
    if par.for_elems(planes * kl).is_parallel() && planes > 1 {
        out.par_chunks_mut(kl).zip(x.par_chunks(hw)).for_each(|(o, p)| unfold_plane(p, g, o, g.l()));
    } else {
        out.chunks_mut(kl).zip(x.chunks(hw)).for_each(|(o, p)| unfold_plane(p, g, o, g.l()));
    }
}

/// Folds `planes` planes' columns into `x` (overwritten), as [`unfold_planes`].
fn fold_planes<E: Element>(par: Par, cols: &[E], planes: usize, g: &ConvGeom, x: &mut [E]) {
    let (hw, kl) = (g.h * g.w, g.kk() * g.l());
    let (x, cols) = (&mut x[..planes * hw], &cols[..planes * kl]);
    let one = |(p, c): (&mut [E], &[E])| {
        p.fill(E::zero());
        fold_plane(c, g, p, g.l())
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
    let (cs, lc, ocg, k) = (g.chunk_for(par), g.lc(), g.ocg(), g.cg() * g.kk());
    let direct = !g.is_wide();
    // Images i0..i0 + m into their output `o`: one product per group over their columns.
    let one = |ip: Par, i0: usize, o: &mut [E], (cols, tmp): &mut Scratch<E>| {
        let m = o.len() / g.out_img();
        let mc = m * lc;
        let b: &[E] = if g.is_pointwise() {
            &x[i0 * g.in_img()..][..g.in_img()]
        } else {
            unfold_chunk(ip, x, g, i0, m, cols);
            cols
        };
        let dst: &mut [E] = if m == 1 && direct { &mut *o } else { &mut tmp[..g.oc * mc] };
        for grp in 0..g.groups {
            let add_bias = |row: usize, _: usize, v: &mut [E]| {
                if let Some(bias) = bias {
                    let b = bias[grp * ocg + row];
                    v.iter_mut().for_each(|v| *v += b);
                }
            };
            let wm = MatRef { offset: grp * ocg * k, rs: k, cs: 1 };
            let bm = MatRef { offset: grp * k * mc, rs: mc, cs: 1 };
            let epi: Option<gemm::Epilogue<'_, E>> = if bias.is_some() { Some(&add_bias) } else { None };
            gemm::gemm(ip, ocg, k, mc, w, wm, BOperand::Strided(b, bm), &mut dst[grp * ocg * mc..], mc, false, epi);
        }
        if m > 1 || !direct {
            // [OC, m·L] → m images of [OC, L] (dropping the ends of wide rows).
            let (ow, lw) = (g.ow, g.lw());
            for (i, img) in o.chunks_mut(g.out_img()).enumerate() {
                for (oc, plane) in img.chunks_mut(g.l()).enumerate() {
                    let src = &tmp[oc * mc + i * lc..][..lc];
                    for (d, s) in plane.chunks_exact_mut(ow).zip(src.chunks(lw)) {
                        copy_row(d, &s[..ow]);
                    }
                }
            }
        }
    };
    let scratch = || g.scratch_for::<E>(cs);
    if g.batch_par_for(par, cs) {
        out.par_chunks_mut(cs * g.out_img())
            .enumerate()
            .for_each_init(scratch, |s, (c, o)| one(Par::Seq, c * cs, o, s));
    } else {
        let mut s = scratch();
        out.chunks_mut(cs * g.out_img()).enumerate().for_each(|(c, o)| one(par, c * cs, o, &mut s));
        recycle(s);
    }
    out
}

/// A task's buffers: the columns of a chunk of images, and its outputs (or output gradients) as
/// one `[OC, m·L]` matrix.
type Scratch<E> = (Vec<E>, Vec<E>);

fn recycle<E: Element>((a, b): Scratch<E>) {
    memory::recycle(a);
    memory::recycle(b);
}

/// The output gradients of images `i0..i0 + m` as one `[OC, m·L]` matrix in `tmp` (or, for one
/// image, in place).
fn gather<'a, E: Element>(dy: &'a [E], g: &ConvGeom, i0: usize, m: usize, tmp: &'a mut [E]) -> &'a [E] {
    let (l, lc, img) = (g.l(), g.lc(), g.out_img());
    if m == 1 && !g.is_wide() {
        return &dy[i0 * img..][..img];
    }
    let mc = m * lc;
    let tmp = &mut tmp[..g.oc * mc];
    if g.is_wide() {
        // The dropped ends of wide rows get a zero gradient.
        tmp.fill(E::zero());
    }
    let (ow, lw) = (g.ow, g.lw());
    for i in 0..m {
        for (oc, plane) in dy[(i0 + i) * img..][..img].chunks(l).enumerate() {
            let dst = &mut tmp[oc * mc + i * lc..][..lc];
            for (d, s) in dst.chunks_mut(lw).zip(plane.chunks_exact(ow)) {
                copy_row(&mut d[..ow], s);
            }
        }
    }
    tmp
}

/// The columns of images `i0..i0 + m` into `cols`, `[C·kh·kw, m·L]` (image `i`'s in columns
/// `i·L..(i + 1)·L`), split by channel when `par` allows.
fn unfold_chunk<E: Element>(par: Par, x: &[E], g: &ConvGeom, i0: usize, m: usize, cols: &mut [E]) {
    let (hw, l, kk) = (g.h * g.w, g.lc(), g.kk());
    let rs = m * l;
    let rows = &mut cols[..g.c * kk * rs];
    let wide = g.is_wide();
    let channel = |(c, out): (usize, &mut [E])| {
        for i in 0..m {
            let plane = &x[((i0 + i) * g.c + c) * hw..][..hw];
            if wide {
                // Tap (ky, kx) sees the plane from (ky·dh, kx·dw) on, in one run.
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let start = ky * g.dh * g.w + kx * g.dw;
                        let n = l.min(hw - start);
                        let dst = &mut out[(ky * g.kw + kx) * rs + i * l..][..l];
                        dst[..n].copy_from_slice(&plane[start..start + n]);
                        dst[n..].fill(E::zero());
                    }
                }
            } else {
                unfold_plane(plane, g, &mut out[i * l..], rs);
            }
        }
    };
    if g.c > 1 && par.for_elems(rows.len()).is_parallel() {
        rows.par_chunks_mut(kk * rs).enumerate().for_each(channel);
    } else {
        rows.chunks_mut(kk * rs).enumerate().for_each(channel);
    }
}

/// Folds the columns of `m` images (laid out as [`unfold_chunk`] makes them) into their input
/// gradient `dx` (`m` images, overwritten), split by plane when `par` allows.
fn fold_chunk<E: Element>(par: Par, cols: &[E], g: &ConvGeom, m: usize, dx: &mut [E]) {
    let (hw, l, kk) = (g.h * g.w, g.lc(), g.kk());
    let rs = m * l;
    let wide = g.is_wide();
    let plane = |(q, p): (usize, &mut [E])| {
        let (i, c) = (q / g.c, q % g.c);
        p.fill(E::zero());
        let cols = &cols[c * kk * rs + i * l..];
        if wide {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let start = ky * g.dh * g.w + kx * g.dw;
                    let n = l.min(hw - start);
                    let src = &cols[(ky * g.kw + kx) * rs..][..n];
                    p[start..start + n].iter_mut().zip(src).for_each(|(d, &s)| *d += s);
                }
            }
        } else {
            fold_plane(cols, g, p, rs);
        }
    };
    let dx = &mut dx[..m * g.in_img()];
    if par.for_elems(g.c * kk * rs).is_parallel() && dx.len() > hw {
        dx.par_chunks_mut(hw).enumerate().for_each(plane);
    } else {
        dx.chunks_mut(hw).enumerate().for_each(plane);
    }
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
    let (cs, l, ocg, k) = (g.chunk_for(par), g.lc(), g.ocg(), g.cg() * g.kk());
    let pointwise = g.is_pointwise();
    // Images i0..i0 + m: the columns' gradient W[g]ᵀ·dY[g] per group, folded into `dxc`.
    let one = |ip: Par, i0: usize, dxc: &mut [E], (cols, tmp): &mut Scratch<E>| {
        let m = dxc.len() / g.in_img();
        let mc = m * l;
        let b = gather(dy, g, i0, m, tmp);
        let target: &mut [E] = if pointwise { &mut *dxc } else { &mut cols[..] };
        for grp in 0..g.groups {
            // W[g]ᵀ: element (j, o) at w[(grp·ocg + o)·k + j].
            let wm = MatRef { offset: grp * ocg * k, rs: 1, cs: k };
            let bm = MatRef { offset: grp * ocg * mc, rs: mc, cs: 1 };
            gemm::gemm(ip, k, ocg, mc, w, wm, BOperand::Strided(b, bm), &mut target[grp * k * mc..], mc, false, None);
        }
        if !pointwise {
            fold_chunk(ip, cols, g, m, dxc);
        }
    };
    let scratch = || g.scratch_for::<E>(cs);
    if g.batch_par_for(par, cs) {
        dx.par_chunks_mut(cs * g.in_img()).enumerate().for_each_init(scratch, |s, (c, o)| one(Par::Seq, c * cs, o, s));
    } else {
        let mut s = scratch();
        dx.chunks_mut(cs * g.in_img()).enumerate().for_each(|(c, o)| one(par, c * cs, o, &mut s));
        recycle(s);
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

/// How many pieces the chunks of images of a weight gradient are summed in (a function of the
/// problem only, so the sum's order does not depend on the threads).
const WEIGHT_GRAD_PIECES: usize = 8;

fn weight_grad_impl<E: Element>(par: Par, x: &[E], dy: &[E], g: &ConvGeom) -> Vec<E> {
    assert!(x.len() >= g.n * g.in_img() && dy.len() >= g.n * g.out_img(), "conv kernel: buffers too small");
    let (ocg, k, l) = (g.ocg(), g.cg() * g.kk(), g.lc());
    let wlen = g.oc * k;
    if g.is_depthwise() {
        return depthwise_weight_grad(par, x, dy, g);
    }
    if g.n == 0 || l == 0 || wlen == 0 {
        return memory::zeroed(wlen);
    }
    let cs = g.chunk();
    let chunks = g.n.div_ceil(cs);
    // Chunks c0..c1 added into `acc` (zeroed), in order: dY[g]·cols[g]ᵀ per chunk and group.
    let piece = |ip: Par, c0: usize, c1: usize, acc: &mut [E], (cols, tmp): &mut Scratch<E>| {
        for c in c0..c1 {
            let (i0, m) = (c * cs, cs.min(g.n - c * cs));
            let mc = m * l;
            let b: &[E] = if g.is_pointwise() {
                &x[i0 * g.in_img()..][..g.in_img()]
            } else {
                unfold_chunk(ip, x, g, i0, m, cols);
                cols
            };
            let a = gather(dy, g, i0, m, tmp);
            for grp in 0..g.groups {
                let am = MatRef { offset: grp * ocg * mc, rs: mc, cs: 1 };
                // colsᵀ[g]: element (p, j) at cols[(grp·k + j)·mc + p].
                let bm = MatRef { offset: grp * k * mc, rs: 1, cs: mc };
                gemm::gemm(ip, ocg, mc, k, a, am, BOperand::Strided(b, bm), &mut acc[grp * ocg * k..], k, true, None);
            }
        }
    };
    let pieces = chunks.min(WEIGHT_GRAD_PIECES);
    let bounds = |p: usize| (p * chunks / pieces, (p + 1) * chunks / pieces);
    let mut partial = memory::zeroed(pieces * wlen);
    let scratch = || g.scratch::<E>();
    if g.batch_par(par) {
        partial.par_chunks_mut(wlen).enumerate().for_each_init(scratch, |s, (p, acc)| {
            let (c0, c1) = bounds(p);
            piece(Par::Seq, c0, c1, acc, s)
        });
    } else {
        let mut s = scratch();
        for (p, acc) in partial.chunks_mut(wlen).enumerate() {
            let (c0, c1) = bounds(p);
            piece(par, c0, c1, acc, &mut s);
        }
        recycle(s);
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
            *o += super::reduce::sum_slice(plane);
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
        let (xp, wc) = (&x[p * hw..][..hw], &w[c * kk..][..kk]);
        for_each_tap_row(g, |tap, out, iy, ix0| {
            add_from_strided(&mut o[out], &xp[iy * g.w..][..g.w], ix0, g.sw, wc[tap])
        });
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
        let (dyp, wc) = (&dy[p * l..][..l], &w[c * kk..][..kk]);
        for_each_tap_row(g, |tap, out, iy, ix0| {
            add_to_strided(&mut o[iy * g.w..][..g.w], ix0, g.sw, &dyp[out], wc[tap])
        });
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
            for_each_tap_row(g, |tap, out, iy, ix0| {
                let (d, row) = (&dyp[out], &xp[iy * g.w..][..g.w]);
                o[tap] += if g.sw == 1 {
                    d.iter().zip(&row[ix0..ix0 + d.len()]).fold(E::zero(), |a, (&d, &x)| a + d * x)
                } else {
                    d.iter().zip(row[ix0..].iter().step_by(g.sw)).fold(E::zero(), |a, (&d, &x)| a + d * x)
                };
            });
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

    #[allow(clippy::too_many_arguments)]
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
            // Wide rows (stride 1, no padding).
            geom(3, 4, 1, (6, 7), 3, 1, 0, 2),
            geom(4, 6, 2, (5, 6), 2, 1, 0, 1),
            geom(2, 3, 1, (1, 9), 1, 1, 0, 1),
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
