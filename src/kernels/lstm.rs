//! The fused LSTM recurrence over a whole sequence, forward and backward (BPTT), on raw slices.
//!
//! Gate order is PyTorch's: input `i`, forget `f`, cell `g`, output `o`. Per step `t`:
//!
//! ```text
//! z  = xp[:, t] + (h ⊙ r) · W_hhᵀ              (r: recurrent dropout mask, or 1)
//! i, f, o = σ(z_i, z_f, z_o);  g = tanh(z_g)
//! c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c')
//! h, c = m·h' + (1 − m)·h,  m·c' + (1 − m)·c   (m: 1 for a real step, 0 for padding)
//! out[:, t] = m·h'
//! ```
//!
//! All buffers are row-major with the batch first: `[B, T, ·]`.

use super::matmul::{MatRef, gemm};
use crate::storage::Element;

/// Sizes of one recurrence: batch, steps, hidden size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LstmDims {
    pub b: usize,
    pub t: usize,
    pub h: usize,
}

/// What the backward pass needs from the forward pass.
pub(crate) struct LstmSaved<E> {
    /// Gate activations `[B, T, 4H]` (after σ / tanh).
    acts: Vec<E>,
    /// Cell state before each step `[B, T, H]`.
    cprev: Vec<E>,
    /// The new cell value `c'` of each step `[B, T, H]`.
    cnew: Vec<E>,
    /// The recurrent input of each step, `h ⊙ r`, `[B, T, H]`.
    hm: Vec<E>,
}

/// Runs the recurrence. Returns `[B, T + 2, H]`: the outputs of every step, then the final `h`,
/// then the final `c`; and the values saved for backward.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<E: Element>(
    d: LstmDims,
    xp: &[E],
    whh: &[E],
    h0: &[E],
    c0: &[E],
    rec_mask: Option<&[E]>,
    mask: Option<&[E]>,
) -> (Vec<E>, LstmSaved<E>) {
    let LstmDims { b, t: steps, h } = d;
    let g4 = 4 * h;
    let mut out = vec![E::zero(); b * (steps + 2) * h];
    let mut saved = LstmSaved {
        acts: vec![E::zero(); b * steps * g4],
        cprev: vec![E::zero(); b * steps * h],
        cnew: vec![E::zero(); b * steps * h],
        hm: vec![E::zero(); b * steps * h],
    };
    let (mut hs, mut cs) = (h0.to_vec(), c0.to_vec());
    let mut z = vec![E::zero(); b * g4];
    let w_t = MatRef { offset: 0, rs: 1, cs: h }; // W_hhᵀ viewed in place: [H, 4H]
    for t in 0..steps {
        // hm = h ⊙ r, saved for the weight gradient.
        for bi in 0..b {
            let dst = &mut saved.hm[(bi * steps + t) * h..][..h];
            let src = &hs[bi * h..][..h];
            match rec_mask {
                Some(r) => dst.iter_mut().zip(src).zip(&r[bi * h..][..h]).for_each(|((d, &x), &m)| *d = x * m),
                None => dst.copy_from_slice(src),
            }
        }
        // z = hm · W_hhᵀ, reading hm for step t straight out of the [B, T, H] buffer.
        let hm_t = MatRef { offset: t * h, rs: steps * h, cs: 1 };
        gemm(b, h, g4, &saved.hm, hm_t, whh, w_t, &mut z);
        for bi in 0..b {
            let row = (bi * steps + t) * h;
            let orow = (bi * (steps + 2) + t) * h;
            let ar = &mut saved.acts[(bi * steps + t) * g4..][..g4];
            for ((a, &zv), &xv) in ar.iter_mut().zip(&z[bi * g4..][..g4]).zip(&xp[(bi * steps + t) * g4..][..g4]) {
                *a = zv + xv;
            }
            E::sigmoid_inplace(&mut ar[..2 * h]);
            E::tanh_inplace(&mut ar[2 * h..3 * h]);
            E::sigmoid_inplace(&mut ar[3 * h..]);
            let (i, rest) = ar.split_at(h);
            let (f, rest) = rest.split_at(h);
            let (g, o) = rest.split_at(h);
            let cp = &mut cs[bi * h..][..h];
            let hp = &mut hs[bi * h..][..h];
            saved.cprev[row..row + h].copy_from_slice(cp);
            let cn = &mut saved.cnew[row..row + h];
            for j in 0..h {
                cn[j] = f[j] * cp[j] + i[j] * g[j];
            }
            let hn = &mut out[orow..orow + h];
            hn.copy_from_slice(cn);
            E::tanh_inplace(hn);
            for (hv, &ov) in hn.iter_mut().zip(o) {
                *hv *= ov;
            }
            match mask.map(|m| m[bi * steps + t]) {
                None => {
                    cp.copy_from_slice(cn);
                    hp.copy_from_slice(hn);
                }
                // Blend, as the reference cell does: state + m·(new − state); the output is m·h'.
                Some(m) => {
                    for j in 0..h {
                        cp[j] += m * (cn[j] - cp[j]);
                        hp[j] += m * (hn[j] - hp[j]);
                        hn[j] *= m;
                    }
                }
            }
        }
    }
    for bi in 0..b {
        out[(bi * (steps + 2) + steps) * h..][..h].copy_from_slice(&hs[bi * h..][..h]);
        out[(bi * (steps + 2) + steps + 1) * h..][..h].copy_from_slice(&cs[bi * h..][..h]);
    }
    (out, saved)
}

/// Gradients of the recurrence's inputs, given the gradient of its `[B, T + 2, H]` output.
pub(crate) struct LstmGrads<E> {
    pub dxp: Vec<E>,
    pub dwhh: Vec<E>,
    pub dh0: Vec<E>,
    pub dc0: Vec<E>,
}

/// Backpropagation through time. The recurrent weight gradient is one matmul over all steps:
/// `dW_hh = dZᵀ · HM` with `dZ: [B·T, 4H]` and `HM: [B·T, H]`.
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
    let mut dz = vec![E::zero(); b * steps * g4];
    let mut dh: Vec<E> = (0..b).flat_map(|bi| dout[(bi * (steps + 2) + steps) * h..][..h].to_vec()).collect();
    let mut dc: Vec<E> = (0..b).flat_map(|bi| dout[(bi * (steps + 2) + steps + 1) * h..][..h].to_vec()).collect();
    let mut dhm = vec![E::zero(); b * h];
    let one = E::one();
    let mut tc = vec![E::zero(); h];
    for t in (0..steps).rev() {
        for bi in 0..b {
            let m = mask.map_or(one, |m| m[bi * steps + t]);
            let row = (bi * steps + t) * h;
            let ar = &saved.acts[(bi * steps + t) * g4..][..g4];
            let dzr = &mut dz[(bi * steps + t) * g4..][..g4];
            let orow = (bi * (steps + 2) + t) * h;
            tc.copy_from_slice(&saved.cnew[row..row + h]);
            E::tanh_inplace(&mut tc);
            let (dhr, dcr) = (&mut dh[bi * h..][..h], &mut dc[bi * h..][..h]);
            let (cprev, doutr) = (&saved.cprev[row..row + h], &dout[orow..orow + h]);
            for j in 0..h {
                let (i, f, g, o) = (ar[j], ar[h + j], ar[2 * h + j], ar[3 * h + j]);
                // Split the carried gradients between the new state and the carried-over one.
                let dh_new = m * (dhr[j] + doutr[j]);
                let dc_new = m * dcr[j];
                let tcj = tc[j];
                let dcn = dc_new + dh_new * o * (one - tcj * tcj);
                dzr[j] = dcn * g * i * (one - i);
                dzr[h + j] = dcn * cprev[j] * f * (one - f);
                dzr[2 * h + j] = dcn * i * (one - g * g);
                dzr[3 * h + j] = dh_new * tcj * o * (one - o);
                dcr[j] = dcn * f + (one - m) * dcr[j];
                dhr[j] *= one - m;
            }
        }
        // dh += (dZ_t · W_hh) ⊙ r
        let dz_t = MatRef { offset: t * g4, rs: steps * g4, cs: 1 };
        gemm(b, g4, h, &dz, dz_t, whh, MatRef { offset: 0, rs: h, cs: 1 }, &mut dhm);
        match rec_mask {
            Some(r) => dh.iter_mut().zip(&dhm).zip(r).for_each(|((d, &x), &m)| *d += x * m),
            None => dh.iter_mut().zip(&dhm).for_each(|(d, &x)| *d += x),
        }
    }
    let mut dwhh = vec![E::zero(); g4 * h];
    let dz_t = MatRef { offset: 0, rs: 1, cs: g4 };
    gemm(g4, b * steps, h, &dz, dz_t, &saved.hm, MatRef { offset: 0, rs: h, cs: 1 }, &mut dwhh);
    LstmGrads { dxp: dz, dwhh, dh0: dh, dc0: dc }
}
