//! A character-level GPT trained on Shakespeare: nanoGPT's `shakespeare_char` recipe scaled to
//! a two-core CPU (4 layers, 4 heads, 128-dimensional embeddings, a context of 128 characters).
//!
//! ```sh
//! cargo run --release --example char_gpt                         # train on the bundled text, then sample
//! cargo run --release --example char_gpt -- --iters 200 --sample 500 --temperature 0.8 --top-k 20
//! cargo run --release --example char_gpt -- --load target/char_gpt/model.safetensors --iters 0 --sample 1000
//! # data-parallel on 2 processes (the `mpi` feature; --batch-size is per process)
//! cargo build --release --features mpi --example char_gpt
//! mpirun -np 2 target/release/examples/char_gpt --distributed --batch-size 16
//! ```
//!
//! The text is `data/shakespeare/tragedies.txt` (eight tragedies, public domain; see the
//! README.txt beside it), split 90/10 into training and validation characters; `--train FILE`
//! and `--val FILE` give other plain-text files. Each iteration trains on `--batch-size` random
//! windows of `--block-size` characters (every position predicts the next character), with AdamW
//! (weight decay 0.1 on the matrices only), a linear warm-up and a cosine decay of the learning
//! rate, and gradients clipped to norm 1. Every `--eval-interval` iterations it estimates the
//! training and validation loss on `--eval-iters` batches each, writes a checkpoint
//! (`model.safetensors`, the best so far by validation loss) and adds a row to the history.
//!
//! Other flags: `--n-layer`, `--n-head`, `--n-embd`, `--dropout`, `--lr`, `--seed`, `--out DIR`
//! (default `target/char_gpt/`), `--limit N` (use only the first N characters, for a quick
//! run), `--distributed` (train data-parallel on the processes of an MPI job: each draws its
//! own `--batch-size` windows, the gradients are averaged, the loss estimates are averaged over
//! the processes; only rank 0 prints, samples and writes; needs the `mpi` feature). The loss is in nats per character; `bpc` is the same in bits (÷ ln 2). The last line
//! printed is `val_loss=<f> val_bpc=<f>` (the final estimate of the validation loss).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use tensorgrad::distributed::{Communicator, DataParallel, ReduceOp};
use tensorgrad::io;
use tensorgrad::loss::{Reduction, cross_entropy};
use tensorgrad::nn::{Dropout, Embedding, Init, LayerNorm, Linear, Module, Param, StepKey, param_name};
use tensorgrad::optim::{AdamW, AdamWConfig, Optimizer, clip_grad_norm};
use tensorgrad::rand::rngs::StdRng;
use tensorgrad::rand::{Rng, SeedableRng};
use tensorgrad::train::History;
use tensorgrad::{SdpaOptions, Tensor, no_grad};

#[path = "common/distributed.rs"]
mod distributed;

struct Args {
    train: PathBuf,
    val: Option<PathBuf>,
    iters: usize,
    eval_interval: usize,
    eval_iters: usize,
    batch_size: usize,
    block_size: usize,
    n_layer: usize,
    n_head: usize,
    n_embd: usize,
    dropout: f64,
    lr: f64,
    seed: u64,
    out: PathBuf,
    limit: Option<usize>,
    load: Option<PathBuf>,
    sample: usize,
    temperature: f64,
    top_k: Option<usize>,
    distributed: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        train: concat!(env!("CARGO_MANIFEST_DIR"), "/data/shakespeare/tragedies.txt").into(),
        val: None,
        iters: 2000,
        eval_interval: 250,
        eval_iters: 20,
        batch_size: 32,
        block_size: 128,
        n_layer: 4,
        n_head: 4,
        n_embd: 128,
        dropout: 0.1,
        lr: 1e-3,
        seed: 1337,
        out: "target/char_gpt".into(),
        limit: None,
        load: None,
        sample: 500,
        temperature: 0.8,
        top_k: Some(40),
        distributed: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(s: String) -> Result<T, String> {
            s.parse().map_err(|_| format!("not a number: {s}"))
        }
        match flag.as_str() {
            "--train" => a.train = value()?.into(),
            "--val" => a.val = Some(value()?.into()),
            "--iters" => a.iters = num(value()?)?,
            "--eval-interval" => a.eval_interval = num(value()?)?,
            "--eval-iters" => a.eval_iters = num(value()?)?,
            "--batch-size" => a.batch_size = num(value()?)?,
            "--block-size" => a.block_size = num(value()?)?,
            "--n-layer" => a.n_layer = num(value()?)?,
            "--n-head" => a.n_head = num(value()?)?,
            "--n-embd" => a.n_embd = num(value()?)?,
            "--dropout" => a.dropout = num(value()?)?,
            "--lr" => a.lr = num(value()?)?,
            "--seed" => a.seed = num(value()?)?,
            "--out" => a.out = value()?.into(),
            "--limit" => a.limit = Some(num(value()?)?),
            "--load" => a.load = Some(value()?.into()),
            "--sample" => a.sample = num(value()?)?,
            "--temperature" => a.temperature = num(value()?)?,
            "--top-k" => a.top_k = Some(num(value()?)?).filter(|&k| k > 0),
            "--distributed" => a.distributed = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.batch_size == 0 || a.block_size == 0 || a.eval_interval == 0 || a.eval_iters == 0 {
        return Err("--batch-size, --block-size, --eval-interval and --eval-iters must be at least 1".into());
    }
    if a.n_head == 0 || !a.n_embd.is_multiple_of(a.n_head) {
        return Err(format!("--n-embd ({}) must be a multiple of --n-head ({})", a.n_embd, a.n_head));
    }
    if !(0.0..1.0).contains(&a.dropout) || a.temperature.is_nan() || a.temperature <= 0.0 {
        return Err("--dropout must be in [0, 1) and --temperature above 0".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    match parse_args() {
        Ok(args) => {
            let comm = match distributed::communicator(args.distributed, "char_gpt") {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("char_gpt: {e}");
                    return ExitCode::from(2);
                }
            };
            match run(&args, comm.as_ref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("char_gpt: {e}");
                    distributed::abort_on_error(comm.as_ref());
                    ExitCode::FAILURE
                }
            }
        }
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("char_gpt: {msg}");
            }
            eprintln!(
                "usage: char_gpt [--train FILE] [--val FILE] [--iters N] [--eval-interval N] [--eval-iters N] \
                 [--batch-size N] [--block-size N] [--n-layer N] [--n-head N] [--n-embd N] [--dropout P] [--lr X] \
                 [--seed N] [--out DIR] [--limit N] [--load FILE] [--sample N] [--temperature T] [--top-k K] \
                 [--distributed]"
            );
            ExitCode::from(2)
        }
    }
}

/// The characters of the corpus, sorted; a character's id is its index.
struct Vocab {
    chars: Vec<char>,
}

impl Vocab {
    fn new(texts: &[&str]) -> Vocab {
        let mut chars: Vec<char> = texts.iter().flat_map(|t| t.chars()).collect();
        chars.sort_unstable();
        chars.dedup();
        Vocab { chars }
    }

    fn encode(&self, text: &str) -> Vec<usize> {
        text.chars().map(|c| self.chars.binary_search(&c).expect("the vocabulary covers the text")).collect()
    }

    fn decode(&self, ids: &[usize]) -> String {
        ids.iter().map(|&i| self.chars[i]).collect()
    }
}

/// One Transformer block, GPT-2's layout: pre-norm attention and MLP, each added back.
struct Block {
    ln_1: LayerNorm,
    c_attn: Linear,
    attn_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear,
    mlp_proj: Linear,
    resid_drop: Dropout,
    n_head: usize,
    attn_dropout: f64,
    /// Seeds the attention dropout (see `Gpt::forward`).
    seed: u64,
}

/// nanoGPT's model: token and position embeddings, `n_layer` blocks, a final layer norm and a
/// language-model head tied to the token embedding.
struct Gpt {
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    drop: Dropout,
    training: bool,
}

impl Gpt {
    fn new(vocab: usize, a: &Args, rng: &mut StdRng) -> Gpt {
        let e = a.n_embd;
        // GPT-2's initialisation (nanoGPT's): N(0, 0.02) weights, zero biases, and the projections
        // back into the residual stream scaled down by √(2·n_layer).
        let normal = Init::Normal(0.0, 0.02);
        let proj = Init::Normal(0.0, 0.02 / (2.0 * a.n_layer as f64).sqrt());
        let mut linear = |i, o, init| Linear::with_init(i, o, init, Some(Init::Zeros), &mut *rng);
        let blocks = (0..a.n_layer)
            .map(|l| Block {
                ln_1: LayerNorm::new(&[e]),
                c_attn: linear(e, 3 * e, normal),
                attn_proj: linear(e, e, proj),
                ln_2: LayerNorm::new(&[e]),
                c_fc: linear(e, 4 * e, normal),
                mlp_proj: linear(4 * e, e, proj),
                resid_drop: Dropout::new(a.dropout, a.seed ^ (l as u64 + 1)),
                n_head: a.n_head,
                attn_dropout: a.dropout,
                seed: a.seed.wrapping_add(1000 + l as u64),
            })
            .collect();
        Gpt {
            wte: Embedding::with_init(vocab, e, normal, &mut *rng),
            wpe: Embedding::with_init(a.block_size, e, normal, &mut *rng),
            blocks,
            ln_f: LayerNorm::new(&[e]),
            drop: Dropout::new(a.dropout, a.seed),
            training: true,
        }
    }

    /// Logits `[B, T, vocab]` for token ids `[B, T]`; `step` seeds the attention dropout.
    fn logits(&self, ids: &[usize], b: usize, t: usize, step: u64) -> Tensor {
        let tok = self.wte.forward_ids(ids, &[b, t]);
        let pos = self.wpe.forward_ids(&(0..t).collect::<Vec<_>>(), &[t]);
        let mut x = self.drop.forward(&(&tok + &pos));
        for blk in &self.blocks {
            x = &x + &blk.resid_drop.forward(&blk.attention(&blk.ln_1.forward(&x), self.training, step));
            let h = blk.c_fc.forward(&blk.ln_2.forward(&x)).gelu();
            x = &x + &blk.resid_drop.forward(&blk.mlp_proj.forward(&h));
        }
        // The head is the token embedding's transpose (weight tying, as GPT-2 and nanoGPT).
        let x = self.ln_f.forward(&x);
        x.matmul(&self.wte.weight().tensor().t())
    }
}

impl Block {
    /// Causal multi-head self-attention on `x` `[B, T, E]`.
    fn attention(&self, x: &Tensor, training: bool, step: u64) -> Tensor {
        let (b, t, e) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let (h, hd) = (self.n_head, e / self.n_head);
        // [B, T, 3, H, hd]: q, k and v as strided views [B, H, T, hd] (no copies).
        let qkv = self.c_attn.forward(x).reshape(&[b, t, 3, h, hd]);
        let part = |i| qkv.narrow(2, i, 1).squeeze(2).transpose(1, 2);
        let dropout_p = if training { self.attn_dropout } else { 0.0 };
        let options = SdpaOptions {
            is_causal: true,
            dropout_p,
            dropout_seed: self.seed ^ step.wrapping_mul(0x9E37_79B9),
            ..Default::default()
        };
        let y = part(0).scaled_dot_product_attention(&part(1), &part(2), options);
        self.attn_proj.forward(&y.transpose(1, 2).reshape(&[b, t, e]))
    }
}

impl Module<f32> for Gpt {
    fn forward(&self, x: &Tensor) -> Tensor {
        let ids: Vec<usize> = x.to_vec().iter().map(|&v| v as usize).collect();
        self.logits(&ids, x.shape()[0], x.shape()[1], 0)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<f32>)) {
        // nanoGPT's names (`transformer.h.0.attn.c_attn.weight`, …).
        let p = |name: &str| param_name(prefix, name);
        self.wte.visit_params(&p("transformer.wte"), f);
        self.wpe.visit_params(&p("transformer.wpe"), f);
        for (l, blk) in self.blocks.iter().enumerate() {
            let b = |name: &str| p(&format!("transformer.h.{l}.{name}"));
            blk.ln_1.visit_params(&b("ln_1"), f);
            blk.c_attn.visit_params(&b("attn.c_attn"), f);
            blk.attn_proj.visit_params(&b("attn.c_proj"), f);
            blk.ln_2.visit_params(&b("ln_2"), f);
            blk.c_fc.visit_params(&b("mlp.c_fc"), f);
            blk.mlp_proj.visit_params(&b("mlp.c_proj"), f);
        }
        self.ln_f.visit_params(&p("transformer.ln_f"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.drop.set_training(training);
        for blk in &mut self.blocks {
            blk.resid_drop.set_training(training);
        }
    }
}

/// `batch` random windows of `block + 1` characters: inputs `[B, T]` and next-character targets.
fn batch(data: &[usize], batch: usize, block: usize, rng: &mut StdRng) -> (Vec<usize>, Vec<usize>) {
    let (mut x, mut y) = (Vec::with_capacity(batch * block), Vec::with_capacity(batch * block));
    for _ in 0..batch {
        let i = rng.random_range(0..data.len() - block);
        x.extend_from_slice(&data[i..i + block]);
        y.extend_from_slice(&data[i + 1..i + block + 1]);
    }
    (x, y)
}

/// The mean cross-entropy (nats per character) of `logits` `[B, T, V]` against `targets`.
fn loss(logits: &Tensor, targets: &[usize]) -> Tensor {
    let v = logits.shape()[2];
    cross_entropy(&logits.reshape(&[targets.len(), v]), targets, 0.0, Reduction::Mean)
}

/// The mean loss over `iters` random batches of `data`, in evaluation mode, without a graph.
fn estimate(model: &mut Gpt, data: &[usize], a: &Args, iters: usize, rng: &mut StdRng) -> f64 {
    model.set_training(false);
    let total: f64 = no_grad(|| {
        (0..iters)
            .map(|_| {
                let (x, y) = batch(data, a.batch_size, a.block_size, rng);
                loss(&model.logits(&x, a.batch_size, a.block_size, 0), &y).item() as f64
            })
            .sum()
    });
    model.set_training(true);
    total / iters as f64
}

/// The learning rate at iteration `it`: linear warm-up, then a cosine decay to a tenth (nanoGPT's).
fn learning_rate(it: usize, a: &Args) -> f64 {
    let warmup = (a.iters / 20).clamp(1, 100);
    if it < warmup {
        return a.lr * (it + 1) as f64 / warmup as f64;
    }
    let progress = (it - warmup) as f64 / (a.iters - warmup).max(1) as f64;
    let min = a.lr / 10.0;
    min + 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos()) * (a.lr - min)
}

/// `n` characters sampled after `prompt`, with temperature and top-k.
fn sample(model: &Gpt, vocab: &Vocab, prompt: &[usize], n: usize, a: &Args, rng: &mut StdRng) -> String {
    let mut ids = prompt.to_vec();
    no_grad(|| {
        for _ in 0..n {
            let ctx = &ids[ids.len().saturating_sub(a.block_size)..];
            let logits = model.logits(ctx, 1, ctx.len(), 0);
            let v = vocab.chars.len();
            let last: Vec<f64> =
                logits.to_vec()[(ctx.len() - 1) * v..].iter().map(|&x| x as f64 / a.temperature).collect();
            let mut order: Vec<usize> = (0..v).collect();
            order.sort_by(|&i, &j| last[j].total_cmp(&last[i]));
            order.truncate(a.top_k.unwrap_or(v).min(v));
            let top = last[order[0]];
            let weights: Vec<f64> = order.iter().map(|&i| (last[i] - top).exp()).collect();
            let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
            let mut next = order[order.len() - 1];
            for (&i, &w) in order.iter().zip(&weights) {
                if u < w {
                    next = i;
                    break;
                }
                u -= w;
            }
            ids.push(next);
        }
    });
    vocab.decode(&ids[prompt.len()..])
}

fn run(a: &Args, comm: Option<&Arc<dyn Communicator>>) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    // In data-parallel training every rank runs this program; rank 0 speaks and writes.
    let (rank, main_rank) = (comm.map_or(0, |c| c.rank()), comm.is_none_or(|c| c.rank() == 0));
    macro_rules! say {
        ($($t:tt)*) => {
            if main_rank {
                println!($($t)*);
            }
        };
    }
    let read = |p: &PathBuf| -> Result<String, Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(match a.limit {
            Some(n) => text.chars().take(n).collect(),
            None => text,
        })
    };
    let text = read(&a.train)?;
    let (train_text, val_text) = match &a.val {
        Some(p) => (text, read(p)?),
        None => {
            let cut = text.char_indices().nth(text.chars().count() * 9 / 10).map_or(text.len(), |(i, _)| i);
            (text[..cut].to_string(), text[cut..].to_string())
        }
    };
    let vocab = Vocab::new(&[&train_text, &val_text]);
    let (train, val) = (vocab.encode(&train_text), vocab.encode(&val_text));
    if train.len() <= a.block_size || val.len() <= a.block_size {
        return Err(format!(
            "the training ({}) and validation ({}) texts need more than --block-size ({}) characters",
            train.len(),
            val.len(),
            a.block_size
        )
        .into());
    }
    say!(
        "data: {} training and {} validation characters from {}; vocabulary of {} characters",
        train.len(),
        val.len(),
        a.train.display(),
        vocab.chars.len()
    );

    let mut rng = StdRng::seed_from_u64(a.seed);
    let mut model = Gpt::new(vocab.chars.len(), a, &mut rng);
    // Each rank draws its own batches; rank 0's weights are everyone's.
    let mut ddp = comm.map(|c| DataParallel::new(Arc::clone(c)));
    if let Some(d) = &ddp {
        rng = StdRng::seed_from_u64(a.seed.wrapping_add(1_000_003 * d.rank() as u64));
        say!(
            "data-parallel on {} processes: {} windows per step ({} per process)",
            d.size(),
            d.size() * a.batch_size,
            a.batch_size
        );
    }
    if let Some(path) = &a.load {
        io::load_model(&model, path)?;
        say!("loaded weights from {}", path.display());
    }
    say!(
        "model: GPT, {} layers, {} heads, {} dims, context {}, dropout {}; {} parameters",
        a.n_layer,
        a.n_head,
        a.n_embd,
        a.block_size,
        a.dropout,
        model.num_parameters()
    );
    // Weight decay on the matrices only (nanoGPT's groups): embeddings and linear weights.
    let (decay, no_decay): (Vec<_>, Vec<_>) =
        model.named_parameters().into_iter().partition(|(name, t)| t.ndim() >= 2 && !name.ends_with("bias"));
    let mut opt_decay =
        AdamW::new(decay, AdamWConfig { lr: a.lr, betas: (0.9, 0.99), weight_decay: 0.1, ..AdamWConfig::default() });
    let mut opt_plain =
        AdamW::new(no_decay, AdamWConfig { lr: a.lr, betas: (0.9, 0.99), weight_decay: 0.0, ..AdamWConfig::default() });

    if let Some(d) = &ddp {
        d.broadcast_state(&model);
    }
    let params = model.named_parameters();
    if main_rank {
        std::fs::create_dir_all(&a.out)?;
        std::fs::write(a.out.join("vocab.txt"), vocab.chars.iter().collect::<String>())?;
    }
    let mut history = History::new();
    let mut best = f64::INFINITY;
    let mut window = (Instant::now(), 0.0f64, 0usize);
    let mut final_val = None;
    let mut step_seconds = Vec::with_capacity(a.iters);
    for it in 0..=a.iters {
        if it % a.eval_interval == 0 || it == a.iters {
            let mut losses = [
                estimate(&mut model, &train, a, a.eval_iters, &mut rng),
                estimate(&mut model, &val, a, a.eval_iters, &mut rng),
            ];
            if let Some(c) = comm {
                c.all_reduce((&mut losses[..]).into(), ReduceOp::Mean);
            }
            let [train_loss, val_loss] = losses;
            let secs = window.0.elapsed().as_secs_f64();
            let ms_per_iter = if window.2 > 0 { window.1 / window.2 as f64 * 1e3 } else { f64::NAN };
            say!(
                "iter {it:5}: train loss {train_loss:.4}, val loss {val_loss:.4} ({:.3} bpc), {ms_per_iter:.0} ms/iter",
                val_loss / std::f64::consts::LN_2
            );
            if it > 0 {
                history.push_epoch(
                    &[
                        ("loss".into(), train_loss),
                        ("val_loss".into(), val_loss),
                        ("val_bpc".into(), val_loss / std::f64::consts::LN_2),
                        ("lr".into(), learning_rate(it - 1, a)),
                    ],
                    secs,
                );
                if main_rank {
                    history.save_json(a.out.join("history.json"))?;
                }
            }
            if val_loss < best && (it > 0 || a.load.is_some()) && main_rank {
                best = val_loss;
                io::save_model(&model, a.out.join("model.safetensors"))?;
            }
            final_val = Some(val_loss);
            window = (Instant::now(), 0.0, 0);
        }
        if it == a.iters {
            break;
        }
        let t0 = Instant::now();
        let lr = learning_rate(it, a);
        opt_decay.set_learning_rate(lr);
        opt_plain.set_learning_rate(lr);
        let (x, y) = batch(&train, a.batch_size, a.block_size, &mut rng);
        let key = StepKey::new(a.seed, 0, it, rank);
        let l = key.scope(|| loss(&model.logits(&x, a.batch_size, a.block_size, it as u64 + 1), &y));
        let mut grads = match &mut ddp {
            Some(d) => d.backward(&l, &params),
            None => l.backward(),
        };
        clip_grad_norm(&mut grads, 1.0);
        opt_decay.step(&grads);
        opt_plain.step(&grads);
        let secs = t0.elapsed().as_secs_f64();
        step_seconds.push(secs);
        window.1 += secs;
        window.2 += 1;
    }
    if !main_rank {
        return Ok(());
    }
    #[cfg(feature = "plot")]
    if history.epochs() > 0 {
        history.plot(a.out.join("training_curves.png"))?;
    }
    if a.sample > 0 {
        let prompt = vocab.encode(&val_text[..val_text.char_indices().nth(64).map_or(val_text.len(), |(i, _)| i)]);
        let text = sample(&model, &vocab, &prompt, a.sample, a, &mut rng);
        say!("--- sample (temperature {}, top-k {:?}) after:\n{}", a.temperature, a.top_k, vocab.decode(&prompt));
        say!("{text}\n---");
    }
    step_seconds.sort_by(f64::total_cmp);
    if let Some(median) = step_seconds.get(step_seconds.len() / 2) {
        say!("{:.0} ms per training iteration (median of {})", median * 1e3, step_seconds.len());
    }
    say!(
        "wrote model.safetensors (best validation loss), vocab.txt, history.json and training_curves.png to {}; {:.1} s in all",
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    let v = final_val.unwrap_or(f64::NAN);
    say!("val_loss={v:.4} val_bpc={:.4}", v / std::f64::consts::LN_2);
    Ok(())
}
