//! The fused LSTM layer over a whole sequence, forward and backward (BPTT), on raw slices.
//!
//! Gate order is PyTorch's: input `i`, forget `f`, cell `g`, output `o`. Per step `t`:
//!
//! ```text
//! z  = [h ⊙ r, x_t] · [W_hh, W_ih]ᵀ + bias       (r: recurrent dropout mask, or 1)
//! i, f, o = σ(z_i, z_f, z_o);  g = tanh(z_g)
//! c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c')
//! h, c = m·h' + (1 − m)·h,  m·c' + (1 − m)·c   (m: 1 for a real step, 0 for padding)
//! out[:, t] = m·h'
//! ```
//!
//! The input projection is part of each step's one matmul (the two weights side by side, as
//! cuDNN does), rather than a separate `[B·T, I] × [I, 4H]` product: with a small input (16
//! embedding features in the seed model) that product and its two gradient products were
//! bandwidth-bound passes over a `[B, T, 4H]` buffer, costing more than the recurrence itself.
//! Backward mirrors it: one matmul per step gives both `dh` and `dx_t`, and one matmul over all
//! rows and steps gives both weight gradients.
//!
//! All buffers are row-major with the batch first: `[B, T, ·]`.

use rayon::prelude::*;

use super::entry::instance;
use super::gemm::{self, BOperand, PackedB};
use super::matmul::{MatRef, gemm};
use super::simd_dispatch;
use super::slice::{add_assign, add_product, mul_into};
use super::{Par, math};
use crate::tensor::element::Element;
use crate::tensor::memory;

/// Sizes of one layer: batch, steps, hidden size, input size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LstmDims {
    pub b: usize,
    pub t: usize,
    pub h: usize,
    pub i: usize,
}

impl LstmDims {
    /// Width of a step's matmul input `[h ⊙ r, x_t]`.
    fn k(&self) -> usize {
        self.h + self.i
    }
}

/// The two weights side by side, `[W_hh, W_ih]`: `[4H, H + I]`.
pub(crate) fn combine_weights<E: Element>(d: LstmDims, w_hh: &[E], w_ih: &[E]) -> Vec<E> {
    let (h, i, k) = (d.h, d.i, d.k());
    let mut w = vec![E::zero(); 4 * h * k];
    for (g, row) in w.chunks_mut(k).enumerate() {
        row[..h].copy_from_slice(&w_hh[g * h..][..h]);
        row[h..].copy_from_slice(&w_ih[g * i..][..i]);
    }
    w
}

/// `[W_hh, W_ih]ᵀ` packed for the forward pass's step products, from `w` = `[W_hh, W_ih]`
/// (read as a transposed view, no copy).
pub(crate) fn pack_weights<E: Element>(d: LstmDims, w: &[E]) -> PackedB<E> {
    let k = d.k();
    PackedB::new(k, 4 * d.h, w, MatRef { offset: 0, rs: 1, cs: k })
}

/// What the backward pass needs from the forward pass.
pub(crate) struct LstmSaved<E: Element> {
    /// Gate activations `[B, T, 4H]` (after σ / tanh).
    acts: Vec<E>,
    /// Cell state before each step `[B, T, H]`.
    cprev: Vec<E>,
    /// `tanh(c')` of each step's new cell value `[B, T, H]` (backward needs it, not `c'`).
    tanh_c: Vec<E>,
    /// Each step's matmul input `[h ⊙ r, x_t]`, `[B, T, H + I]`.
    hx: Vec<E>,
}

/// The saved buffers are large (`[B, T, 4H]` and three of `[B, T, H]` or more): back to the
/// cache.
impl<E: Element> Drop for LstmSaved<E> {
    fn drop(&mut self) {
        for buf in [&mut self.acts, &mut self.cprev, &mut self.tanh_c, &mut self.hx] {
            memory::recycle(std::mem::take(buf));
        }
    }
}

/// The inputs of a layer's recurrence, all row-major.
#[derive(Clone, Copy)]
pub(crate) struct LstmInputs<'a, E> {
    /// `[B, T, I]` (empty in backward)
    pub x: &'a [E],
    /// `[W_hh, W_ih]`, `[4H, H + I]` (see [`combine_weights`])
    pub w: &'a [E],
    /// `[4H]`, or none
    pub bias: Option<&'a [E]>,
    /// `[B, H]` each
    pub h0: &'a [E],
    pub c0: &'a [E],
    /// Recurrent dropout mask `[B, H]`, or none
    pub rec_mask: Option<&'a [E]>,
    /// Padding mask `[B, T]` (1 real, 0 padding), or none
    pub mask: Option<&'a [E]>,
}

impl<'a, E> LstmInputs<'a, E> {
    /// The same inputs for batch rows `r0..r0 + n`.
    fn rows(&self, d: LstmDims, r0: usize, n: usize) -> Self {
        let LstmDims { t, h, i, .. } = d;
        LstmInputs {
            // Empty in backward, which reads the input only through the saved step inputs.
            x: if self.x.is_empty() { self.x } else { &self.x[r0 * t * i..][..n * t * i] },
            w: self.w,
            bias: self.bias,
            h0: &self.h0[r0 * h..][..n * h],
            c0: &self.c0[r0 * h..][..n * h],
            rec_mask: self.rec_mask.map(|r| &r[r0 * h..][..n * h]),
            mask: self.mask.map(|m| &m[r0 * t..][..n * t]),
        }
    }
}

/// The three outputs of a layer: every step's output `[B, T, H]`, the final `h` and the final
/// `c` (`[B, H]` each).
pub(crate) struct LstmOut<E> {
    pub seq: Vec<E>,
    pub h: Vec<E>,
    pub c: Vec<E>,
}

/// Runs the layer. Returns its outputs and, if `save`, the values backward needs (without `save`, e.g. for inference,
/// each block keeps only one step of scratch).
///
/// Batch rows are independent through time, so the batch is split into blocks of rows, each run
/// through all steps by one rayon task: one fork-join per sequence instead of one per step. Every
/// row is computed the same way whatever the blocks, so the bits do not depend on the threads.
pub(crate) fn forward<E: Element>(
    par: Par,
    d: LstmDims,
    inputs: LstmInputs<'_, E>,
    save: bool,
    packed: Option<&PackedB<E>>,
) -> (LstmOut<E>, Option<LstmSaved<E>>) {
    // The instances compiled in this crate (see `kernels::entry`).
    type F<T> = fn(Par, LstmDims, LstmInputs<'_, T>, bool, Option<&PackedB<T>>) -> (LstmOut<T>, Option<LstmSaved<T>>);
    static F32: F<f32> = forward_impl::<f32>;
    static F64: F<f64> = forward_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, d, inputs, save, packed)
}

/// [`forward`]'s body, instantiated in this crate only.
fn forward_impl<E: Element>(
    par: Par,
    d: LstmDims,
    inputs: LstmInputs<'_, E>,
    save: bool,
    packed: Option<&PackedB<E>>,
) -> (LstmOut<E>, Option<LstmSaved<E>>) {
    let LstmDims { b, t: steps, h, .. } = d;
    let (g4, k) = (4 * h, d.k());
    // Every element of the outputs and of the saved buffers is written below.
    let mut out = LstmOut { seq: memory::take(b * steps * h), h: memory::take(b * h), c: memory::take(b * h) };
    // Saved values are [B, T, ·]; scratch without saving is [B, 1, ·].
    let st = if save { steps } else { 1 };
    let mut saved = LstmSaved {
        acts: memory::take(b * st * g4),
        cprev: memory::take(b * st * h),
        tanh_c: memory::take(b * st * h),
        hx: memory::take(b * st * k),
    };
    // Every step multiplies by [W_hh, W_ih]ᵀ: packed once here (read as a transposed view of
    // `w`), or by the caller once for many calls, and shared by all steps and blocks of rows.
    let own;
    let wt = match packed {
        Some(p) => p,
        None => {
            own = pack_weights(d, inputs.w);
            &own
        }
    };
    let rows = rows_per_block(par, d);
    if rows >= b {
        let bufs = Bufs {
            out: &mut out.seq,
            hn: &mut out.h,
            cn: &mut out.c,
            acts: &mut saved.acts,
            cprev: &mut saved.cprev,
            tanh_c: &mut saved.tanh_c,
            hx: &mut saved.hx,
        };
        forward_rows(d, par, save, inputs, wt, bufs);
        return (out, save.then_some(saved));
    }
    let blocks: Vec<Bufs<'_, E>> = out
        .seq
        .chunks_mut(rows * steps * h)
        .zip(out.h.chunks_mut(rows * h).zip(out.c.chunks_mut(rows * h)))
        .zip(saved.acts.chunks_mut(rows * st * g4))
        .zip(saved.cprev.chunks_mut(rows * st * h))
        .zip(saved.tanh_c.chunks_mut(rows * st * h))
        .zip(saved.hx.chunks_mut(rows * st * k))
        .map(|(((((out, (hn, cn)), acts), cprev), tanh_c), hx)| Bufs { out, hn, cn, acts, cprev, tanh_c, hx })
        .collect();
    blocks.into_par_iter().enumerate().for_each(|(blk, bufs)| {
        let (r0, n) = (blk * rows, bufs.hn.len() / h);
        forward_rows(LstmDims { b: n, ..d }, Par::Seq, save, inputs.rows(d, r0, n), wt, bufs);
    });
    (out, save.then_some(saved))
}

/// Rows of the batch per parallel block: a whole batch on one thread (when small, or when the
/// whole sequence is too little work to pay for a fork-join here), else about one block per
/// thread (at least 8 rows each).
fn rows_per_block(par: Par, d: LstmDims) -> usize {
    let LstmDims { b, t, h, .. } = d;
    // One step: the gates' product (at a modest 10 multiply-adds per ns) and ~1 ns per gate.
    let alone_ns = (b * t) as f64 * (4 * h * d.k()) as f64 / 10.0 + (b * t * 4 * h) as f64;
    let threads = par.for_work(alone_ns).threads();
    if threads < 2 || b < 16 { b } else { b.div_ceil(threads).max(8) }
}

/// The output and saved buffers of a block of batch rows.
struct Bufs<'a, E> {
    out: &'a mut [E],
    hn: &'a mut [E],
    cn: &'a mut [E],
    acts: &'a mut [E],
    cprev: &'a mut [E],
    tanh_c: &'a mut [E],
    hx: &'a mut [E],
}

/// The recurrence for `d.b` consecutive batch rows (all slices hold just those rows), with
/// `wt` = `[W_hh, W_ih]ᵀ` packed.
fn forward_rows<E: Element>(
    d: LstmDims,
    par: Par,
    save: bool,
    inp: LstmInputs<'_, E>,
    wt: &PackedB<E>,
    bufs: Bufs<'_, E>,
) {
    let LstmDims { b, t: steps, h, i: ni } = d;
    let (g4, k) = (4 * h, d.k());
    let Bufs { out, hn: h_last, cn: c_last, acts, cprev, tanh_c, hx } = bufs;
    // Where step t lives in the saved buffers: [B, T, ·] when saving, else [B, 1, ·] scratch.
    let st = if save { steps } else { 1 };
    let (mut hs, mut cs) = (inp.h0.to_vec(), inp.c0.to_vec());
    let mut cn = vec![E::zero(); h];
    // Run on each tile of the gates' product while it is in cache: + bias, then σ / tanh.
    let gates = |_: usize, j0: usize, row: &mut [E]| gate_activations(h, inp.bias, j0, row);
    for t in 0..steps {
        let ts = if save { t } else { 0 };
        // hx = [h ⊙ r, x_t], saved for the weight gradients.
        for bi in 0..b {
            let dst = &mut hx[(bi * st + ts) * k..][..k];
            let (dh, dx) = dst.split_at_mut(h);
            let src = &hs[bi * h..][..h];
            match inp.rec_mask {
                Some(r) => mul_into(dh, src, &r[bi * h..][..h]),
                None => dh.copy_from_slice(src),
            }
            dx.copy_from_slice(&inp.x[(bi * steps + t) * ni..][..ni]);
        }
        // acts_t = act(hx · [W_hh, W_ih]ᵀ + bias), reading step t's rows straight out of the
        // [B, T, H + I] buffer and writing them into the [B, T, 4H] one.
        let hx_t = MatRef { offset: ts * k, rs: st * k, cs: 1 };
        let acts_t = &mut acts[ts * g4..];
        gemm::gemm(par, b, k, g4, hx, hx_t, BOperand::Packed(wt), acts_t, st * g4, false, Some(&gates));
        for bi in 0..b {
            let row = (bi * st + ts) * h;
            let orow = (bi * steps + t) * h;
            let ar = &acts[(bi * st + ts) * g4..][..g4];
            let (i, rest) = ar.split_at(h);
            let (f, rest) = rest.split_at(h);
            let (g, o) = rest.split_at(h);
            let cp = &mut cs[bi * h..][..h];
            let hp = &mut hs[bi * h..][..h];
            if save {
                cprev[row..row + h].copy_from_slice(cp);
            }
            let tc = &mut tanh_c[row..row + h];
            let hn = &mut out[orow..orow + h];
            match inp.mask.map(|m| m[bi * steps + t]) {
                None => {
                    // The state is replaced: update the cell in place.
                    new_cell_inplace(i, f, g, cp);
                    math::tanh_into(cp, tc);
                    mul_into(hn, o, tc);
                    hp.copy_from_slice(hn);
                }
                // Blend, as the reference cell does: state + m·(new − state); the output is m·h'.
                Some(m) => {
                    new_cell(i, f, g, cp, &mut cn);
                    math::tanh_into(&cn, tc);
                    mul_into(hn, o, tc);
                    blend(m, cp, hp, &cn, hn);
                }
            }
        }
    }
    h_last.copy_from_slice(&hs);
    c_last.copy_from_slice(&cs);
}

/// The gates' epilogue on columns `j0..j0 + row.len()` of one row of the product: adds the
/// bias, then σ on the input, forget and output gates and tanh on the cell gate (columns
/// `[2H, 3H)`). Element by element the same arithmetic as adding and activating whole rows.
fn gate_activations<E: Element>(h: usize, bias: Option<&[E]>, j0: usize, row: &mut [E]) {
    if let Some(bias) = bias {
        add_assign(row, &bias[j0..j0 + row.len()]);
    }
    let end = j0 + row.len();
    let mut j = j0;
    while j < end {
        let gate = j / h;
        let stop = ((gate + 1) * h).min(end);
        let part = &mut row[j - j0..stop - j0];
        if gate == 2 {
            math::tanh_inplace(part);
        } else {
            math::sigmoid_inplace(part);
        }
        j = stop;
    }
}

/// The gradients flowing into the layer's three outputs; `None` where no gradient reached an
/// output (it counts as zeros).
#[derive(Clone, Copy)]
pub(crate) struct LstmOutGrads<'a, E> {
    /// `[B, T, H]`
    pub seq: Option<&'a [E]>,
    /// `[B, H]` each
    pub h: Option<&'a [E]>,
    pub c: Option<&'a [E]>,
}

impl<'a, E> LstmOutGrads<'a, E> {
    /// The same gradients for batch rows `r0..r0 + n`.
    fn rows(&self, d: LstmDims, r0: usize, n: usize) -> Self {
        let (t, h) = (d.t, d.h);
        LstmOutGrads {
            seq: self.seq.map(|s| &s[r0 * t * h..][..n * t * h]),
            h: self.h.map(|s| &s[r0 * h..][..n * h]),
            c: self.c.map(|s| &s[r0 * h..][..n * h]),
        }
    }
}

/// Gradients of the layer's inputs, given the gradients of its outputs.
pub(crate) struct LstmGrads<E> {
    /// `[B, T, I]`, if asked for
    pub dx: Option<Vec<E>>,
    /// `[4H, H]` and `[4H, I]`
    pub dw_hh: Vec<E>,
    pub dw_ih: Vec<E>,
    /// The bias gradient `[4H]`: the sum of the gates' gradient over batch and steps.
    pub dbias: Vec<E>,
    pub dh0: Vec<E>,
    pub dc0: Vec<E>,
}

/// Backpropagation through time, in the same blocks of batch rows as the forward pass. Each
/// step's matmul `dZ_t · [W_hh, W_ih]` gives `dh` and `dx_t` at once (just `dh` when `x` needs
/// no gradient); then one matmul over all rows and steps gives both weight gradients:
/// `[dW_hh, dW_ih] = dZᵀ · HX` with `dZ: [B·T, 4H]`, `HX: [B·T, H + I]`. The bias gradient is
/// summed per batch row while `dZ` is written, then over the rows in order, so its bits do not
/// depend on the blocks either.
pub(crate) fn backward<E: Element>(
    par: Par,
    d: LstmDims,
    saved: &LstmSaved<E>,
    inputs: LstmInputs<'_, E>,
    dout: LstmOutGrads<'_, E>,
    need_dx: bool,
) -> LstmGrads<E> {
    // The instances compiled in this crate (see `kernels::entry`).
    type F<T> = fn(Par, LstmDims, &LstmSaved<T>, LstmInputs<'_, T>, LstmOutGrads<'_, T>, bool) -> LstmGrads<T>;
    static F32: F<f32> = backward_impl::<f32>;
    static F64: F<f64> = backward_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, d, saved, inputs, dout, need_dx)
}

/// [`backward`]'s body, instantiated in this crate only.
fn backward_impl<E: Element>(
    par: Par,
    d: LstmDims,
    saved: &LstmSaved<E>,
    inputs: LstmInputs<'_, E>,
    dout: LstmOutGrads<'_, E>,
    need_dx: bool,
) -> LstmGrads<E> {
    let LstmDims { b, t: steps, h, i: ni } = d;
    let (g4, k) = (4 * h, d.k());
    let mut dz = memory::take(b * steps * g4); // every element is written by BPTT
    let mut dx = if need_dx { memory::take(b * steps * ni) } else { Vec::new() };
    let mut dh0 = vec![E::zero(); b * h];
    let mut dc0 = vec![E::zero(); b * h];
    let mut db_rows = memory::zeroed(b * g4);
    let rows = rows_per_block(par, d);
    let block = |r0: usize, n: usize, par: Par, out: BackRows<'_, E>| {
        let saved_rows = SavedRows {
            acts: &saved.acts[r0 * steps * g4..][..n * steps * g4],
            cprev: &saved.cprev[r0 * steps * h..][..n * steps * h],
            tanh_c: &saved.tanh_c[r0 * steps * h..][..n * steps * h],
        };
        backward_rows(LstmDims { b: n, ..d }, par, saved_rows, inputs.rows(d, r0, n), dout.rows(d, r0, n), out);
    };
    if rows >= b {
        block(0, b, par, BackRows { dz: &mut dz, dx: &mut dx, dh: &mut dh0, dc: &mut dc0, db: &mut db_rows });
    } else {
        let dx_chunks: Vec<&mut [E]> = if need_dx {
            dx.chunks_mut(rows * steps * ni).collect()
        } else {
            (0..b.div_ceil(rows)).map(|_| &mut [][..]).collect()
        };
        let blocks: Vec<_> = dz
            .chunks_mut(rows * steps * g4)
            .zip(dx_chunks)
            .zip(dh0.chunks_mut(rows * h))
            .zip(dc0.chunks_mut(rows * h))
            .zip(db_rows.chunks_mut(rows * g4))
            .collect();
        blocks.into_par_iter().enumerate().for_each(|(blk, ((((dz, dx), dh), dc), db))| {
            let n = dh.len() / h;
            block(blk * rows, n, Par::Seq, BackRows { dz, dx, dh, dc, db });
        });
    }
    let mut dbias = vec![E::zero(); g4];
    for row in db_rows.chunks(g4) {
        dbias.iter_mut().zip(row).for_each(|(d, &x)| *d += x);
    }
    memory::recycle(db_rows);
    // [dW_hh, dW_ih] = dZᵀ · HX, then split into the two weights.
    let mut dw = memory::take(g4 * k);
    let dz_t = MatRef { offset: 0, rs: 1, cs: g4 };
    gemm(par, g4, b * steps, k, &dz, dz_t, &saved.hx, MatRef { offset: 0, rs: k, cs: 1 }, &mut dw);
    memory::recycle(dz);
    let mut dw_hh = vec![E::zero(); g4 * h];
    let mut dw_ih = vec![E::zero(); g4 * ni];
    for (g, row) in dw.chunks(k).enumerate() {
        dw_hh[g * h..][..h].copy_from_slice(&row[..h]);
        dw_ih[g * ni..][..ni].copy_from_slice(&row[h..]);
    }
    memory::recycle(dw);
    LstmGrads { dx: need_dx.then_some(dx), dw_hh, dw_ih, dbias, dh0, dc0 }
}

/// The saved activations of a block of batch rows.
struct SavedRows<'a, E> {
    acts: &'a [E],
    cprev: &'a [E],
    tanh_c: &'a [E],
}

/// What BPTT writes for a block of batch rows: `dZ` `[n, T, 4H]`, `dx` `[n, T, I]` (empty when
/// not asked for), `dh0`, `dc0` `[n, H]`, and the per-row bias gradient `[n, 4H]`.
struct BackRows<'a, E> {
    dz: &'a mut [E],
    dx: &'a mut [E],
    dh: &'a mut [E],
    dc: &'a mut [E],
    db: &'a mut [E],
}

/// BPTT for `d.b` consecutive batch rows.
fn backward_rows<E: Element>(
    d: LstmDims,
    par: Par,
    saved: SavedRows<'_, E>,
    inp: LstmInputs<'_, E>,
    dout: LstmOutGrads<'_, E>,
    out: BackRows<'_, E>,
) {
    let LstmDims { b, t: steps, h, i: ni } = d;
    let (g4, k) = (4 * h, d.k());
    let BackRows { dz, dx, dh, dc, db } = out;
    let need_dx = !dx.is_empty();
    // Columns of [W_hh, W_ih] the step's matmul uses: both, or only W_hh.
    let kw = if need_dx { k } else { h };
    match dout.h {
        Some(g) => dh.copy_from_slice(g),
        None => dh.fill(E::zero()),
    }
    match dout.c {
        Some(g) => dc.copy_from_slice(g),
        None => dc.fill(E::zero()),
    }
    // A step's output gradient when no gradient reached the sequence output.
    let zero_row = vec![E::zero(); if dout.seq.is_some() { 0 } else { h }];
    let mut dhx = memory::take(b * kw);
    let one = E::one();
    for t in (0..steps).rev() {
        for bi in 0..b {
            let m = inp.mask.map_or(one, |m| m[bi * steps + t]);
            let row = (bi * steps + t) * h;
            let ar = &saved.acts[(bi * steps + t) * g4..][..g4];
            let dzr = &mut dz[(bi * steps + t) * g4..][..g4];
            let orow = (bi * steps + t) * h;
            let tc = &saved.tanh_c[row..row + h];
            let (dhr, dcr) = (&mut dh[bi * h..][..h], &mut dc[bi * h..][..h]);
            let cprev = &saved.cprev[row..row + h];
            let doutr = dout.seq.map_or(&zero_row[..], |s| &s[orow..orow + h]);
            bptt_row(m, ar, tc, cprev, doutr, dhr, dcr, dzr, &mut db[bi * g4..][..g4]);
        }
        // [dh_rec, dx_t] = dZ_t · [W_hh, W_ih]
        let dz_t = MatRef { offset: t * g4, rs: steps * g4, cs: 1 };
        let w = MatRef { offset: 0, rs: k, cs: 1 };
        gemm(par, b, g4, kw, dz, dz_t, inp.w, w, &mut dhx);
        for bi in 0..b {
            let (dh_rec, dx_t) = dhx[bi * kw..][..kw].split_at(h);
            let dhr = &mut dh[bi * h..][..h];
            match inp.rec_mask {
                Some(r) => add_product(dhr, dh_rec, &r[bi * h..][..h]),
                None => add_assign(dhr, dh_rec),
            }
            if need_dx {
                dx[(bi * steps + t) * ni..][..ni].copy_from_slice(dx_t);
            }
        }
    }
    memory::recycle(dhx);
}

simd_dispatch! {
    /// One batch row of one BPTT step: from the gate activations `acts` (`[4H]`), `tanh(c')`, the
    /// previous cell state and the step's output gradient, writes the gates' gradient `dz` (`[4H]`),
    /// adds it to `db`, and carries `dh`, `dc` back one step (before the recurrent matmul). `m` is
    /// the step's mask value (1 for a real step, 0 for padding).
    fn bptt_row<const FMA: bool, E: Element>(
        m: E,
        acts: &[E],
        tanh_c: &[E],
        cprev: &[E],
        dout: &[E],
        dh: &mut [E],
        dc: &mut [E],
        dz: &mut [E],
        db: &mut [E],
    ) {
        let h = dh.len();
        let one = E::one();
        // Equal-length slices, so the loop below has no bounds checks and vectorises.
        let (ai, rest) = acts[..4 * h].split_at(h);
        let (af, rest) = rest.split_at(h);
        let (ag, ao) = rest.split_at(h);
        let (dzi, rest) = dz[..4 * h].split_at_mut(h);
        let (dzf, rest) = rest.split_at_mut(h);
        let (dzg, dzo) = rest.split_at_mut(h);
        let (tanh_c, cprev, dout, dc) = (&tanh_c[..h], &cprev[..h], &dout[..h], &mut dc[..h]);
        for j in 0..h {
            let (i, f, g, o) = (ai[j], af[j], ag[j], ao[j]);
            // Split the carried gradients between the new state and the carried-over one.
            let dh_new = m * (dh[j] + dout[j]);
            let dc_new = m * dc[j];
            let tc = tanh_c[j];
            let dcn = dc_new + dh_new * o * (one - tc * tc);
            dzi[j] = dcn * g * i * (one - i);
            dzf[j] = dcn * cprev[j] * f * (one - f);
            dzg[j] = dcn * i * (one - g * g);
            dzo[j] = dh_new * tc * o * (one - o);
            dc[j] = dcn * f + (one - m) * dc[j];
            dh[j] *= one - m;
        }
        db[..4 * h].iter_mut().zip(&dz[..4 * h]).for_each(|(d, &x)| *d += x);
    }
}

simd_dispatch! {
    /// `c' = f ⊙ c + i ⊙ g`.
    fn new_cell<const FMA: bool, E: Element>(i: &[E], f: &[E], g: &[E], c: &[E], out: &mut [E]) {
        let n = out.len();
        let (i, f, g, c) = (&i[..n], &f[..n], &g[..n], &c[..n]);
        for j in 0..n {
            out[j] = f[j] * c[j] + i[j] * g[j];
        }
    }
}

simd_dispatch! {
    /// `c ← f ⊙ c + i ⊙ g`.
    fn new_cell_inplace<const FMA: bool, E: Element>(i: &[E], f: &[E], g: &[E], c: &mut [E]) {
        let n = c.len();
        let (i, f, g) = (&i[..n], &f[..n], &g[..n]);
        for j in 0..n {
            c[j] = f[j] * c[j] + i[j] * g[j];
        }
    }
}

simd_dispatch! {
    /// A padded step keeps the state: `c += m·(c' − c)`, `h += m·(h' − h)`, and outputs `m·h'`.
    fn blend<const FMA: bool, E: Element>(m: E, c: &mut [E], h: &mut [E], c_new: &[E], h_new: &mut [E]) {
        let n = c.len();
        let (h, c_new, h_new) = (&mut h[..n], &c_new[..n], &mut h_new[..n]);
        for j in 0..n {
            c[j] += m * (c_new[j] - c[j]);
            h[j] += m * (h_new[j] - h[j]);
            h_new[j] *= m;
        }
    }
}
