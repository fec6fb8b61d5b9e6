//! `Lstm`: a multi-layer, optionally bidirectional LSTM with PyTorch's parameters and Keras's
//! dropout and masking semantics.

use rand::Rng;

use super::dropout::{Dropout, check_probability};
use super::init::Init;
use super::module::{Mask, Module, Param, join};
use crate::{Element, Tensor};

/// Settings of an [`Lstm`]. Start from [`LstmConfig::new`] and change fields.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmConfig {
    /// Features per input step.
    pub input_size: usize,
    /// Size of the hidden and cell state.
    pub hidden_size: usize,
    /// Stacked layers (default 1).
    pub num_layers: usize,
    /// Run a second direction over the reversed sequences and concatenate (default false).
    pub bidirectional: bool,
    /// Use the two bias vectors (default true).
    pub bias: bool,
    /// Keras's `dropout`: drop probability on each layer's inputs, with one mask per sequence
    /// shared by all steps (default 0).
    pub dropout: f64,
    /// Keras's `recurrent_dropout`: drop probability on the recurrent state fed to `W_hh`, one
    /// mask per sequence shared by all steps (default 0).
    pub recurrent_dropout: f64,
    /// PyTorch's `dropout`: drop probability on each layer's outputs except the last (default 0).
    pub layer_dropout: f64,
    /// What [`Module::forward`] returns: the whole output sequence `[B, T, H·dirs]` (true) or
    /// only the final state `[B, H·dirs]` (false, the default, as Keras's
    /// `return_sequences=False`).
    pub return_sequences: bool,
    /// Run each layer's recurrence as one fused op with a hand-written backward (default true).
    /// `false` composes the cell from primitive ops: slower, but differentiable twice.
    pub fused: bool,
    /// Seed of the dropout masks.
    pub seed: u64,
}

impl LstmConfig {
    /// One unidirectional layer, no dropout, fused, returning the final state.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            bias: true,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            layer_dropout: 0.0,
            return_sequences: false,
            fused: true,
            seed: 0,
        }
    }
}

/// The `(h, c)` state of every layer and direction: each `[num_layers · dirs, B, H]`, ordered
/// as in PyTorch (layer 0 forward, layer 0 reverse, layer 1 forward, …).
#[derive(Clone, Debug)]
pub struct LstmState<E: Element = f32> {
    /// Hidden state.
    pub h: Tensor<E>,
    /// Cell state.
    pub c: Tensor<E>,
}

/// Everything an LSTM pass produces.
#[derive(Clone, Debug)]
pub struct LstmOutput<E: Element = f32> {
    /// The last layer's output at every step, `[B, T, H·dirs]` (zero at padded steps).
    pub output: Tensor<E>,
    /// The final state; with a mask, each sequence's state at its last real step.
    pub state: LstmState<E>,
}

#[derive(Clone, Debug)]
struct Cell<E: Element> {
    w_ih: Param<E>,
    w_hh: Param<E>,
    b_ih: Option<Param<E>>,
    b_hh: Option<Param<E>>,
}

/// A long short-term memory recurrent layer (or stack of layers).
///
/// # Shapes
/// - input: `[batch, seq, input_size]` (batch first)
/// - [`forward_full`](Lstm::forward_full): output `[batch, seq, hidden · dirs]`, state
///   `[layers · dirs, batch, hidden]`
/// - [`Module::forward`]: the output sequence, or the final state `[batch, hidden · dirs]` when
///   `return_sequences` is false
/// - parameters, per layer `l` (suffix `_reverse` for the second direction), PyTorch's names,
///   shapes and gate order (i, f, g, o): `weight_ih_l{l}` `[4H, in]`, `weight_hh_l{l}` `[4H, H]`,
///   `bias_ih_l{l}` `[4H]`, `bias_hh_l{l}` `[4H]`; initialised `U(±1/√H)` as in PyTorch.
///
/// Padding: give a [`Mask`] (or let an `Embedding` with `mask_zero` make one). At a padded step
/// the state is carried over unchanged and the output is zero, so the final state is each
/// sequence's state at its last real token (PyTorch's packed sequences, Keras's masking).
///
/// ```
/// use rand::SeedableRng;
/// use tensorgrad::{Tensor, nn::{Lstm, LstmConfig, Mask, Module}};
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let lstm = Lstm::new(LstmConfig::new(3, 5), &mut rng);
/// let x = Tensor::ones(&[2, 4, 3]);
/// assert_eq!(lstm.forward(&x).shape(), &[2, 5]);
/// let out = lstm.forward_full(&x, None, Some(&Mask::from_lengths(&[4, 2], 4)));
/// assert_eq!(out.output.shape(), &[2, 4, 5]);
/// assert_eq!(out.state.h.shape(), &[1, 2, 5]);
/// ```
#[derive(Clone, Debug)]
pub struct Lstm<E: Element = f32> {
    config: LstmConfig,
    cells: Vec<Cell<E>>,
    input_dropout: Dropout,
    recurrent_dropout: Dropout,
    layer_dropout: Dropout,
    training: bool,
}

impl<E: Element> Lstm<E> {
    /// A new LSTM with PyTorch's initialisation.
    #[track_caller]
    pub fn new(config: LstmConfig, rng: &mut impl Rng) -> Self {
        let h = config.hidden_size;
        if config.input_size == 0 || h == 0 || config.num_layers == 0 {
            panic!(
                "Lstm: input size, hidden size and number of layers must be at least 1, got {}, {h}, {}",
                config.input_size, config.num_layers
            );
        }
        check_probability("Lstm (dropout)", config.dropout);
        check_probability("Lstm (recurrent_dropout)", config.recurrent_dropout);
        check_probability("Lstm (layer_dropout)", config.layer_dropout);
        let a = 1.0 / (h as f64).sqrt();
        let init = Init::Uniform(-a, a);
        let dirs = if config.bidirectional { 2 } else { 1 };
        let mut cells = Vec::new();
        for l in 0..config.num_layers {
            let inp = if l == 0 { config.input_size } else { h * dirs };
            for _ in 0..dirs {
                let w_ih = Param::new(init.tensor(&[4 * h, inp], rng));
                let w_hh = Param::new(init.tensor(&[4 * h, h], rng));
                let (b_ih, b_hh) = if config.bias {
                    (Some(Param::new(init.tensor(&[4 * h], rng))), Some(Param::new(init.tensor(&[4 * h], rng))))
                } else {
                    (None, None)
                };
                cells.push(Cell { w_ih, w_hh, b_ih, b_hh });
            }
        }
        let seed = config.seed;
        Lstm {
            input_dropout: Dropout::new(config.dropout, seed),
            recurrent_dropout: Dropout::new(config.recurrent_dropout, seed.wrapping_add(1)),
            layer_dropout: Dropout::new(config.layer_dropout, seed.wrapping_add(2)),
            config,
            cells,
            training: true,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    fn dirs(&self) -> usize {
        if self.config.bidirectional { 2 } else { 1 }
    }

    /// Runs every layer over the sequence and returns the output sequence and the final state.
    ///
    /// `state`: the initial `(h, c)`, each `[layers · dirs, B, H]` (zeros if `None`).
    /// `mask`: `[B, T]`, 1 for real steps, 0 for padding.
    #[track_caller]
    pub fn forward_full(&self, x: &Tensor<E>, state: Option<&LstmState<E>>, mask: Option<&Mask<E>>) -> LstmOutput<E> {
        let (f, h) = (self.config.input_size, self.config.hidden_size);
        if x.ndim() != 3 || x.shape()[2] != f {
            panic!("Lstm: expected input [batch, seq, {f}], got {:?}", x.shape());
        }
        let (b, steps) = (x.shape()[0], x.shape()[1]);
        let ld = self.config.num_layers * self.dirs();
        if let Some(s) = state {
            for (name, t) in [("h", &s.h), ("c", &s.c)] {
                if t.shape() != [ld, b, h] {
                    panic!("Lstm: initial state {name} must be [{ld}, {b}, {h}], got {:?}", t.shape());
                }
            }
        }
        if let Some(m) = mask {
            if m.0.shape() != [b, steps] {
                panic!("Lstm: mask must be [batch, seq] = [{b}, {steps}], got {:?}", m.0.shape());
            }
        }
        let mask_t = mask.map(|m| m.0.detach());
        let reverse_perm = self.config.bidirectional.then(|| reverse_permutation(mask_t.as_ref(), b, steps));
        let mut input = x.clone();
        let (mut hs, mut cs) = (Vec::with_capacity(ld), Vec::with_capacity(ld));
        for l in 0..self.config.num_layers {
            let mut outs = Vec::with_capacity(self.dirs());
            for dir in 0..self.dirs() {
                let k = l * self.dirs() + dir;
                let (h0, c0) = match state {
                    Some(s) => (s.h.narrow(0, k, 1).squeeze(0), s.c.narrow(0, k, 1).squeeze(0)),
                    None => (Tensor::zeros(&[b, h]), Tensor::zeros(&[b, h])),
                };
                let mut inp = input.clone();
                if self.training && self.config.dropout > 0.0 {
                    inp = &inp * &self.input_dropout.mask(&[b, 1, inp.shape()[2]]);
                }
                if dir == 1 {
                    inp = permute_steps(&inp, reverse_perm.as_deref().unwrap_or(&[]));
                }
                let (out, hn, cn) = self.run_cell(&self.cells[k], &inp, &h0, &c0, mask_t.as_ref());
                outs.push(if dir == 1 { permute_steps(&out, reverse_perm.as_deref().unwrap_or(&[])) } else { out });
                hs.push(hn);
                cs.push(cn);
            }
            input = if outs.len() == 1 { outs.pop().unwrap() } else { Tensor::cat(&outs, 2) };
            if l + 1 < self.config.num_layers && self.training && self.config.layer_dropout > 0.0 {
                input = &input * &self.layer_dropout.mask(input.shape());
            }
        }
        LstmOutput { output: input, state: LstmState { h: Tensor::stack(&hs, 0), c: Tensor::stack(&cs, 0) } }
    }

    /// One layer in one direction: `[B, T, in]` → (`[B, T, H]`, final h, final c).
    fn run_cell(
        &self,
        cell: &Cell<E>,
        x: &Tensor<E>,
        h0: &Tensor<E>,
        c0: &Tensor<E>,
        mask: Option<&Tensor<E>>,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        let (b, steps, inp) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let h = self.config.hidden_size;
        // One matmul projects every step: [B·T, in] × [in, 4H].
        let mut xp = x.reshape(&[b * steps, inp]).matmul(&cell.w_ih.tensor().t());
        if let (Some(bi), Some(bh)) = (&cell.b_ih, &cell.b_hh) {
            xp = xp + (bi.tensor() + bh.tensor());
        }
        let xp = xp.reshape(&[b, steps, 4 * h]);
        let rec_mask =
            (self.training && self.config.recurrent_dropout > 0.0).then(|| self.recurrent_dropout.mask(&[b, h]));
        let w_hh = cell.w_hh.tensor();
        if self.config.fused {
            let packed = crate::ops::lstm_sequence(&xp, &w_hh, h0, c0, rec_mask.as_ref(), mask);
            let out = packed.narrow(1, 0, steps);
            let hn = packed.narrow(1, steps, 1).squeeze(1);
            let cn = packed.narrow(1, steps + 1, 1).squeeze(1);
            return (out, hn, cn);
        }
        // The reference cell, composed from primitive ops.
        let w_t = w_hh.t();
        let (mut hcur, mut ccur) = (h0.clone(), c0.clone());
        let mut outs = Vec::with_capacity(steps);
        for t in 0..steps {
            let hin = match &rec_mask {
                Some(r) => &hcur * r,
                None => hcur.clone(),
            };
            let z = xp.narrow(1, t, 1).squeeze(1) + hin.matmul(&w_t);
            let i = z.narrow(1, 0, h).sigmoid();
            let f = z.narrow(1, h, h).sigmoid();
            let g = z.narrow(1, 2 * h, h).tanh();
            let o = z.narrow(1, 3 * h, h).sigmoid();
            let cn = &f * &ccur + &i * &g;
            let hn = &o * &cn.tanh();
            match mask {
                Some(m) => {
                    let m = m.narrow(1, t, 1);
                    ccur = &ccur + &(&m * &(&cn - &ccur));
                    hcur = &hcur + &(&m * &(&hn - &hcur));
                    outs.push(&hn * &m);
                }
                None => {
                    ccur = cn;
                    hcur = hn.clone();
                    outs.push(hn);
                }
            }
        }
        (Tensor::stack(&outs, 1), hcur, ccur)
    }
}

/// For each sequence, the permutation of steps that reverses its real (unmasked) steps in place
/// and leaves padded steps where they are; as indices into the flattened `[B·T]` steps.
fn reverse_permutation<E: Element>(mask: Option<&Tensor<E>>, b: usize, steps: usize) -> Vec<usize> {
    let m = mask.map(|m| m.to_vec());
    let mut perm: Vec<usize> = (0..b * steps).collect();
    for bi in 0..b {
        let real: Vec<usize> =
            (0..steps).filter(|&t| m.as_ref().is_none_or(|m| m[bi * steps + t] > E::zero())).collect();
        for (k, &t) in real.iter().enumerate() {
            perm[bi * steps + t] = bi * steps + real[real.len() - 1 - k];
        }
    }
    perm
}

/// Reorders the steps of `[B, T, F]` by a permutation of the flattened `[B·T]` steps.
fn permute_steps<E: Element>(x: &Tensor<E>, perm: &[usize]) -> Tensor<E> {
    let (b, t, f) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    x.reshape(&[b * t, f]).index_select(0, perm).reshape(&[b, t, f])
}

impl<E: Element> Module<E> for Lstm<E> {
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.forward_masked(x, None).0
    }

    #[track_caller]
    fn forward_masked(&self, x: &Tensor<E>, mask: Option<&Mask<E>>) -> (Tensor<E>, Option<Mask<E>>) {
        let out = self.forward_full(x, None, mask);
        if self.config.return_sequences {
            return (out.output, mask.cloned());
        }
        // The last layer's final state, directions side by side: [B, H·dirs].
        let d = self.dirs();
        let k0 = (self.config.num_layers - 1) * d;
        let last = out.state.h.narrow(0, k0, d);
        let last = if d == 1 {
            last.squeeze(0)
        } else {
            Tensor::cat(&[last.narrow(0, 0, 1), last.narrow(0, 1, 1)], 2).squeeze(0)
        };
        (last, None)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        let d = self.dirs();
        for (k, cell) in self.cells.iter().enumerate() {
            let (l, dir) = (k / d, k % d);
            let sfx = if dir == 1 { "_reverse" } else { "" };
            f(join(prefix, &format!("weight_ih_l{l}{sfx}")), &cell.w_ih);
            f(join(prefix, &format!("weight_hh_l{l}{sfx}")), &cell.w_hh);
            if let (Some(bi), Some(bh)) = (&cell.b_ih, &cell.b_hh) {
                f(join(prefix, &format!("bias_ih_l{l}{sfx}")), bi);
                f(join(prefix, &format!("bias_hh_l{l}{sfx}")), bh);
            }
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        for d in [&mut self.input_dropout, &mut self.recurrent_dropout, &mut self.layer_dropout] {
            <Dropout as Module<E>>::set_training(d, training);
        }
    }
}
