//! # MNIST digits with a convolutional network (LeNet-5 style)
//!
//! `Conv2d(1, 6, 5) → ReLU → MaxPool2d(2) → Conv2d(6, 16, 5) → ReLU → MaxPool2d(2) → Flatten →
//! Linear(256, 120) → ReLU → Linear(120, 84) → ReLU → Linear(84, 10)`, trained with Adam on the
//! softmax cross-entropy for 10 epochs in batches of 64, on real 28×28 handwritten digits.
//!
//! **Data.** 5,000 MNIST digits (500 per class) as one gzipped CSV, vendored in
//! `data/mnist_5k/` with its provenance and licence (CC BY-SA 3.0) in `data/mnist_5k/README.txt`:
//! no header, 785 integers per row, the 784 pixels (0..255, row-major) then the label. By default
//! the rows are shuffled with the seed and split 4,000 for training and 1,000 for testing;
//! `--train FILE --test FILE` use your own files in the same format instead (`.csv` or
//! `.csv.gz`), for example the full MNIST converted to CSV.
//!
//! **Steps.** Read and validate the CSV with [`tensorgrad::data::read_csv_from_reader`] (through
//! a gzip decoder for `.gz`; a malformed row stops the program naming the line), scale the
//! pixels to [0, 1], shape them `[N, 1, 28, 28]` (PyTorch's NCHW), and train with
//! [`Trainer::fit`], the test split passed as validation data (reported only). Then it evaluates
//! the test split and prints the confusion matrix.
//!
//! **Run it:**
//!
//! ```sh
//! cargo run --release --example cnn_mnist
//! cargo run --release --example cnn_mnist -- --epochs 20 --lr 0.002 --seed 7 --out /tmp/mnist
//! cargo run --release --example cnn_mnist -- --train mnist_train.csv --test mnist_test.csv
//! cargo run --release --example cnn_mnist -- --epochs 1 --limit 500   # seconds, for CI
//! ```
//!
//! Flags: `--epochs N` (default 10), `--batch-size N` (default 64), `--lr X` (Adam's learning
//! rate, default 0.001), `--seed N` (split, initialisation and shuffling; default 42),
//! `--limit N` (use only the first N rows of each file; the vendored file is grouped by class,
//! so the rows are shuffled before the limit applies to it), `--data PATH` (default: the vendored
//! file), `--train FILE` / `--test FILE` (both or neither), `--out DIR` (default
//! `target/cnn_mnist/`: `history.json`, `model.safetensors`, and `training_curves.png` with the
//! `plot` feature), `--help`. The last line it prints is
//! `test_accuracy=<float> test_loss=<float>`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use flate2::read::GzDecoder;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tensorgrad::Tensor;
use tensorgrad::data::{CsvOptions, read_csv_from_reader};
use tensorgrad::loss::{self, Reduction};
use tensorgrad::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, Relu, Sequential};
use tensorgrad::optim::{Adam, AdamConfig};
use tensorgrad::train::{FitOptions, Metric, Trainer, Validation};

#[path = "common/digits.rs"]
mod digits;
use digits::{CLASSES, argmax_rows, print_confusion};

#[path = "common/cli.rs"]
mod cli;

/// The vendored data, relative to the crate root.
const DEFAULT_DATA: &str = "data/mnist_5k/mnist_5k.csv.gz";
const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;
/// Rows of the vendored file held out for testing.
const TEST_ROWS: usize = 1000;

const USAGE: &str = "usage: cnn_mnist [--epochs N] [--batch-size N] [--lr X] [--seed N] [--limit N] [--data PATH] \
                     [--train FILE --test FILE] [--out DIR]";

struct Args {
    epochs: usize,
    batch_size: usize,
    lr: f64,
    seed: u64,
    limit: Option<usize>,
    data: PathBuf,
    train: Option<PathBuf>,
    test: Option<PathBuf>,
    out: PathBuf,
}

/// Parses the flags; `Ok(None)` means `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        epochs: 10,
        batch_size: 64,
        lr: 1e-3,
        seed: 42,
        limit: None,
        data: root.join(DEFAULT_DATA),
        train: None,
        test: None,
        out: root.join("target/cnn_mnist"),
    };
    fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        v.parse().map_err(|_| format!("{flag}: cannot read {v:?}"))
    }
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--epochs" => a.epochs = value(&flag, it.next())?,
            "--batch-size" => a.batch_size = value(&flag, it.next())?,
            "--lr" => a.lr = value(&flag, it.next())?,
            "--seed" => a.seed = value(&flag, it.next())?,
            "--limit" => a.limit = Some(value(&flag, it.next())?),
            "--data" => a.data = value(&flag, it.next())?,
            "--train" => a.train = Some(value(&flag, it.next())?),
            "--test" => a.test = Some(value(&flag, it.next())?),
            "--out" => a.out = value(&flag, it.next())?,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.epochs == 0 || a.batch_size == 0 {
        return Err("--epochs and --batch-size must be at least 1".into());
    }
    if !(a.lr.is_finite() && a.lr > 0.0) {
        return Err(format!("--lr must be a positive number, got {}", a.lr));
    }
    if a.train.is_some() != a.test.is_some() {
        return Err("--train and --test go together".into());
    }
    if a.limit.is_some_and(|n| n < 20) {
        return Err("--limit must be at least 20 rows".into());
    }
    Ok(Some(a))
}

/// Images and labels, in file order.
struct Digits {
    /// `PIXELS` values in [0, 1] per image, row-major.
    pixels: Vec<f32>,
    labels: Vec<usize>,
}

impl Digits {
    fn len(&self) -> usize {
        self.labels.len()
    }

    /// The rows `idx` as images `[n, 1, 28, 28]` and class ids `[n]`.
    fn tensors(&self, idx: &[usize]) -> (Tensor, Tensor) {
        let x: Vec<f32> = idx.iter().flat_map(|&i| self.pixels[i * PIXELS..(i + 1) * PIXELS].iter().copied()).collect();
        let y: Vec<f32> = idx.iter().map(|&i| self.labels[i] as f32).collect();
        (Tensor::from_vec(x, &[idx.len(), 1, SIDE, SIDE]), Tensor::from_vec(y, &[idx.len()]))
    }
}

/// Reads a headerless CSV of 785 integers per row (`.gz` through a gzip decoder), checking
/// every pixel is in 0..=255 and every label a digit; at most `limit` rows.
fn load(path: &Path, limit: Option<usize>) -> Result<Digits, Box<dyn std::error::Error>> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader: Box<dyn Read> =
        if path.extension().is_some_and(|e| e == "gz") { Box::new(GzDecoder::new(file)) } else { Box::new(file) };
    let mut options = CsvOptions::new().with_header(false).with_features(0..PIXELS).with_target(PIXELS);
    if let Some(n) = limit {
        options = options.with_max_rows(n);
    }
    let table = read_csv_from_reader(reader, path, &options)?;
    let labels = table.target_classes(Some(CLASSES))?;
    let values = table.feature_values();
    if let Some(k) = values.iter().position(|v| !(0.0..=255.0).contains(v)) {
        return Err(table
            .row_error(k / PIXELS, format!("pixel {} is {}, not in 0..=255", k % PIXELS, values[k]))
            .into());
    }
    Ok(Digits { pixels: values.iter().map(|&v| (v / 255.0) as f32).collect(), labels })
}

/// The LeNet-style network, in PyTorch's layout and names.
fn lenet(rng: &mut StdRng) -> Sequential {
    Sequential::new()
        .add_named("conv1", Conv2d::new(1, 6, [5, 5], &mut *rng))
        .add_named("relu1", Relu)
        .add_named("pool1", MaxPool2d::new(2))
        .add_named("conv2", Conv2d::new(6, 16, [5, 5], &mut *rng))
        .add_named("relu2", Relu)
        .add_named("pool2", MaxPool2d::new(2))
        .add_named("flatten", Flatten::new())
        .add_named("fc1", Linear::new(16 * 4 * 4, 120, &mut *rng))
        .add_named("relu3", Relu)
        .add_named("fc2", Linear::new(120, 84, &mut *rng))
        .add_named("relu4", Relu)
        .add_named("fc3", Linear::new(84, CLASSES, &mut *rng))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let shown = |p: &Path| p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(p).display().to_string();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let ((x_train, y_train), (x_test, y_test)) = match (&args.train, &args.test) {
        (Some(train), Some(test)) => {
            let (tr, te) = (load(train, args.limit)?, load(test, args.limit)?);
            println!(
                "data: {} train images from {}, {} test images from {}",
                tr.len(),
                shown(train),
                te.len(),
                shown(test)
            );
            let (all_tr, all_te): (Vec<usize>, Vec<usize>) = ((0..tr.len()).collect(), (0..te.len()).collect());
            (tr.tensors(&all_tr), te.tensors(&all_te))
        }
        _ => {
            let data = load(&args.data, None)?;
            let mut rows: Vec<usize> = (0..data.len()).collect();
            rows.shuffle(&mut rng);
            rows.truncate(args.limit.unwrap_or(rows.len()));
            let n_test = if args.limit.is_some() { rows.len() / 5 } else { TEST_ROWS.min(rows.len() / 5) };
            let (test, train) = rows.split_at(n_test);
            println!(
                "data: {} ({} images of 28x28 pixels{}); seeded split (seed {}): {} train, {} test",
                shown(&args.data),
                data.len(),
                if args.limit.is_some() { ", --limit" } else { "" },
                args.seed,
                train.len(),
                test.len()
            );
            (data.tensors(train), data.tensors(test))
        }
    };

    let model = lenet(&mut rng);
    println!(
        "model: Conv2d(1, 6, 5) → ReLU → MaxPool2d(2) → Conv2d(6, 16, 5) → ReLU → MaxPool2d(2) → Flatten → \
         Linear(256, 120) → ReLU → Linear(120, 84) → ReLU → Linear(84, 10); {} parameters; Adam lr {}, {} epochs, \
         batch {}, {} threads",
        model.num_parameters(),
        args.lr,
        args.epochs,
        args.batch_size,
        rayon::current_num_threads()
    );
    let opt = Adam::new(model.named_parameters(), AdamConfig { lr: args.lr, ..AdamConfig::default() });
    let cross_entropy = |logits: &Tensor, y: &Tensor| loss::cross_entropy(logits, y, 0.0, Reduction::Mean);
    let mut trainer = Trainer::new(model, opt, cross_entropy).metrics(&[Metric::Accuracy]);
    let fit = FitOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        validation: Validation::Data(&x_test, &y_test),
        ..FitOptions::default()
    };
    println!("training (val_ = the test set, reported only):");
    let fit_started = Instant::now();
    let history = trainer.fit(&x_train, &y_train, &fit)?;
    let per_epoch = fit_started.elapsed().as_secs_f64() / args.epochs as f64;

    let test_eval = trainer.evaluate(&x_test, &y_test, 256);
    let predicted = argmax_rows(&trainer.predict(&x_test, 256));
    let actual: Vec<usize> = y_test.to_vec().iter().map(|&v| v as usize).collect();
    print_confusion("the test set", &actual, &predicted);

    std::fs::create_dir_all(&args.out)?;
    history.save_json(args.out.join("history.json"))?;
    tensorgrad::io::save_model(trainer.model(), args.out.join("model.safetensors"))?;
    #[cfg(feature = "plot")]
    history.plot(args.out.join("training_curves.png"))?;
    println!(
        "wrote history.json, model.safetensors{} to {}",
        if cfg!(feature = "plot") { ", training_curves.png" } else { "" },
        args.out.display()
    );
    let accuracy = test_eval.get("accuracy").unwrap_or(f64::NAN);
    println!(
        "test: loss {:.4}, accuracy {:.4} ({} of {} digits right); {per_epoch:.2} s per epoch (with validation), {:.1} s in all",
        test_eval.loss,
        accuracy,
        predicted.iter().zip(&actual).filter(|(p, a)| p == a).count(),
        actual.len(),
        started.elapsed().as_secs_f64()
    );
    println!("test_accuracy={accuracy:.4} test_loss={:.4}", test_eval.loss);
    Ok(())
}

fn main() -> ExitCode {
    cli::main_with(USAGE, parse_args(std::env::args().skip(1)), run)
}
