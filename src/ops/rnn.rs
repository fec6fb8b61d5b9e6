//! The fused LSTM layer as one differentiable op over a whole sequence.

use crate::kernels::Par;
use crate::kernels::gemm::PackedB;
use crate::kernels::lstm::{self, LstmDims, LstmInputs, LstmOutGrads, LstmSaved};
use crate::tensor::element::Element;
use crate::tensor::handle::{Ctx, Grad, Op, Tensor, record_outputs};

/// Where a layer keeps its LSTM weights packed for inference (see `LstmOp::forward`).
pub(crate) type LstmPack<E> = crate::ops::matmul::WeightPack<PackedB<E>>;

/// The fused LSTM layer over a whole sequence: one op with three outputs, the step outputs
/// `[B, T, H]` and the final `h` and `c` (`[B, H]` each).
///
/// Its backward is hand-written (BPTT with one matmul for both weight gradients), so it cannot
/// be differentiated twice; the reference cell (`LstmConfig::fused = false`) can.
pub(crate) struct LstmOp<E: Element> {
    d: LstmDims,
    consts: Consts<E>,
    /// What backward needs (only kept when a graph is recorded).
    saved: Option<LstmSaved<E>>,
    with_bias: bool,
}

impl<E: Element> LstmOp<E> {
    /// Runs the layer (see `kernels::lstm`) and records it when a gradient is needed.
    ///
    /// - `x`: the layer's input `[B, T, I]`
    /// - `w_ih`: `[4H, I]`, `w_hh`: `[4H, H]`
    /// - `bias`: added to every step's gates, `[4H]` (the sum of an LSTM's two biases), or none
    /// - `h0`, `c0`: `[B, H]`
    /// - `rec_mask`: recurrent dropout mask `[B, H]` (a constant), `mask`: padding mask `[B, T]`
    ///
    /// - `pack`: where the layer keeps its packed weights between calls in inference (used when
    ///   no graph is recorded; training packs afresh, since every step changes the weights)
    ///
    /// Returns `(outputs [B, T, H], h [B, H], c [B, H])`.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub(crate) fn forward(
        x: &Tensor<E>,
        w_ih: &Tensor<E>,
        w_hh: &Tensor<E>,
        bias: Option<&Tensor<E>>,
        h0: &Tensor<E>,
        c0: &Tensor<E>,
        rec_mask: Option<&Tensor<E>>,
        mask: Option<&Tensor<E>>,
        pack: Option<&LstmPack<E>>,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        let (b, steps, ni) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let d = LstmDims { b, t: steps, h: w_hh.shape()[1], i: ni };
        // Keep what backward needs only if a graph will be recorded.
        let inputs: Vec<Tensor<E>> =
            [Some(x), Some(w_ih), Some(w_hh), Some(h0), Some(c0), bias].into_iter().flatten().cloned().collect();
        let save = crate::is_grad_enabled() && inputs.iter().any(|t| t.needs_grad());
        let combine = || lstm::combine_weights(d, &w_hh.to_vec(), &w_ih.to_vec());
        // Inference with a cache: the packed weights from it, and no combined copy (only
        // backward reads that).
        let packed = match pack {
            Some(cache) if !save => Some(cache.get(&[w_ih, w_hh], || lstm::pack_weights(d, &combine()))),
            _ => None,
        };
        let consts = Consts {
            w: if packed.is_some() { Vec::new() } else { combine() },
            h0: h0.to_vec(),
            c0: c0.to_vec(),
            rec_mask: rec_mask.map(Tensor::to_vec),
            mask: mask.map(Tensor::to_vec),
        };
        // Forward-only operand: not kept by the graph.
        let bias_v: Option<Vec<E>> = bias.map(Tensor::to_vec);
        let par = Par::current();
        let (out, saved) =
            lstm::forward(par, d, consts.inputs(&row_major(x), bias_v.as_deref()), save, packed.as_deref());
        let outputs = vec![
            Tensor::from_data(out.seq, &[b, steps, d.h]),
            Tensor::from_data(out.h, &[b, d.h]),
            Tensor::from_data(out.c, &[b, d.h]),
        ];
        let op = LstmOp { d, consts, saved, with_bias: bias.is_some() };
        let mut outs = record_outputs(outputs, op, inputs).into_iter();
        let mut next = || outs.next().expect("three outputs");
        (next(), next(), next())
    }
}

impl<E: Element> Op<E> for LstmOp<E> {
    fn name(&self) -> &'static str {
        "lstm"
    }

    fn outputs(&self) -> usize {
        3
    }

    fn not_twice(&self) -> Option<&'static str> {
        Some(
            "the fused LSTM kernel has a hand-written backward and cannot be differentiated twice; \
             build the layer with LstmConfig { fused: false, .. } (the cell composed from primitive ops) \
             to take gradients of gradients",
        )
    }

    /// BPTT: `dx`, `dW_ih`, `dW_hh`, `dh0`, `dc0` and the bias gradient from the gradients of
    /// the three outputs (see `kernels::lstm::backward`).
    fn backward(&self, c: &Ctx<'_, E>) -> Vec<Option<Grad<E>>> {
        let d = self.d;
        let saved = self.saved.as_ref().expect("lstm: values saved for backward (recorded graphs always save them)");
        // Backward reads the input only through the saved step inputs, and needs no bias.
        let inputs = self.consts.inputs(&[], None);
        let [gs, gh, gc] = [0, 1, 2].map(|i| c.grads[i].as_ref().map(row_major));
        let dout = LstmOutGrads { seq: gs.as_deref(), h: gh.as_deref(), c: gc.as_deref() };
        let g = lstm::backward(Par::current(), d, saved, inputs, dout, c.needs(0));
        let (b, h, i) = (d.b, d.h, d.i);
        let mut grads = vec![
            g.dx.map(|dx| Tensor::from_data(dx, &[b, d.t, i])),
            c.needs(1).then(|| Tensor::from_data(g.dw_ih, &[4 * h, i])),
            c.needs(2).then(|| Tensor::from_data(g.dw_hh, &[4 * h, h])),
            c.needs(3).then(|| Tensor::from_data(g.dh0, &[b, h])),
            c.needs(4).then(|| Tensor::from_data(g.dc0, &[b, h])),
        ];
        if self.with_bias {
            grads.push(c.needs(5).then(|| Tensor::from_data(g.dbias, &[4 * h])));
        }
        grads.into_iter().map(|g| g.map(Grad::Full)).collect()
    }
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
    fn inputs<'a>(&'a self, x: &'a [E], bias: Option<&'a [E]>) -> LstmInputs<'a, E> {
        LstmInputs {
            x,
            w: &self.w,
            bias,
            h0: &self.h0,
            c0: &self.c0,
            rec_mask: self.rec_mask.as_deref(),
            mask: self.mask.as_deref(),
        }
    }
}

/// The row-major elements of `t`: a snapshot of its own buffer when contiguous (the usual case
/// for the input and the output gradients, megabytes each), else a copy that goes back to the
/// buffer cache when dropped.
fn row_major<E: Element>(t: &Tensor<E>) -> RowMajor<E> {
    let l = t.layout();
    if l.is_contiguous() {
        RowMajor::Shared(t.data(), l.offset()..l.offset() + l.numel())
    } else {
        RowMajor::Copy(t.to_vec())
    }
}

/// A tensor's row-major elements (see [`row_major`]).
enum RowMajor<E: Element> {
    Shared(std::sync::Arc<Vec<E>>, std::ops::Range<usize>),
    Copy(Vec<E>),
}

impl<E: Element> std::ops::Deref for RowMajor<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        match self {
            RowMajor::Shared(data, range) => &data[range.clone()],
            RowMajor::Copy(v) => v,
        }
    }
}

impl<E: Element> Drop for RowMajor<E> {
    fn drop(&mut self) {
        if let RowMajor::Copy(v) = self {
            crate::tensor::memory::recycle(std::mem::take(v));
        }
    }
}
