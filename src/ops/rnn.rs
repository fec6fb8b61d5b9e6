//! The fused LSTM layer as one differentiable op over a whole sequence.

use crate::kernels::lstm::{self, LstmDims, LstmInputs};
use crate::storage::Element;
use crate::tensor::Tensor;

/// Runs an LSTM layer over all steps as one op (see `kernels::lstm`).
///
/// - `x`: the layer's input `[B, T, I]`
/// - `w_ih`: `[4H, I]`, `w_hh`: `[4H, H]`
/// - `bias`: added to every step's gates, `[4H]` (the sum of an LSTM's two biases), or none
/// - `h0`, `c0`: `[B, H]`
/// - `rec_mask`: recurrent dropout mask `[B, H]` (a constant), `mask`: padding mask `[B, T]`
///
/// Returns `[B, T + 2, H]`: step outputs, then the final `h` and `c`. Its backward is
/// hand-written (BPTT with one matmul for both weight gradients), so it cannot be
/// differentiated twice; the reference cell (`LstmConfig::fused = false`) can.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_sequence<E: Element>(
    x: &Tensor<E>,
    w_ih: &Tensor<E>,
    w_hh: &Tensor<E>,
    bias: Option<&Tensor<E>>,
    h0: &Tensor<E>,
    c0: &Tensor<E>,
    rec_mask: Option<&Tensor<E>>,
    mask: Option<&Tensor<E>>,
) -> Tensor<E> {
    let (b, steps, ni) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let d = LstmDims { b, t: steps, h: w_hh.shape()[1], i: ni };
    let consts = Consts {
        w: lstm::combine_weights(d, &w_hh.to_vec(), &w_ih.to_vec()),
        h0: h0.to_vec(),
        c0: c0.to_vec(),
        rec_mask: rec_mask.map(Tensor::to_vec),
        mask: mask.map(Tensor::to_vec),
    };
    // Forward-only operands: not kept by the graph.
    let wt = lstm::combine_weights_t(d, &consts.w);
    let bias_v: Option<Vec<E>> = bias.map(Tensor::to_vec);
    // Keep what backward needs only if a graph will be recorded.
    let inputs: Vec<Tensor<E>> =
        [Some(x), Some(w_ih), Some(w_hh), Some(h0), Some(c0), bias].into_iter().flatten().cloned().collect();
    let save = crate::is_grad_enabled() && inputs.iter().any(|t| t.needs_grad());
    let (out, saved) = with_row_major(x, |xs| lstm::forward(d, consts.inputs(xs, &wt, bias_v.as_deref()), save));
    let out = Tensor::from_vec(out, &[b, steps + 2, d.h]);
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
        // Backward reads the input only through the saved step inputs, and needs no bias.
        let inputs = consts.inputs(&[], &[], None);
        let g = with_row_major(c.grad, |dout| lstm::backward(d, saved, inputs, dout, c.needs(0)));
        let (b, h, i) = (d.b, d.h, d.i);
        let mut grads = vec![
            g.dx.map(|dx| Tensor::from_vec(dx, &[b, d.t, i])),
            c.needs(1).then(|| Tensor::from_vec(g.dw_ih, &[4 * h, i])),
            c.needs(2).then(|| Tensor::from_vec(g.dw_hh, &[4 * h, h])),
            c.needs(3).then(|| Tensor::from_vec(g.dh0, &[b, h])),
            c.needs(4).then(|| Tensor::from_vec(g.dc0, &[b, h])),
        ];
        if with_bias {
            grads.push(c.needs(5).then(|| Tensor::from_vec(g.dbias, &[4 * h])));
        }
        grads
    })
}

/// Row-major copies of the kernel's constant operands, owned by the op's backward.
struct Consts<E> {
    /// `[W_hh, W_ih]`
    w: Vec<E>,
    h0: Vec<E>,
    c0: Vec<E>,
    rec_mask: Option<Vec<E>>,
    mask: Option<Vec<E>>,
}

impl<E> Consts<E> {
    /// The kernel's inputs with the given per-call operands.
    fn inputs<'a>(&'a self, x: &'a [E], wt: &'a [E], bias: Option<&'a [E]>) -> LstmInputs<'a, E> {
        LstmInputs {
            x,
            w: &self.w,
            wt,
            bias,
            h0: &self.h0,
            c0: &self.c0,
            rec_mask: self.rec_mask.as_deref(),
            mask: self.mask.as_deref(),
        }
    }
}

/// Runs `f` on the row-major elements of `t`: in place when `t` is contiguous (the usual case
/// for the input and the output gradient, megabytes each), else on a copy.
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
