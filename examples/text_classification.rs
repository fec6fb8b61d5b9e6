//! The flagship: a Keras-style sentiment classifier on Rotten Tomatoes critic snippets.
//!
//! `Embedding(10000, 16) → LSTM(128, dropout 0.2, recurrent_dropout 0.2) → Dense(1, sigmoid)`,
//! trained with Adam on binary cross-entropy for 10 epochs in batches of 128, sequences padded
//! `post` to 100 tokens. By default the padding is masked (Keras's `mask_zero=True`): the LSTM
//! carries its state over padded steps, so the state it ends with is each snippet's state at its
//! last real token. `--no-mask` reproduces the model literally, reading the state after 100 steps.
//!
//! `--model transformer` trains a small Transformer encoder on the same data instead
//! (`examples/common/text_transformer.rs`: embeddings with sinusoidal positions, two pre-norm
//! encoder layers with the padding masked out of every attention, attention pooling, a sigmoid
//! output); `explain` then shows its attention maps. `--model cnn` trains the convolutional
//! sentence classifier (`examples/common/text_cnn.rs`: filters of widths 3, 4 and 5 over the
//! embeddings, max over time, dropout, a sigmoid output), which the `text_cnn` example runs.
//!
//! ```text
//! cargo run --release --example text_classification
//! cargo run --release --example text_classification -- --epochs 3 --no-mask --out /tmp/tc
//! cargo run --release --example text_classification -- --model transformer --out target/tc_transformer
//! # data-parallel on 2 processes (the `mpi` feature; --batch-size is per process)
//! cargo build --release --features mpi --example text_classification
//! mpirun -np 2 target/release/examples/text_classification --distributed --batch-size 64
//! ```
//!
//! Flags: `--train FILE`, `--test FILE` (TSV or CSV with a `label` and a `text` column; without
//! `--test`, a seeded 80/20 split of `--train`), `--epochs`, `--batch-size`, `--max-len`,
//! `--vocab`, `--seed`, `--out DIR` (default `target/text_classification/`), `--no-mask`,
//! `--limit N` (use only the first N rows, for a quick run), `--save-split` (also write the
//! train/test split as `train.tsv` and `test.tsv`, to train another framework on the same data),
//! `--model lstm|transformer|cnn`, `--distributed` (train data-parallel on the processes of an
//! MPI job, each its share of every epoch and `--batch-size` samples per step; only rank 0
//! prints and writes files; needs the `mpi` feature). It writes `history.json`, `history.csv`, `training_curves.png`,
//! the weights (`model.safetensors`), the vocabulary (`vocab.txt`) and the architecture's name
//! (`architecture.txt`) into `--out`. The last line it prints is `test_accuracy=… test_loss=…`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::data::{Padding, ReadOptions, TextDataset, Tokenizer, Truncating, pad_sequences, read_labelled};
use tensorgrad::distributed::{Communicator, DataParallel};
use tensorgrad::loss::{Reduction, bce};
use tensorgrad::nn::{Activation, Dense, Embedding, Lstm, LstmConfig, Module, Sequential};
use tensorgrad::optim::{Adam, AdamConfig};
use tensorgrad::train::{FitOptions, Metric, Trainer, Validation};
use tensorgrad::{Tensor, io};

#[path = "common/distributed.rs"]
mod distributed;
#[path = "common/text_cnn.rs"]
mod text_cnn;
#[path = "common/text_transformer.rs"]
mod text_transformer;
use text_cnn::CnnClassifier;
use text_transformer::TransformerClassifier;

/// Which classifier to train.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    Lstm,
    Transformer,
    Cnn,
}

impl Arch {
    fn name(self) -> &'static str {
        match self {
            Arch::Lstm => "lstm",
            Arch::Transformer => "transformer",
            Arch::Cnn => "cnn",
        }
    }
}

struct Args {
    train: PathBuf,
    test: Option<PathBuf>,
    epochs: usize,
    batch_size: usize,
    max_len: usize,
    vocab: usize,
    seed: u64,
    out: PathBuf,
    mask: bool,
    limit: Option<usize>,
    save_split: bool,
    arch: Arch,
    distributed: bool,
}

fn parse_args(args: Vec<String>, arch: Arch, out: &str) -> Result<Args, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        train: root.join("data/rt_snippets/rt_snippets.tsv"),
        test: None,
        epochs: 10,
        batch_size: 128,
        max_len: 100,
        vocab: 10_000,
        seed: 42,
        out: root.join(out),
        mask: true,
        limit: None,
        save_split: false,
        arch,
        distributed: false,
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {v:?} is not a count ({e})"));
        match flag.as_str() {
            "--train" => a.train = value()?.into(),
            "--test" => a.test = Some(value()?.into()),
            "--epochs" => a.epochs = num(value()?)?,
            "--batch-size" => a.batch_size = num(value()?)?,
            "--max-len" => a.max_len = num(value()?)?,
            "--vocab" => a.vocab = num(value()?)?,
            "--seed" => a.seed = num(value()?)? as u64,
            "--out" => a.out = value()?.into(),
            "--limit" => a.limit = Some(num(value()?)?),
            "--no-mask" => a.mask = false,
            "--save-split" => a.save_split = true,
            "--distributed" => a.distributed = true,
            "--model" => {
                a.arch = match value()?.as_str() {
                    "lstm" => Arch::Lstm,
                    "transformer" => Arch::Transformer,
                    "cnn" => Arch::Cnn,
                    other => return Err(format!("--model is lstm, transformer or cnn, not {other}")),
                }
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.batch_size == 0 || a.max_len == 0 || a.vocab < 2 {
        return Err("--batch-size and --max-len must be at least 1, --vocab at least 2".into());
    }
    Ok(a)
}

#[allow(dead_code)] // unused where `text_cnn` includes this file as a module
fn main() -> ExitCode {
    cli("text_classification", std::env::args().skip(1).collect(), Arch::Lstm, "target/text_classification")
}

/// Runs the program on the flags `args`; `arch` and `out` are the defaults of `--model` and
/// `--out` (`text_cnn` runs it with `cnn`).
pub(crate) fn cli(program: &str, args: Vec<String>, arch: Arch, out: &str) -> ExitCode {
    let args = match parse_args(args, arch, out) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!(
                "usage: {program} [--train FILE] [--test FILE] [--epochs N] [--batch-size N] [--max-len N] \
                 [--vocab N] [--seed N] [--out DIR] [--no-mask] [--limit N] [--save-split] [--model lstm|transformer|cnn] \
                 [--distributed]"
            );
            return ExitCode::from(2);
        }
    };
    let comm = match distributed::communicator(args.distributed, program) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args, comm.as_ref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            distributed::abort_on_error(comm.as_ref());
            ExitCode::FAILURE
        }
    }
}

fn limited(mut d: TextDataset, limit: Option<usize>) -> TextDataset {
    if let Some(n) = limit {
        d.texts.truncate(n);
        d.labels.truncate(n);
    }
    d
}

/// Ids padded (and truncated) `post` to `max_len`, as a `[n, max_len]` tensor, and labels `[n, 1]`.
fn encode(tok: &Tokenizer, d: &TextDataset, max_len: usize) -> (Tensor, Tensor) {
    let seqs = tok.texts_to_sequences(&d.texts);
    let x = pad_sequences(&seqs, Some(max_len), Padding::Post, Truncating::Post, 0.0);
    let y = Tensor::from_vec(d.labels.clone(), &[d.labels.len(), 1]);
    (x, y)
}

fn run(args: &Args, comm: Option<&Arc<dyn Communicator>>) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    // In data-parallel training every rank runs this program; rank 0 speaks and writes.
    let main_rank = comm.is_none_or(|c| c.rank() == 0);
    macro_rules! say {
        ($($t:tt)*) => {
            if main_rank {
                println!($($t)*);
            }
        };
    }
    let opts = ReadOptions::new();
    let all = limited(read_labelled(&args.train, &opts)?, args.limit);
    let (train, test) = match &args.test {
        Some(path) => (all, limited(read_labelled(path, &opts)?, args.limit)),
        None => all.train_test_split(0.2, args.seed),
    };
    say!(
        "data: {} training and {} test snippets from {} ({} positive in training)",
        train.len(),
        test.len(),
        args.train.display(),
        train.labels.iter().filter(|&&l| l > 0.5).count()
    );

    if args.save_split && main_rank {
        std::fs::create_dir_all(&args.out)?;
        for (name, d) in [("train.tsv", &train), ("test.tsv", &test)] {
            let mut text = String::from("label\ttext\n");
            for (l, t) in d.labels.iter().zip(&d.texts) {
                text.push_str(&format!("{l}\t{t}\n"));
            }
            std::fs::write(args.out.join(name), text)?;
        }
    }

    let mut tok = Tokenizer::new().with_num_words(args.vocab);
    tok.fit_on_texts(&train.texts);
    let (x_train, y_train) = encode(&tok, &train, args.max_len);
    let (x_test, y_test) = encode(&tok, &test, args.max_len);
    let vocab = tok.vocab_size().min(args.vocab);
    say!(
        "vocabulary: {} distinct words, {vocab} ids used; sequences padded post to {}",
        tok.word_index().len(),
        args.max_len
    );

    let mut rng = StdRng::seed_from_u64(args.seed);
    let model: Box<dyn Module> = if args.arch == Arch::Transformer {
        let model = TransformerClassifier::new(args.vocab, args.max_len, args.seed, &mut rng);
        say!("model: {}; {} parameters; padding masked", model.describe(), model.num_parameters());
        Box::new(model)
    } else if args.arch == Arch::Cnn {
        if args.max_len < 5 {
            return Err("--model cnn needs --max-len of at least 5 (its widest filter)".into());
        }
        let model = CnnClassifier::new(args.vocab, args.seed, &mut rng);
        say!("model: {}; {} parameters", model.describe(), model.num_parameters());
        Box::new(model)
    } else {
        let lstm = LstmConfig { dropout: 0.2, recurrent_dropout: 0.2, seed: args.seed, ..LstmConfig::new(16, 128) };
        let model: Sequential = Sequential::new()
            .add_named("embedding", Embedding::new(args.vocab, 16, &mut rng).with_mask_zero(args.mask))
            .add_named("lstm", Lstm::new(lstm, &mut rng))
            .add_named("dense", Dense::new(128, 1, Some(Activation::Sigmoid), &mut rng));
        say!(
            "model: Embedding({}, 16) → LSTM(128, dropout 0.2, recurrent_dropout 0.2) → Dense(1, sigmoid); {} parameters; padding {}",
            args.vocab,
            model.num_parameters(),
            if args.mask { "masked" } else { "not masked (--no-mask)" }
        );
        Box::new(model)
    };

    let opt = Adam::new(model.named_parameters(), AdamConfig::default());
    let mut trainer =
        Trainer::new(model, opt, |p: &Tensor, y: &Tensor| bce(p, y, Reduction::Mean)).metrics(&[Metric::Accuracy]);
    if let Some(c) = comm {
        trainer = trainer.distributed(DataParallel::new(Arc::clone(c)));
        say!(
            "data-parallel on {} processes: {} samples per step ({} per process), each process its share of every epoch",
            c.size(),
            c.size() * args.batch_size,
            args.batch_size
        );
    }
    let fit = FitOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        validation: Validation::Data(&x_test, &y_test),
        ..FitOptions::default()
    };
    let history = trainer.fit(&x_train, &y_train, &fit)?;
    if !main_rank {
        return Ok(()); // the model is rank 0's too
    }
    let test_eval = trainer.evaluate(&x_test, &y_test, args.batch_size);

    std::fs::create_dir_all(&args.out)?;
    history.save_json(args.out.join("history.json"))?;
    history.save_csv(args.out.join("history.csv"))?;
    #[cfg(feature = "plot")]
    history.plot(args.out.join("training_curves.png"))?;
    io::save_model(trainer.model(), args.out.join("model.safetensors"))?;
    tok.save(args.out.join("vocab.txt"))?;
    std::fs::write(args.out.join("architecture.txt"), format!("{}\n", args.arch.name()))?;
    let per_epoch = history.epoch_seconds().iter().sum::<f64>() / history.epochs().max(1) as f64;
    say!(
        "wrote history.json, history.csv, training_curves.png, model.safetensors, vocab.txt and architecture.txt to {}",
        args.out.display()
    );
    say!("{:.1} s per epoch on average; {:.1} s in all", per_epoch, started.elapsed().as_secs_f64());
    let acc = test_eval.get("accuracy").unwrap_or(f64::NAN);
    say!("test_accuracy={acc:.4} test_loss={:.4}", test_eval.loss);
    Ok(())
}
