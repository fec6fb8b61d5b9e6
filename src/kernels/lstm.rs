//! The fused LSTM recurrence over a whole sequence, forward and backward (BPTT), on raw slices.
//!
//! Gate order is PyTorch's: input `i`, forget `f`, cell `g`, output `o`. Per step `t`:
//!
//! ```text
//! z  = xp[:, t] + bias + (h ⊙ r) · W_hhᵀ       (r: recurrent dropout mask, or 1)
//! i, f, o = σ(z_i, z_f, z_o);  g = tanh(z_g)
//! c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c')
//! h, c = m·h' + (1 − m)·h,  m·c' + (1 − m)·c   (m: 1 for a real step, 0 for padding)
//! out[:, t] = m·h'
//! ```
//!
//! All buffers are row-major with the batch first: `[B, T, ·]`.

use rayon::prelude::*;

use super::matmul::{MatRef, gemm, gemm_seq};
use super::wide_simd;
use crate::memory;
use crate::storage::Element;

/// Sizes of one recurrence: batch, steps, hidden size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LstmDims {
    pub b: usize,
    pub t: usize,
    pub h: usize,
}

/// What the backward pass needs from the forward pass.
pub(crate) struct LstmSaved<E: Element> {
    /// Gate activations `[B, T, 4H]` (after σ / tanh).
    acts: Vec<E>,
    /// Cell state before each step `[B, T, H]`.
    cprev: Vec<E>,
    /// `tanh(c')` of each step's new cell value `[B, T, H]` (backward needs it, not `c'`).
    tanh_c: Vec<E>,
    /// The recurrent input of each step, `h ⊙ r`, `[B, T, H]`.
    hm: Vec<E>,
}

/// The saved buffers are large (`[B, T, 4H]` and three `[B, T, H]`): back to the cache.
impl<E: Element> Drop for LstmSaved<E> {
    fn drop(&mut self) {
        for buf in [&mut self.acts, &mut self.cprev, &mut self.tanh_c, &mut self.hm] {
            memory::recycle(std::mem::take(buf));
        }
    }
}

/// Runs the recurrence. Returns `[B, T + 2, H]`: the outputs of every step, then the final `h`,
/// then the final `c`; and, if `save`, the values backward needs (without `save`, e.g. for
/// inference, each block keeps only one step of scratch, which saves ~1 KB per row and step).
///
/// Batch rows are independent through time, so the batch is split into blocks of rows, each run
/// through all steps by one rayon task: one fork-join per sequence instead of one per step. Every
/// row is computed the same way whatever the blocks, so the bits do not depend on the threads.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<E: Element>(
    d: LstmDims,
    xp: &[E],
    bias: Option<&[E]>,
    whh: &[E],
    h0: &[E],
    c0: &[E],
    rec_mask: Option<&[E]>,
    mask: Option<&[E]>,
    save: bool,
) -> (Vec<E>, Option<LstmSaved<E>>) {
    let LstmDims { b, t: steps, h } = d;
    let g4 = 4 * h;
    // Every element of `out` and of the saved buffers is written below.
    let mut out = memory::take(b * (steps + 2) * h);
    // Saved values are [B, T, ·]; scratch without saving is [B, 1, ·].
    let st = if save { steps } else { 1 };
    let mut saved = LstmSaved {
        acts: memory::take(b * st * g4),
        cprev: memory::take(b * st * h),
        tanh_c: memory::take(b * st * h),
        hm: memory::take(b * st * h),
    };
    let rows = rows_per_block(b);
    if rows >= b {
        let bufs = Bufs {
            out: &mut out,
            acts: &mut saved.acts,
            cprev: &mut saved.cprev,
            tanh_c: &mut saved.tanh_c,
            hm: &mut saved.hm,
        };
        forward_rows(d, true, save, xp, bias, whh, h0, c0, rec_mask, mask, bufs);
        return (out, save.then_some(saved));
    }
    let blocks: Vec<Bufs<'_, E>> = out
        .chunks_mut(rows * (steps + 2) * h)
        .zip(saved.acts.chunks_mut(rows * st * g4))
        .zip(saved.cprev.chunks_mut(rows * st * h))
        .zip(saved.tanh_c.chunks_mut(rows * st * h))
        .zip(saved.hm.chunks_mut(rows * st * h))
        .map(|((((out, acts), cprev), tanh_c), hm)| Bufs { out, acts, cprev, tanh_c, hm })
        .collect();
    blocks.into_par_iter().enumerate().for_each(|(k, bufs)| {
        let (r0, n) = (k * rows, bufs.out.len() / ((steps + 2) * h));
        let dr = LstmDims { b: n, ..d };
        forward_rows(
            dr,
            false,
            save,
            &xp[r0 * steps * g4..][..n * steps * g4],
            bias,
            whh,
            &h0[r0 * h..][..n * h],
            &c0[r0 * h..][..n * h],
            rec_mask.map(|r| &r[r0 * h..][..n * h]),
            mask.map(|m| &m[r0 * steps..][..n * steps]),
            bufs,
        );
    });
    (out, save.then_some(saved))
}

/// Rows of the batch per parallel block: a whole batch on one thread, else about one block per
/// thread (at least 8 rows each).
fn rows_per_block(b: usize) -> usize {
    let threads = rayon::current_num_threads();
    if threads < 2 || b < 16 { b } else { b.div_ceil(threads).max(8) }
}

/// The output and saved buffers of a block of batch rows.
struct Bufs<'a, E> {
    out: &'a mut [E],
    acts: &'a mut [E],
    cprev: &'a mut [E],
    tanh_c: &'a mut [E],
    hm: &'a mut [E],
}

/// The recurrence for `d.b` consecutive batch rows (all slices hold just those rows).
#[allow(clippy::too_many_arguments)]
fn forward_rows<E: Element>(
    d: LstmDims,
    par: bool,
    save: bool,
    xp: &[E],
    bias: Option<&[E]>,
    whh: &[E],
    h0: &[E],
    c0: &[E],
    rec_mask: Option<&[E]>,
    mask: Option<&[E]>,
    bufs: Bufs<'_, E>,
) {
    let LstmDims { b, t: steps, h } = d;
    let g4 = 4 * h;
    let Bufs { out, acts, cprev, tanh_c, hm } = bufs;
    // Where step t lives in the saved buffers: [B, T, ·] when saving, else [B, 1, ·] scratch.
    let st = if save { steps } else { 1 };
    let (mut hs, mut cs) = (h0.to_vec(), c0.to_vec());
    let mut z = memory::take(b * g4);
    let zeros;
    let bias = match bias {
        Some(v) => v,
        None => {
            zeros = vec![E::zero(); g4];
            &zeros
        }
    };
    let mut cn = vec![E::zero(); h];
    let w_t = MatRef { offset: 0, rs: 1, cs: h }; // W_hhᵀ viewed in place: [H, 4H]
    for t in 0..steps {
        let ts = if save { t } else { 0 };
        // hm = h ⊙ r, saved for the weight gradient.
        for bi in 0..b {
            let dst = &mut hm[(bi * st + ts) * h..][..h];
            let src = &hs[bi * h..][..h];
            match rec_mask {
                Some(r) => dst.iter_mut().zip(src).zip(&r[bi * h..][..h]).for_each(|((d, &x), &m)| *d = x * m),
                None => dst.copy_from_slice(src),
            }
        }
        // z = hm · W_hhᵀ, reading hm for step t straight out of the [B, T, H] buffer.
        let hm_t = MatRef { offset: ts * h, rs: st * h, cs: 1 };
        if par {
            gemm(b, h, g4, hm, hm_t, whh, w_t, &mut z);
        } else {
            gemm_seq(b, h, g4, hm, hm_t, whh, w_t, &mut z);
        }
        for bi in 0..b {
            let row = (bi * st + ts) * h;
            let orow = (bi * (steps + 2) + t) * h;
            let ar = &mut acts[(bi * st + ts) * g4..][..g4];
            let xr = &xp[(bi * steps + t) * g4..][..g4];
            gates_in(ar, &z[bi * g4..][..g4], xr, bias);
            E::sigmoid_inplace(&mut ar[..2 * h]);
            E::tanh_inplace(&mut ar[2 * h..3 * h]);
            E::sigmoid_inplace(&mut ar[3 * h..]);
            let (i, rest) = ar.split_at(h);
            let (f, rest) = rest.split_at(h);
            let (g, o) = rest.split_at(h);
            let cp = &mut cs[bi * h..][..h];
            let hp = &mut hs[bi * h..][..h];
            cprev[row..row + h].copy_from_slice(cp);
            new_cell(i, f, g, cp, &mut cn);
            let tc = &mut tanh_c[row..row + h];
            tc.copy_from_slice(&cn);
            E::tanh_inplace(tc);
            let hn = &mut out[orow..orow + h];
            mul_into(hn, o, tc);
            match mask.map(|m| m[bi * steps + t]) {
                None => {
                    cp.copy_from_slice(&cn);
                    hp.copy_from_slice(hn);
                }
                // Blend, as the reference cell does: state + m·(new − state); the output is m·h'.
                Some(m) => blend(m, cp, hp, &cn, hn),
            }
        }
    }
    memory::recycle(z);
    for bi in 0..b {
        out[(bi * (steps + 2) + steps) * h..][..h].copy_from_slice(&hs[bi * h..][..h]);
        out[(bi * (steps + 2) + steps + 1) * h..][..h].copy_from_slice(&cs[bi * h..][..h]);
    }
}

/// Gradients of the recurrence's inputs, given the gradient of its `[B, T + 2, H]` output.
pub(crate) struct LstmGrads<E> {
    pub dxp: Vec<E>,
    /// The bias gradient `[4H]`: the sum of `dxp` over batch and steps.
    pub dbias: Vec<E>,
    pub dwhh: Vec<E>,
    pub dh0: Vec<E>,
    pub dc0: Vec<E>,
}

/// Backpropagation through time, in the same blocks of batch rows as the forward pass. The
/// recurrent weight gradient is then one matmul over all rows and steps:
/// `dW_hh = dZᵀ · HM` with `dZ: [B·T, 4H]` and `HM: [B·T, H]`. The bias gradient is summed per
/// batch row while `dZ` is written, then over the rows in order, so its bits do not depend on
/// the blocks either.
pub(crate) fn backward<E: Element>(
    d: LstmDims,
    saved: &LstmSaved<E>,
    whh: &[E],
    rec_mask: Option<&[E]>,
    mask: Option<&[E]>,
    dout: &[E],
) -> LstmGrads<E> {
    let LstmDims { b, t: steps, h } = d;
    let g4 = 4 * h;
    let mut dz = memory::take(b * steps * g4); // every element is written by BPTT
    let mut dh0 = vec![E::zero(); b * h];
    let mut dc0 = vec![E::zero(); b * h];
    let mut db_rows = memory::zeroed(b * g4);
    let rows = rows_per_block(b);
    let block = |r0: usize, n: usize, par: bool, dz: &mut [E], dh0: &mut [E], dc0: &mut [E], db: &mut [E]| {
        let saved_rows = SavedRows {
            acts: &saved.acts[r0 * steps * g4..][..n * steps * g4],
            cprev: &saved.cprev[r0 * steps * h..][..n * steps * h],
            tanh_c: &saved.tanh_c[r0 * steps * h..][..n * steps * h],
        };
        backward_rows(
            LstmDims { b: n, ..d },
            par,
            saved_rows,
            whh,
            rec_mask.map(|r| &r[r0 * h..][..n * h]),
            mask.map(|m| &m[r0 * steps..][..n * steps]),
            &dout[r0 * (steps + 2) * h..][..n * (steps + 2) * h],
            dz,
            dh0,
            dc0,
            db,
        );
    };
    if rows >= b {
        block(0, b, true, &mut dz, &mut dh0, &mut dc0, &mut db_rows);
    } else {
        let blocks: Vec<_> = dz
            .chunks_mut(rows * steps * g4)
            .zip(dh0.chunks_mut(rows * h))
            .zip(dc0.chunks_mut(rows * h))
            .zip(db_rows.chunks_mut(rows * g4))
            .collect();
        blocks.into_par_iter().enumerate().for_each(|(k, (((dz, dh0), dc0), db))| {
            let n = dh0.len() / h;
            block(k * rows, n, false, dz, dh0, dc0, db);
        });
    }
    let mut dbias = vec![E::zero(); g4];
    for row in db_rows.chunks(g4) {
        dbias.iter_mut().zip(row).for_each(|(d, &x)| *d += x);
    }
    memory::recycle(db_rows);
    let mut dwhh = memory::take(g4 * h);
    let dz_t = MatRef { offset: 0, rs: 1, cs: g4 };
    gemm(g4, b * steps, h, &dz, dz_t, &saved.hm, MatRef { offset: 0, rs: h, cs: 1 }, &mut dwhh);
    LstmGrads { dxp: dz, dbias, dwhh, dh0, dc0 }
}

/// The saved activations of a block of batch rows.
struct SavedRows<'a, E> {
    acts: &'a [E],
    cprev: &'a [E],
    tanh_c: &'a [E],
}

/// BPTT for `d.b` consecutive batch rows; writes their `dZ` rows and their `dh0`, `dc0`, and
/// adds each row's `dZ` over the steps into its row of `db`.
#[allow(clippy::too_many_arguments)]
fn backward_rows<E: Element>(
    d: LstmDims,
    par: bool,
    saved: SavedRows<'_, E>,
    whh: &[E],
    rec_mask: Option<&[E]>,
    mask: Option<&[E]>,
    dout: &[E],
    dz: &mut [E],
    dh: &mut [E],
    dc: &mut [E],
    db: &mut [E],
) {
    let LstmDims { b, t: steps, h } = d;
    let g4 = 4 * h;
    for bi in 0..b {
        dh[bi * h..][..h].copy_from_slice(&dout[(bi * (steps + 2) + steps) * h..][..h]);
        dc[bi * h..][..h].copy_from_slice(&dout[(bi * (steps + 2) + steps + 1) * h..][..h]);
    }
    let mut dhm = vec![E::zero(); b * h];
    let one = E::one();
    for t in (0..steps).rev() {
        for bi in 0..b {
            let m = mask.map_or(one, |m| m[bi * steps + t]);
            let row = (bi * steps + t) * h;
            let ar = &saved.acts[(bi * steps + t) * g4..][..g4];
            let dzr = &mut dz[(bi * steps + t) * g4..][..g4];
            let orow = (bi * (steps + 2) + t) * h;
            let tc = &saved.tanh_c[row..row + h];
            let (dhr, dcr) = (&mut dh[bi * h..][..h], &mut dc[bi * h..][..h]);
            let (cprev, doutr) = (&saved.cprev[row..row + h], &dout[orow..orow + h]);
            bptt_row(m, ar, tc, cprev, doutr, dhr, dcr, dzr, &mut db[bi * g4..][..g4]);
        }
        // dh += (dZ_t · W_hh) ⊙ r
        let dz_t = MatRef { offset: t * g4, rs: steps * g4, cs: 1 };
        let w = MatRef { offset: 0, rs: h, cs: 1 };
        if par {
            gemm(b, g4, h, dz, dz_t, whh, w, &mut dhm);
        } else {
            gemm_seq(b, g4, h, dz, dz_t, whh, w, &mut dhm);
        }
        match rec_mask {
            Some(r) => dh.iter_mut().zip(&dhm).zip(r).for_each(|((d, &x), &m)| *d += x * m),
            None => dh.iter_mut().zip(&dhm).for_each(|(d, &x)| *d += x),
        }
    }
}

wide_simd! {
    /// One batch row of one BPTT step (see [`bptt_row_body`]).
    fn bptt_row<E: Element>(
        m: E,
        acts: &[E],
        tanh_c: &[E],
        cprev: &[E],
        dout: &[E],
        dh: &mut [E],
        dc: &mut [E],
        dz: &mut [E],
        db: &mut [E],
    ) => bptt_row_body
}

/// One batch row of one BPTT step: from the gate activations `acts` (`[4H]`), `tanh(c')`, the
/// previous cell state and the step's output gradient, writes the gates' gradient `dz` (`[4H]`),
/// adds it to `db`, and carries `dh`, `dc` back one step (before the recurrent matmul). `m` is
/// the step's mask value (1 for a real step, 0 for padding).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bptt_row_body<E: Element>(
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

wide_simd! {
    /// `a = z + x + bias`: a row's gate pre-activations.
    fn gates_in<E: Element>(a: &mut [E], z: &[E], x: &[E], bias: &[E]) => gates_in_body
}

#[inline(always)]
fn gates_in_body<E: Element>(a: &mut [E], z: &[E], x: &[E], bias: &[E]) {
    let n = a.len();
    let (z, x, bias) = (&z[..n], &x[..n], &bias[..n]);
    for j in 0..n {
        a[j] = z[j] + x[j] + bias[j];
    }
}

wide_simd! {
    /// `c' = f ⊙ c + i ⊙ g`.
    fn new_cell<E: Element>(i: &[E], f: &[E], g: &[E], c: &[E], out: &mut [E]) => new_cell_body
}

#[inline(always)]
fn new_cell_body<E: Element>(i: &[E], f: &[E], g: &[E], c: &[E], out: &mut [E]) {
    let n = out.len();
    let (i, f, g, c) = (&i[..n], &f[..n], &g[..n], &c[..n]);
    for j in 0..n {
        out[j] = f[j] * c[j] + i[j] * g[j];
    }
}

wide_simd! {
    /// `out = a ⊙ b`.
    fn mul_into<E: Element>(out: &mut [E], a: &[E], b: &[E]) => mul_into_body
}

#[inline(always)]
fn mul_into_body<E: Element>(out: &mut [E], a: &[E], b: &[E]) {
    let n = out.len();
    let (a, b) = (&a[..n], &b[..n]);
    for j in 0..n {
        out[j] = a[j] * b[j];
    }
}

wide_simd! {
    /// A padded step keeps the state: `c += m·(c' − c)`, `h += m·(h' − h)`, and outputs `m·h'`.
    fn blend<E: Element>(m: E, c: &mut [E], h: &mut [E], c_new: &[E], h_new: &mut [E]) => blend_body
}

#[inline(always)]
fn blend_body<E: Element>(m: E, c: &mut [E], h: &mut [E], c_new: &[E], h_new: &mut [E]) {
    let n = c.len();
    let (h, c_new, h_new) = (&mut h[..n], &c_new[..n], &mut h_new[..n]);
    for j in 0..n {
        c[j] += m * (c_new[j] - c[j]);
        h[j] += m * (h_new[j] - h[j]);
        h_new[j] *= m;
    }
}
