//! The fused LSTM recurrence as one differentiable op over a whole sequence.

use std::sync::Arc;

use crate::kernels::lstm::{self, LstmDims};
use crate::storage::Element;
use crate::tensor::Tensor;

/// Runs an LSTM layer's recurrence over all steps as one op (see `kernels::lstm`).
///
/// - `xp`: the input projection of every step, `[B, T, 4H]`
/// - `bias`: added to every step's gates, `[4H]` (the sum of an LSTM's two biases), or none
/// - `w_hh`: `[4H, H]`; `h0`, `c0`: `[B, H]`
/// - `rec_mask`: recurrent dropout mask `[B, H]` (a constant), `mask`: padding mask `[B, T]`
///
/// Returns `[B, T + 2, H]`: step outputs, then the final `h` and `c`. Its backward is
/// hand-written (BPTT with one matmul for the recurrent weight gradient), so it cannot be
/// differentiated twice; the reference cell (`LstmConfig::fused = false`) can.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_sequence<E: Element>(
    xp: &Tensor<E>,
    bias: Option<&Tensor<E>>,
    w_hh: &Tensor<E>,
    h0: &Tensor<E>,
    c0: &Tensor<E>,
    rec_mask: Option<&Tensor<E>>,
    mask: Option<&Tensor<E>>,
) -> Tensor<E> {
    let (b, steps, g4) = (xp.shape()[0], xp.shape()[1], xp.shape()[2]);
    let d = LstmDims { b, t: steps, h: g4 / 4 };
    let whh: Arc<Vec<E>> = Arc::new(w_hh.to_vec());
    let bias_v: Option<Vec<E>> = bias.map(|b| b.to_vec());
    let rec: Option<Arc<Vec<E>>> = rec_mask.map(|r| Arc::new(r.to_vec()));
    let msk: Option<Arc<Vec<E>>> = mask.map(|m| Arc::new(m.to_vec()));
    // Keep what backward needs only if a graph will be recorded.
    let save = crate::is_grad_enabled()
        && [Some(xp), bias, Some(w_hh), Some(h0), Some(c0)].iter().flatten().any(|t| t.needs_grad());
    let (out, saved) = with_row_major(xp, |xp| {
        lstm::forward(
            d,
            xp,
            bias_v.as_deref(),
            &whh,
            &h0.to_vec(),
            &c0.to_vec(),
            rec.as_deref().map(|v| &v[..]),
            msk.as_deref().map(|v| &v[..]),
            save,
        )
    });
    let out = Tensor::from_vec(out, &[b, steps + 2, d.h]);
    // Inputs in this order; the bias, when there is one, comes last.
    let mut inputs = vec![xp.clone(), w_hh.clone(), h0.clone(), c0.clone()];
    inputs.extend(bias.cloned());
    let with_bias = bias.is_some();
    out.record("lstm", inputs, move |c| {
        if crate::is_grad_enabled() {
            panic!(
                "lstm: the fused LSTM kernel has a hand-written backward and cannot be differentiated twice; \
                 build the layer with LstmConfig {{ fused: false, .. }} (the cell composed from primitive ops) \
                 to take gradients of gradients"
            );
        }
        let saved = saved.as_ref().expect("lstm: values saved for backward (recorded graphs always save them)");
        let g = with_row_major(c.grad, |dout| {
            lstm::backward(d, saved, &whh, rec.as_deref().map(|v| &v[..]), msk.as_deref().map(|v| &v[..]), dout)
        });
        let (b, h) = (d.b, d.h);
        let mut grads = vec![
            c.needs(0).then(|| Tensor::from_vec(g.dxp, &[b, d.t, 4 * h])),
            c.needs(1).then(|| Tensor::from_vec(g.dwhh, &[4 * h, h])),
            c.needs(2).then(|| Tensor::from_vec(g.dh0, &[b, h])),
            c.needs(3).then(|| Tensor::from_vec(g.dc0, &[b, h])),
        ];
        if with_bias {
            grads.push(c.needs(4).then(|| Tensor::from_vec(g.dbias, &[4 * h])));
        }
        grads
    })
}

/// Runs `f` on the row-major elements of `t`: in place when `t` is contiguous (the usual case
/// for the projection and the output gradient, megabytes each), else on a copy.
fn with_row_major<E: Element, R>(t: &Tensor<E>, f: impl FnOnce(&[E]) -> R) -> R {
    if t.is_contiguous() {
        let data = t.data();
        let off = t.layout().offset();
        f(&data[off..off + t.numel()])
    } else {
        let copy = t.to_vec();
        let r = f(&copy);
        crate::memory::recycle(copy);
        r
    }
}
