//! Fused scaled dot-product attention, forward and backward, tiled with an online softmax.
//!
//! For each (batch, head) pair and each block of [`BR`] query rows, the forward pass walks the
//! keys in blocks of [`BC`]: the score tile `Q_i·K_jᵀ` (one small GEMM), the mask, a running
//! row maximum and row sum (the online softmax), and `O_i += P·V_j` (a second GEMM) after the
//! rows already summed are rescaled to the new maximum. Only a `BR × BC` tile of scores exists at
//! any time. Each row's log-sum-exp is returned for the backward pass, which recomputes each
//! probability tile as `exp(S − lse)` and accumulates `dV += Pᵀ·dO`, `dQ += dS·K` and
//! `dK += dSᵀ·Q` with `dS = P ∘ (dP − rowsum(dO ∘ O))` (FlashAttention-2's backward).
//!
//! Work is split across threads by (batch·head, query block) in the forward pass and by
//! batch·head in the backward pass (whose key-side gradients are summed over all query blocks);
//! each element is computed by the same chain of operations whatever the split.

use rayon::prelude::*;

use super::Par;
use super::entry::instance;
use super::gemm::SendPtr;
use super::math::{exp_shift_sum, max};
use super::matmul::{MatRef, gemm_tile};
use super::random::{drop_threshold, dropped};
use crate::tensor::element::Element;
use crate::tensor::memory;

/// Query rows per tile.
pub(crate) const BR: usize = 128;
/// Key columns per tile.
pub(crate) const BC: usize = 128;

/// One operand's `[L, size]` matrices inside its buffer: the offset of each (batch, head) pair's
/// matrix, and the row and column strides.
#[derive(Clone, Debug)]
pub(crate) struct Operand {
    pub offsets: Vec<usize>,
    pub rs: usize,
    pub cs: usize,
}

impl Operand {
    /// Rows `r0..` of matrix `b`.
    fn rows(&self, b: usize, r0: usize) -> MatRef {
        MatRef { offset: self.offsets[b] + r0 * self.rs, rs: self.rs, cs: self.cs }
    }

    /// The transpose of rows `r0..` of matrix `b` (columns `r0..` of its transpose).
    fn rows_t(&self, b: usize, r0: usize) -> MatRef {
        MatRef { offset: self.offsets[b] + r0 * self.rs, rs: self.cs, cs: self.rs }
    }
}

/// Sizes and settings of one attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Problem {
    /// Number of (batch, head) pairs.
    pub bh: usize,
    pub lq: usize,
    pub lk: usize,
    pub d: usize,
    pub dv: usize,
    pub scale: f64,
    pub causal: bool,
    pub dropout_p: f64,
    pub seed: u64,
}

impl Problem {
    /// One past the last key a block of queries starting at `i0` (of `br` rows) may see.
    fn key_end(&self, i0: usize, br: usize) -> usize {
        if self.causal { self.lk.min(i0 + br) } else { self.lk }
    }

    /// About how long the whole forward pass takes on one thread, in ns (for [`Par::for_work`]).
    fn work_ns(&self) -> f64 {
        2.0 * (self.bh * self.lq * self.lk * (self.d + self.dv)) as f64 / 20.0
    }
}

/// A mask operand: its matrices, its buffer, and whether it is added (float) or boolean (0/1).
pub(crate) type MaskOperand<'a, E> = Option<(Operand, &'a [E], bool)>;

/// Copies queries `i0..i0+br` of pair `b`, multiplied by the scale, into `qs` (row-major
/// `br × d`): the score tiles of a query block are then products of contiguous operands with
/// the scale already applied, and `dK += dSᵀ·(scale·Q)` needs no pass of its own.
fn scaled_queries<E: Element>(pr: &Problem, b: usize, (i0, br): (usize, usize), q: (&Operand, &[E]), qs: &mut [E]) {
    let scale = E::of(pr.scale);
    for (r, row) in qs[..br * pr.d].chunks_mut(pr.d).enumerate() {
        let at = q.0.rows(b, i0 + r);
        if at.cs == 1 {
            for (x, &v) in row.iter_mut().zip(&q.1[at.offset..at.offset + pr.d]) {
                *x = v * scale;
            }
        } else {
            for (c, x) in row.iter_mut().enumerate() {
                *x = q.1[at.offset + c * at.cs] * scale;
            }
        }
    }
}

/// The masked score tile of the scaled queries `qs` (rows `i0..i0+br`) against keys
/// `j0..j0+bc` of pair `b`, row-major `br × bc` in `s`. Blocked scores are `−∞`.
#[allow(clippy::too_many_arguments)]
fn scores<E: Element>(
    pr: &Problem,
    b: usize,
    (i0, br): (usize, usize),
    (j0, bc): (usize, usize),
    qs: &[E],
    k: (&Operand, &[E]),
    mask: &MaskOperand<'_, E>,
    s: &mut [E],
) {
    let qm = MatRef { offset: 0, rs: pr.d, cs: 1 };
    gemm_tile(br, pr.d, bc, qs, qm, k.1, k.0.rows_t(b, j0), s, bc, false);
    for (r, row) in s[..br * bc].chunks_mut(bc).enumerate() {
        let i = i0 + r;
        if pr.causal && j0 + bc > i + 1 {
            // Keys after `i` are in the future.
            row[(i + 1).saturating_sub(j0)..].fill(E::neg_infinity());
        }
        if let Some((m, md, additive)) = mask {
            let at = m.offsets[b] + i * m.rs + j0 * m.cs;
            for (c, x) in row.iter_mut().enumerate() {
                let mv = md[at + c * m.cs];
                if *additive {
                    *x += mv;
                } else if mv == E::zero() {
                    *x = E::neg_infinity();
                }
            }
        }
    }
}

/// Multiplies row `r` of a tile by the dropout factors of query `i`, keys `j0..`.
fn apply_dropout<E: Element>(pr: &Problem, b: usize, i: usize, j0: usize, row: &mut [E]) {
    let keep = E::of(1.0 / (1.0 - pr.dropout_p));
    let base = ((b * pr.lq + i) * pr.lk + j0) as u64;
    let threshold = drop_threshold(pr.dropout_p);
    for (c, x) in row.iter_mut().enumerate() {
        *x = if dropped(pr.seed, base + c as u64, threshold) { E::zero() } else { *x * keep };
    }
}

/// The attention output `[bh, Lq, dv]` (row-major) and each query row's log-sum-exp
/// `[bh, Lq]` (`−∞` for a row whose keys are all blocked; its output is 0).
pub(crate) fn forward<E: Element>(
    par: Par,
    pr: &Problem,
    q: (Operand, &[E]),
    k: (Operand, &[E]),
    v: (Operand, &[E]),
    mask: MaskOperand<'_, E>,
) -> (Vec<E>, Vec<E>) {
    type F<T> =
        fn(Par, &Problem, (Operand, &[T]), (Operand, &[T]), (Operand, &[T]), MaskOperand<'_, T>) -> (Vec<T>, Vec<T>);
    static F32: F<f32> = forward_impl::<f32>;
    static F64: F<f64> = forward_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, pr, q, k, v, mask)
}

fn forward_impl<E: Element>(
    par: Par,
    pr: &Problem,
    q: (Operand, &[E]),
    k: (Operand, &[E]),
    v: (Operand, &[E]),
    mask: MaskOperand<'_, E>,
) -> (Vec<E>, Vec<E>) {
    let (lq, dv) = (pr.lq, pr.dv);
    // Every element of both is written below.
    let mut out: Vec<E> = memory::take(pr.bh * lq * dv);
    let mut lse: Vec<E> = memory::take(pr.bh * lq);
    let blocks = lq.div_ceil(BR);
    let (op, lp) = (SendPtr(out.as_mut_ptr()), SendPtr(lse.as_mut_ptr()));
    let task = |t: usize, bufs: &mut Bufs<E>| {
        let (b, i0) = (t / blocks, (t % blocks) * BR);
        let br = BR.min(lq - i0);
        let (op, lp) = (&op, &lp);
        // SAFETY: task `t` writes rows i0..i0+br of pair b only (of `out` and `lse`), which no
        // other task touches; both buffers outlive the parallel loop, which joins every task.
        let (o, l) = unsafe {
            (
                std::slice::from_raw_parts_mut(op.0.add((b * lq + i0) * dv), br * dv),
                std::slice::from_raw_parts_mut(lp.0.add(b * lq + i0), br),
            )
        };
        forward_block(pr, b, (i0, br), (&q.0, q.1), (&k.0, k.1), (&v.0, v.1), &mask, o, l, bufs);
    };
    let tasks = pr.bh * blocks;
    if par.for_work(pr.work_ns()).is_parallel() && tasks > 1 {
        (0..tasks).into_par_iter().for_each_init(|| Bufs::new(pr.d), |bufs, t| task(t, bufs));
    } else {
        let mut bufs = Bufs::new(pr.d);
        (0..tasks).for_each(|t| task(t, &mut bufs));
    }
    (out, lse)
}

/// A task's scratch tiles.
struct Bufs<E> {
    /// Scores, then probabilities.
    s: Vec<E>,
    /// Gradients of the probabilities, then of the scores.
    p: Vec<E>,
    /// The scaled query block.
    qs: Vec<E>,
    /// Running row maxima.
    m: Vec<E>,
}

impl<E: Element> Bufs<E> {
    fn new(d: usize) -> Self {
        Bufs {
            s: vec![E::zero(); BR * BC],
            p: vec![E::zero(); BR * BC],
            qs: vec![E::zero(); BR * d],
            m: vec![E::zero(); BR],
        }
    }
}

/// The forward pass of one block of query rows: writes its output rows and log-sum-exps.
#[allow(clippy::too_many_arguments)]
fn forward_block<E: Element>(
    pr: &Problem,
    b: usize,
    (i0, br): (usize, usize),
    q: (&Operand, &[E]),
    k: (&Operand, &[E]),
    v: (&Operand, &[E]),
    mask: &MaskOperand<'_, E>,
    o: &mut [E],
    lse: &mut [E],
    bufs: &mut Bufs<E>,
) {
    let dv = pr.dv;
    let (m, l) = (&mut bufs.m[..br], lse);
    m.fill(E::neg_infinity());
    l.fill(E::zero());
    o.fill(E::zero());
    let kend = pr.key_end(i0, br);
    scaled_queries(pr, b, (i0, br), q, &mut bufs.qs);
    for j0 in (0..kend).step_by(BC) {
        let bc = BC.min(kend - j0);
        let s = &mut bufs.s[..br * bc];
        scores(pr, b, (i0, br), (j0, bc), &bufs.qs, k, mask, s);
        for (r, row) in s.chunks_mut(bc).enumerate() {
            let m_new = m[r].max(max(row));
            if m_new == E::neg_infinity() {
                // Every key so far blocked: nothing to add.
                row.fill(E::zero());
                continue;
            }
            let alpha = (m[r] - m_new).exp();
            l[r] = l[r] * alpha + exp_shift_sum(row, m_new);
            if alpha != E::one() {
                o[r * dv..(r + 1) * dv].iter_mut().for_each(|x| *x *= alpha);
            }
            m[r] = m_new;
            if pr.dropout_p > 0.0 {
                apply_dropout(pr, b, i0 + r, j0, row);
            }
        }
        let p = MatRef { offset: 0, rs: bc, cs: 1 };
        gemm_tile(br, bc, dv, s, p, v.1, v.0.rows(b, j0), o, dv, true);
    }
    for r in 0..br {
        if l[r] > E::zero() {
            let inv = E::one() / l[r];
            o[r * dv..(r + 1) * dv].iter_mut().for_each(|x| *x *= inv);
            l[r] = m[r] + l[r].ln();
        } else {
            l[r] = E::neg_infinity();
        }
    }
}

/// The gradients of one attention call, row-major at the full `[bh, …]` shapes.
pub(crate) struct Grads<E> {
    pub dq: Vec<E>,
    pub dk: Vec<E>,
    pub dv: Vec<E>,
    /// `∂L/∂scores` `[bh, Lq, Lk]`, the gradient of an additive mask, when asked for.
    pub dmask: Option<Vec<E>>,
}

/// The backward pass: from the output gradient `g` `[bh, Lq, dv]`, the output `o` and the saved
/// log-sum-exps, the gradients of q, k, v (and of an additive mask if `mask_grad`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<E: Element>(
    par: Par,
    pr: &Problem,
    q: (Operand, &[E]),
    k: (Operand, &[E]),
    v: (Operand, &[E]),
    mask: MaskOperand<'_, E>,
    g: (Operand, &[E]),
    o: (Operand, &[E]),
    lse: &[E],
    mask_grad: bool,
) -> Grads<E> {
    type F<T> = fn(
        Par,
        &Problem,
        (Operand, &[T]),
        (Operand, &[T]),
        (Operand, &[T]),
        MaskOperand<'_, T>,
        (Operand, &[T]),
        (Operand, &[T]),
        &[T],
        bool,
    ) -> Grads<T>;
    static F32: F<f32> = backward_impl::<f32>;
    static F64: F<f64> = backward_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, pr, q, k, v, mask, g, o, lse, mask_grad)
}

#[allow(clippy::too_many_arguments)]
fn backward_impl<E: Element>(
    par: Par,
    pr: &Problem,
    q: (Operand, &[E]),
    k: (Operand, &[E]),
    v: (Operand, &[E]),
    mask: MaskOperand<'_, E>,
    g: (Operand, &[E]),
    o: (Operand, &[E]),
    lse: &[E],
    mask_grad: bool,
) -> Grads<E> {
    let (lq, lk, d, dv) = (pr.lq, pr.lk, pr.d, pr.dv);
    // From the buffer cache (no page faults for fresh memory on every step), zeroed: the
    // gradients are accumulated tile by tile.
    let zeros = |n: usize| {
        let mut v: Vec<E> = memory::take(n);
        v.fill(E::zero());
        v
    };
    let mut grads = Grads {
        dq: zeros(pr.bh * lq * d),
        dk: zeros(pr.bh * lk * d),
        dv: zeros(pr.bh * lk * dv),
        dmask: mask_grad.then(|| zeros(pr.bh * lq * lk)),
    };
    let ptrs = (
        SendPtr(grads.dq.as_mut_ptr()),
        SendPtr(grads.dk.as_mut_ptr()),
        SendPtr(grads.dv.as_mut_ptr()),
        grads.dmask.as_mut().map(|m| SendPtr(m.as_mut_ptr())),
    );
    let task = |b: usize, bufs: &mut Bufs<E>| {
        let ptrs = &ptrs;
        // SAFETY: task `b` writes the gradients of pair b only (disjoint ranges of each buffer);
        // the buffers outlive the parallel loop, which joins every task.
        let out = unsafe {
            PairGrads {
                dq: std::slice::from_raw_parts_mut(ptrs.0.0.add(b * lq * d), lq * d),
                dk: std::slice::from_raw_parts_mut(ptrs.1.0.add(b * lk * d), lk * d),
                dv: std::slice::from_raw_parts_mut(ptrs.2.0.add(b * lk * dv), lk * dv),
                dmask: ptrs.3.as_ref().map(|p| std::slice::from_raw_parts_mut(p.0.add(b * lq * lk), lq * lk)),
            }
        };
        backward_pair(
            pr,
            b,
            (&q.0, q.1),
            (&k.0, k.1),
            (&v.0, v.1),
            &mask,
            (&g.0, g.1),
            (&o.0, o.1),
            &lse[b * lq..(b + 1) * lq],
            out,
            bufs,
        );
    };
    if par.for_work(2.0 * pr.work_ns()).is_parallel() && pr.bh > 1 {
        (0..pr.bh).into_par_iter().for_each_init(|| Bufs::new(pr.d), |bufs, b| task(b, bufs));
    } else {
        let mut bufs = Bufs::new(pr.d);
        (0..pr.bh).for_each(|b| task(b, &mut bufs));
    }
    grads
}

/// One pair's gradient buffers.
struct PairGrads<'a, E> {
    dq: &'a mut [E],
    dk: &'a mut [E],
    dv: &'a mut [E],
    dmask: Option<&'a mut [E]>,
}

/// The backward pass of one (batch, head) pair.
#[allow(clippy::too_many_arguments)]
fn backward_pair<E: Element>(
    pr: &Problem,
    b: usize,
    q: (&Operand, &[E]),
    k: (&Operand, &[E]),
    v: (&Operand, &[E]),
    mask: &MaskOperand<'_, E>,
    g: (&Operand, &[E]),
    o: (&Operand, &[E]),
    lse: &[E],
    mut out: PairGrads<'_, E>,
    bufs: &mut Bufs<E>,
) {
    let (lq, lk, d, dv) = (pr.lq, pr.lk, pr.d, pr.dv);
    // rowsum(dO ∘ O) per query.
    let delta: Vec<E> = (0..lq)
        .map(|i| {
            let (gi, oi) = (g.0.rows(b, i), o.0.rows(b, i));
            if gi.cs == 1 && oi.cs == 1 {
                let (gr, or) = (&g.1[gi.offset..gi.offset + dv], &o.1[oi.offset..oi.offset + dv]);
                gr.iter().zip(or).fold(E::zero(), |a, (&x, &y)| a + x * y)
            } else {
                (0..dv).fold(E::zero(), |a, c| a + g.1[gi.offset + c * gi.cs] * o.1[oi.offset + c * oi.cs])
            }
        })
        .collect();
    for i0 in (0..lq).step_by(BR) {
        let br = BR.min(lq - i0);
        let kend = pr.key_end(i0, br);
        scaled_queries(pr, b, (i0, br), q, &mut bufs.qs);
        let qs = &bufs.qs[..br * d];
        for j0 in (0..kend).step_by(BC) {
            let bc = BC.min(kend - j0);
            let (s, dp) = (&mut bufs.s[..br * bc], &mut bufs.p[..br * bc]);
            scores(pr, b, (i0, br), (j0, bc), qs, k, mask, s);
            // P = exp(S − lse); rows with every key blocked stay 0.
            for (r, row) in s.chunks_mut(bc).enumerate() {
                let l = lse[i0 + r];
                if l == E::neg_infinity() {
                    row.fill(E::zero());
                } else {
                    exp_shift_sum(row, l);
                }
            }
            // dV_j += P_dᵀ·dO_i, with the dropped-out probabilities P_d (in dp for now).
            let pt = MatRef { offset: 0, rs: 1, cs: bc };
            if pr.dropout_p > 0.0 {
                dp.copy_from_slice(s);
                for (r, row) in dp.chunks_mut(bc).enumerate() {
                    apply_dropout(pr, b, i0 + r, j0, row);
                }
                gemm_tile(bc, br, dv, dp, pt, g.1, g.0.rows(b, i0), &mut out.dv[j0 * dv..], dv, true);
            } else {
                gemm_tile(bc, br, dv, s, pt, g.1, g.0.rows(b, i0), &mut out.dv[j0 * dv..], dv, true);
            }
            // dP = dO_i·V_jᵀ (through the dropout), then dS = P ∘ (dP − delta).
            gemm_tile(br, dv, bc, g.1, g.0.rows(b, i0), v.1, v.0.rows_t(b, j0), dp, bc, false);
            if pr.dropout_p > 0.0 {
                for (r, row) in dp.chunks_mut(bc).enumerate() {
                    apply_dropout(pr, b, i0 + r, j0, row);
                }
            }
            for (r, (drow, prow)) in dp.chunks_mut(bc).zip(s.chunks(bc)).enumerate() {
                let dl = delta[i0 + r];
                for (x, &p) in drow.iter_mut().zip(prow) {
                    *x = p * (*x - dl);
                }
                if let Some(dm) = out.dmask.as_deref_mut() {
                    dm[(i0 + r) * lk + j0..][..bc].copy_from_slice(drow);
                }
            }
            // dQ_i += dS·K_j (scaled once at the end) and dK_j += dSᵀ·(scale·Q_i).
            let ds = MatRef { offset: 0, rs: bc, cs: 1 };
            gemm_tile(br, bc, d, dp, ds, k.1, k.0.rows(b, j0), &mut out.dq[i0 * d..], d, true);
            let qm = MatRef { offset: 0, rs: d, cs: 1 };
            gemm_tile(bc, br, d, dp, pt, qs, qm, &mut out.dk[j0 * d..], d, true);
        }
    }
    let scale = E::of(pr.scale);
    out.dq.iter_mut().for_each(|x| *x *= scale);
}
