//! Recurrent layers: `Lstm` and `Gru`, multi-layer and optionally bidirectional, with PyTorch's
//! parameters and Keras's dropout and masking semantics. Both are one `RecurrentStack` that
//! differs only in its cell.

use rand::Rng;

use crate::RngSource;

use super::dropout::{Dropout, check_probability};
use super::init::Init;
use super::module::{Mask, Module, Param, derive_seed, join};
use crate::ops::matmul::WeightPack;
use crate::{Element, PackedMatrix, Tensor};

/// Settings of an [`Lstm`] or a [`Gru`]. Start from [`RnnConfig::new`] and change fields.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Lstm, LstmConfig, Module};
///
/// // nn.LSTM(8, 16, num_layers=2, bidirectional=True, dropout=0.1), returning every step
/// let config = LstmConfig {
///     num_layers: 2,
///     bidirectional: true,
///     layer_dropout: 0.1,
///     return_sequences: true,
///     ..LstmConfig::new(8, 16)
/// };
/// let lstm: Lstm = Lstm::new(config, 0);
/// assert_eq!(lstm.forward(&Tensor::zeros(&[4, 10, 8])).shape(), &[4, 10, 32]); // 2 directions
/// assert_eq!(lstm.named_parameters().len(), 16); // 4 tensors × 2 layers × 2 directions
/// assert_eq!(lstm.named_parameters()[4].0, "weight_ih_l0_reverse");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RnnConfig {
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
    /// Run each layer's recurrence as one fused op with a hand-written backward (default true;
    /// LSTM only — the GRU cell is always composed from primitive ops). `false` composes the
    /// cell from primitive ops: slower, but differentiable twice.
    pub fused: bool,
    /// Seed of the dropout masks.
    pub seed: u64,
}

/// The LSTM's settings (the same fields as every recurrent layer).
///
/// ```
/// use tensorgrad::nn::{Lstm, LstmConfig, Module};
/// // keras.layers.LSTM(128, dropout=0.2, recurrent_dropout=0.2) on 16 input features
/// let config = LstmConfig { dropout: 0.2, recurrent_dropout: 0.2, ..LstmConfig::new(16, 128) };
/// let lstm: Lstm = Lstm::new(config, 0);
/// assert_eq!(lstm.describe(), "LSTM(16, 128, dropout=0.2, recurrent_dropout=0.2)");
/// ```
pub type LstmConfig = RnnConfig;

/// The GRU's settings (the same fields as every recurrent layer).
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Gru, GruConfig, Module};
/// let gru: Gru = Gru::new(GruConfig { return_sequences: true, ..GruConfig::new(3, 4) }, 0);
/// assert_eq!(gru.forward(&Tensor::ones(&[2, 5, 3])).shape(), &[2, 5, 4]);
/// let (name, weight) = &gru.named_parameters()[0];
/// assert_eq!((name.as_str(), weight.shape()), ("weight_ih_l0", &[12, 3][..])); // 3 gates × 4
/// ```
pub type GruConfig = RnnConfig;

impl RnnConfig {
    /// One unidirectional layer, no dropout, fused, returning the final state.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
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
///
/// Give a state to [`Lstm::forward_full`] to start from it instead of zeros, for instance to
/// run a long sequence in pieces:
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Lstm, LstmConfig};
///
/// let lstm: Lstm = Lstm::new(LstmConfig::new(2, 3), 0);
/// let x = Tensor::randn(&[1, 6, 2], 0.0, 1.0, 1);
/// let whole = lstm.forward_full(&x, None, None);
///
/// // The same sequence in two halves, the second starting from the first's final state.
/// let first = lstm.forward_full(&x.narrow(1, 0, 3), None, None);
/// let second = lstm.forward_full(&x.narrow(1, 3, 3), Some(&first.state), None);
/// assert_eq!(second.state.h.shape(), &[1, 1, 3]); // [layers · directions, batch, hidden]
/// let (a, b) = (whole.state.h.to_vec(), second.state.h.to_vec());
/// assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-6));
/// ```
#[derive(Clone, Debug)]
pub struct LstmState<E: Element = f32> {
    /// Hidden state.
    pub h: Tensor<E>,
    /// Cell state.
    pub c: Tensor<E>,
}

/// Everything an LSTM pass produces: PyTorch's `output, (h_n, c_n)`.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Lstm, LstmConfig, Module};
///
/// let lstm: Lstm = Lstm::new(LstmConfig::new(2, 3), 0);
/// let x = Tensor::randn(&[2, 5, 2], 0.0, 1.0, 1);
/// let out = lstm.forward_full(&x, None, None);
/// assert_eq!(out.output.shape(), &[2, 5, 3]);
/// assert_eq!(out.state.c.shape(), &[1, 2, 3]);
/// // One layer, one direction, no padding: the last step of the output is the final state,
/// // which is also what `forward` returns.
/// let h_n = out.state.h.squeeze(0);
/// assert_eq!(out.output.narrow(1, 4, 1).squeeze(1).to_vec(), h_n.to_vec());
/// assert_eq!(lstm.forward(&x).to_vec(), h_n.to_vec());
/// ```
#[derive(Clone, Debug)]
pub struct LstmOutput<E: Element = f32> {
    /// The last layer's output at every step, `[B, T, H·dirs]` (zero at padded steps).
    pub output: Tensor<E>,
    /// The final state; with a mask, each sequence's state at its last real step.
    pub state: LstmState<E>,
}

/// Everything a GRU pass produces: PyTorch's `output, h_n`.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Gru, GruConfig, Mask};
///
/// let gru: Gru = Gru::new(GruConfig::new(2, 3), 0);
/// let x = Tensor::randn(&[2, 4, 2], 0.0, 1.0, 1);
/// // The second sequence has two real steps, then padding.
/// let out = gru.forward_full(&x, None, Some(&Mask::from_lengths(&[4, 2], 4)));
/// assert_eq!(out.h.shape(), &[1, 2, 3]);
/// let second = out.output.narrow(0, 1, 1); // [1, 4, 3]
/// assert!(second.narrow(1, 2, 2).to_vec().iter().all(|&v| v == 0.0)); // zero when padded
/// // Its final state is its output at its last real step.
/// let (h, last) = (out.h.narrow(1, 1, 1).to_vec(), second.narrow(1, 1, 1).to_vec());
/// assert!(h.iter().zip(&last).all(|(a, b)| (a - b).abs() < 1e-6));
/// ```
#[derive(Clone, Debug)]
pub struct GruOutput<E: Element = f32> {
    /// The last layer's output at every step, `[B, T, H·dirs]` (zero at padded steps).
    pub output: Tensor<E>,
    /// The final hidden state `[layers · dirs, B, H]`; with a mask, each sequence's state at its
    /// last real step.
    pub h: Tensor<E>,
}

/// Which recurrence a stack runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CellKind {
    Lstm,
    Gru,
}

impl CellKind {
    fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "Lstm",
            CellKind::Gru => "Gru",
        }
    }
}

#[derive(Clone, Debug)]
struct Cell<E: Element> {
    w_ih: Param<E>,
    w_hh: Param<E>,
    b_ih: Option<Param<E>>,
    b_hh: Option<Param<E>>,
    /// The fused LSTM's weights packed for inference, kept while they are unchanged.
    pack: crate::ops::LstmPack<E>,
    /// `W_hhᵀ` packed for the reference cells, kept the same way.
    pack_hh: WeightPack<PackedMatrix<E>>,
}

/// The machinery shared by every recurrent layer: layers, directions, dropout, masking,
/// reversal of padded sequences. Only the cell differs.
#[derive(Clone, Debug)]
struct RecurrentStack<E: Element> {
    kind: CellKind,
    config: RnnConfig,
    cells: Vec<Cell<E>>,
    input_dropout: Dropout,
    recurrent_dropout: Dropout,
    layer_dropout: Dropout,
    training: bool,
}

/// Final states of a stack: `h` and, for an LSTM, `c`, each `[layers · dirs, B, H]`.
struct StackOutput<E: Element> {
    output: Tensor<E>,
    h: Tensor<E>,
    c: Option<Tensor<E>>,
}

impl<E: Element> RecurrentStack<E> {
    #[track_caller]
    fn new(kind: CellKind, config: RnnConfig, rng: &mut impl Rng) -> Self {
        let (name, h) = (kind.name(), config.hidden_size);
        if config.input_size == 0 || h == 0 || config.num_layers == 0 {
            panic!(
                "{name}: input size, hidden size and number of layers must be at least 1, got {}, {h}, {}",
                config.input_size, config.num_layers
            );
        }
        check_probability(&format!("{name} (dropout)"), config.dropout);
        check_probability(&format!("{name} (recurrent_dropout)"), config.recurrent_dropout);
        check_probability(&format!("{name} (layer_dropout)"), config.layer_dropout);
        let a = 1.0 / (h as f64).sqrt();
        let init = Init::Uniform(-a, a);
        let g = kind.gates() * h;
        let dirs = if config.bidirectional { 2 } else { 1 };
        let mut cells = Vec::new();
        for l in 0..config.num_layers {
            let inp = if l == 0 { config.input_size } else { h * dirs };
            for _ in 0..dirs {
                let w_ih = Param::new(init.tensor(&[g, inp], &mut *rng));
                let w_hh = Param::new(init.tensor(&[g, h], &mut *rng));
                let (b_ih, b_hh) = if config.bias {
                    (Some(Param::new(init.tensor(&[g], &mut *rng))), Some(Param::new(init.tensor(&[g], &mut *rng))))
                } else {
                    (None, None)
                };
                cells.push(Cell {
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                    pack: crate::ops::LstmPack::new(),
                    pack_hh: WeightPack::new(),
                });
            }
        }
        let seed = config.seed;
        RecurrentStack {
            kind,
            input_dropout: Dropout::new(config.dropout, seed),
            recurrent_dropout: Dropout::new(config.recurrent_dropout, seed.wrapping_add(1)),
            layer_dropout: Dropout::new(config.layer_dropout, seed.wrapping_add(2)),
            config,
            cells,
            training: true,
        }
    }

    fn dirs(&self) -> usize {
        if self.config.bidirectional { 2 } else { 1 }
    }

    #[track_caller]
    fn forward_full(
        &self,
        x: &Tensor<E>,
        h0: Option<&Tensor<E>>,
        c0: Option<&Tensor<E>>,
        mask: Option<&Mask<E>>,
    ) -> StackOutput<E> {
        let name = self.kind.name();
        let (f, h) = (self.config.input_size, self.config.hidden_size);
        if x.ndim() != 3 || x.shape()[2] != f {
            panic!("{name}: expected input [batch, seq, {f}], got {:?}", x.shape());
        }
        let (b, steps) = (x.shape()[0], x.shape()[1]);
        let ld = self.config.num_layers * self.dirs();
        for (what, t) in [("h", h0), ("c", c0)] {
            if let Some(t) = t
                && t.shape() != [ld, b, h]
            {
                panic!("{name}: initial state {what} must be [{ld}, {b}, {h}], got {:?}", t.shape());
            }
        }
        if let Some(m) = mask
            && m.0.shape() != [b, steps]
        {
            panic!("{name}: mask must be [batch, seq] = [{b}, {steps}], got {:?}", m.0.shape());
        }
        let mask_t = mask.map(|m| m.0.detach());
        let reverse_perm = self.config.bidirectional.then(|| reverse_permutation(mask_t.as_ref(), b, steps));
        let perm = reverse_perm.as_deref().unwrap_or(&[]);
        let initial = |s: Option<&Tensor<E>>, k: usize| match s {
            Some(s) => s.narrow(0, k, 1).squeeze(0),
            None => Tensor::zeros(&[b, h]),
        };
        let mut input = x.clone();
        let (mut hs, mut cs) = (Vec::with_capacity(ld), Vec::with_capacity(ld));
        for l in 0..self.config.num_layers {
            let mut outs = Vec::with_capacity(self.dirs());
            for dir in 0..self.dirs() {
                let k = l * self.dirs() + dir;
                let mut inp = input.clone();
                if self.training && self.config.dropout > 0.0 {
                    inp = &inp * &self.input_dropout.mask(&[b, 1, inp.shape()[2]]);
                }
                if dir == 1 {
                    inp = permute_steps(&inp, perm);
                }
                let (out, hn, cn) =
                    self.run_cell(&self.cells[k], &inp, initial(h0, k), initial(c0, k), mask_t.as_ref());
                outs.push(if dir == 1 { permute_steps(&out, perm) } else { out });
                hs.push(hn);
                cs.extend(cn);
            }
            input = if outs.len() == 1 { outs.pop().unwrap() } else { Tensor::cat(&outs, 2) };
            if l + 1 < self.config.num_layers && self.training && self.config.layer_dropout > 0.0 {
                input = &input * &self.layer_dropout.mask(input.shape());
            }
        }
        let c = (!cs.is_empty()).then(|| Tensor::stack(&cs, 0));
        StackOutput { output: input, h: Tensor::stack(&hs, 0), c }
    }

    /// One layer in one direction: `[B, T, in]` → (`[B, T, H]`, final h, final c for an LSTM).
    #[track_caller]
    fn run_cell(
        &self,
        cell: &Cell<E>,
        x: &Tensor<E>,
        h0: Tensor<E>,
        c0: Tensor<E>,
        mask: Option<&Tensor<E>>,
    ) -> (Tensor<E>, Tensor<E>, Option<Tensor<E>>) {
        let (b, steps, inp) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let h = self.config.hidden_size;
        let g = self.kind.gates() * h;
        let (bi, bh) = (cell.b_ih.as_ref().map(Param::tensor), cell.b_hh.as_ref().map(Param::tensor));
        let lstm_bias = match (self.kind, &bi, &bh) {
            (CellKind::Lstm, Some(bi), Some(bh)) => Some(bi + bh),
            _ => None,
        };
        let rec_mask =
            (self.training && self.config.recurrent_dropout > 0.0).then(|| self.recurrent_dropout.mask(&[b, h]));
        let w_hh = cell.w_hh.tensor();
        if self.kind == CellKind::Lstm && self.config.fused {
            // The fused op projects the input inside each step's matmul and adds the bias there.
            let w_ih = cell.w_ih.tensor();
            let (out, hn, cn) = crate::ops::LstmOp::forward(
                x,
                &w_ih,
                &w_hh,
                lstm_bias.as_ref(),
                &h0,
                &c0,
                rec_mask.as_ref(),
                mask,
                Some(&cell.pack),
            );
            return (out, hn, Some(cn));
        }
        // The reference cells, composed from primitive ops. One matmul projects every step:
        // [B·T, in] × [in, gates·H]. The LSTM adds both biases up front; the GRU keeps b_hh
        // inside r ⊙ (W_hn·h + b_hn).
        let xp = x.reshape(&[b * steps, inp]).matmul(&cell.w_ih.tensor().t());
        let xp = match (self.kind, &bi, &lstm_bias) {
            (CellKind::Lstm, _, Some(b)) => xp + b,
            (CellKind::Gru, Some(bi), _) => xp + bi,
            _ => xp,
        };
        let xp = xp.reshape(&[b, steps, g]);
        // W_hhᵀ packed once for all the steps (kept between calls in inference).
        let w_t = if crate::is_grad_enabled() {
            std::sync::Arc::new(w_hh.t().pack())
        } else {
            cell.pack_hh.get(&[&w_hh], || w_hh.t().pack())
        };
        let (mut hcur, mut ccur) = (h0, c0);
        let mut outs = Vec::with_capacity(steps);
        for t in 0..steps {
            let hin = match &rec_mask {
                Some(r) => &hcur * r,
                None => hcur.clone(),
            };
            let xt = xp.narrow(1, t, 1).squeeze(1);
            let gate = |z: &Tensor<E>, k: usize| z.narrow(1, k * h, h);
            let hn = match self.kind {
                CellKind::Lstm => {
                    let z = xt + hin.matmul_packed(&w_t);
                    let (i, f) = (gate(&z, 0).sigmoid(), gate(&z, 1).sigmoid());
                    let (gg, o) = (gate(&z, 2).tanh(), gate(&z, 3).sigmoid());
                    let cn = &f * &ccur + &i * &gg;
                    let hn = &o * &cn.tanh();
                    ccur = match mask {
                        Some(m) => &ccur + &(&m.narrow(1, t, 1) * &(&cn - &ccur)),
                        None => cn,
                    };
                    hn
                }
                CellKind::Gru => {
                    let mut hp = hin.matmul_packed(&w_t);
                    if let Some(bh) = &bh {
                        hp = hp + bh;
                    }
                    let r = (gate(&xt, 0) + gate(&hp, 0)).sigmoid();
                    let z = (gate(&xt, 1) + gate(&hp, 1)).sigmoid();
                    let n = (gate(&xt, 2) + &r * &gate(&hp, 2)).tanh();
                    // h' = (1 − z) ⊙ n + z ⊙ h
                    &n + &(&z * &(&hcur - &n))
                }
            };
            match mask {
                Some(m) => {
                    let m = m.narrow(1, t, 1);
                    hcur = &hcur + &(&m * &(&hn - &hcur));
                    outs.push(&hn * &m);
                }
                None => {
                    hcur = hn.clone();
                    outs.push(hn);
                }
            }
        }
        let c = (self.kind == CellKind::Lstm).then_some(ccur);
        (Tensor::stack(&outs, 1), hcur, c)
    }

    /// `LSTM(16, 128, num_layers=2, …)`: PyTorch's description, with the settings that differ
    /// from [`RnnConfig::new`]'s.
    fn describe(&self) -> String {
        let c = &self.config;
        let d = RnnConfig::new(c.input_size, c.hidden_size);
        let mut s =
            format!("{}({}, {}", if self.kind == CellKind::Lstm { "LSTM" } else { "GRU" }, c.input_size, c.hidden_size);
        if c.num_layers != d.num_layers {
            s += &format!(", num_layers={}", c.num_layers);
        }
        if c.bidirectional {
            s += ", bidirectional=true";
        }
        if !c.bias {
            s += ", bias=false";
        }
        for (name, v) in
            [("dropout", c.dropout), ("recurrent_dropout", c.recurrent_dropout), ("layer_dropout", c.layer_dropout)]
        {
            if v != 0.0 {
                s += &format!(", {name}={v}");
            }
        }
        if c.return_sequences {
            s += ", return_sequences=true";
        }
        s + ")"
    }

    /// The last layer's final hidden state, directions side by side: `[B, H·dirs]`.
    fn last_state(&self, h: &Tensor<E>) -> Tensor<E> {
        let d = self.dirs();
        let last = h.narrow(0, (self.config.num_layers - 1) * d, d);
        if d == 1 { last.squeeze(0) } else { Tensor::cat(&[last.narrow(0, 0, 1), last.narrow(0, 1, 1)], 2).squeeze(0) }
    }

    #[track_caller]
    fn forward_masked(&self, x: &Tensor<E>, mask: Option<&Mask<E>>) -> (Tensor<E>, Option<Mask<E>>) {
        let out = self.forward_full(x, None, None, mask);
        if self.config.return_sequences { (out.output, mask.cloned()) } else { (self.last_state(&out.h), None) }
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

    fn reseed(&mut self, seed: u64) {
        for (i, d) in
            [&mut self.input_dropout, &mut self.recurrent_dropout, &mut self.layer_dropout].into_iter().enumerate()
        {
            <Dropout as Module<E>>::reseed(d, derive_seed(seed, i as u64));
        }
    }
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
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::{Tensor, nn::{Lstm, LstmConfig, Mask, Module}};
/// let mut rng = StdRng::seed_from_u64(0);
/// let lstm: Lstm = Lstm::new(LstmConfig::new(3, 5), &mut rng);
/// let x = Tensor::ones(&[2, 4, 3]);
/// assert_eq!(lstm.forward(&x).shape(), &[2, 5]);
/// let out = lstm.forward_full(&x, None, Some(&Mask::from_lengths(&[4, 2], 4)));
/// assert_eq!(out.output.shape(), &[2, 4, 5]);
/// assert_eq!(out.state.h.shape(), &[1, 2, 5]);
/// ```
#[derive(Clone, Debug)]
pub struct Lstm<E: Element = f32>(RecurrentStack<E>);

impl<E: Element> Lstm<E> {
    /// A new LSTM with PyTorch's initialisation.
    #[track_caller]
    pub fn new(config: LstmConfig, rng: impl RngSource) -> Self {
        Lstm(RecurrentStack::new(CellKind::Lstm, config, &mut rng.into_rng()))
    }

    /// The configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.0.config
    }

    /// Runs every layer over the sequence and returns the output sequence and the final state.
    ///
    /// `state`: the initial `(h, c)`, each `[layers · dirs, B, H]` (zeros if `None`).
    /// `mask`: `[B, T]`, 1 for real steps, 0 for padding.
    #[track_caller]
    pub fn forward_full(&self, x: &Tensor<E>, state: Option<&LstmState<E>>, mask: Option<&Mask<E>>) -> LstmOutput<E> {
        let out = self.0.forward_full(x, state.map(|s| &s.h), state.map(|s| &s.c), mask);
        LstmOutput { output: out.output, state: LstmState { h: out.h, c: out.c.expect("an LSTM has a cell state") } }
    }
}

/// A gated recurrent unit layer (or stack of layers), PyTorch's formulation:
///
/// ```text
/// r = σ(W_ir·x + b_ir + W_hr·h + b_hr)
/// z = σ(W_iz·x + b_iz + W_hz·h + b_hz)
/// n = tanh(W_in·x + b_in + r ⊙ (W_hn·h + b_hn))
/// h' = (1 − z) ⊙ n + z ⊙ h
/// ```
///
/// # Shapes
/// As [`Lstm`], with three gates (r, z, n): `weight_ih_l{l}` `[3H, in]`, `weight_hh_l{l}`
/// `[3H, H]`, `bias_ih_l{l}` and `bias_hh_l{l}` `[3H]`; the state is `h` only. The cell is
/// composed from primitive ops, so it can be differentiated twice.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::{Tensor, nn::{Gru, GruConfig, Module}};
/// let mut rng = StdRng::seed_from_u64(0);
/// let gru: Gru = Gru::new(GruConfig::new(3, 5), &mut rng);
/// assert_eq!(gru.forward(&Tensor::ones(&[2, 4, 3])).shape(), &[2, 5]);
/// ```
#[derive(Clone, Debug)]
pub struct Gru<E: Element = f32>(RecurrentStack<E>);

impl<E: Element> Gru<E> {
    /// A new GRU with PyTorch's initialisation.
    #[track_caller]
    pub fn new(config: GruConfig, rng: impl RngSource) -> Self {
        Gru(RecurrentStack::new(CellKind::Gru, config, &mut rng.into_rng()))
    }

    /// The configuration.
    pub fn config(&self) -> &GruConfig {
        &self.0.config
    }

    /// Runs every layer over the sequence: the output sequence and the final hidden state.
    /// `h0`: the initial state `[layers · dirs, B, H]` (zeros if `None`).
    #[track_caller]
    pub fn forward_full(&self, x: &Tensor<E>, h0: Option<&Tensor<E>>, mask: Option<&Mask<E>>) -> GruOutput<E> {
        let out = self.0.forward_full(x, h0, None, mask);
        GruOutput { output: out.output, h: out.h }
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

macro_rules! recurrent_module {
    ($name:ident) => {
        impl<E: Element> Module<E> for $name<E> {
            #[track_caller]
            fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
                self.0.forward_masked(x, None).0
            }

            #[track_caller]
            fn forward_masked(&self, x: &Tensor<E>, mask: Option<&Mask<E>>) -> (Tensor<E>, Option<Mask<E>>) {
                self.0.forward_masked(x, mask)
            }

            fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
                self.0.visit_params(prefix, f)
            }

            fn describe(&self) -> String {
                self.0.describe()
            }

            fn set_training(&mut self, training: bool) {
                self.0.set_training(training)
            }

            fn reseed(&mut self, seed: u64) {
                self.0.reseed(seed)
            }
        }
    };
}

recurrent_module!(Lstm);
recurrent_module!(Gru);
