//! # Handwritten digits with a multi-layer perceptron and cross-entropy
//!
//! `Linear(64, 128) → ReLU → Dropout(0.1) → Linear(128, 10)`, trained with Adam on the softmax
//! cross-entropy of the 10 logits ([`loss::cross_entropy`]) for 30 epochs in batches of 64, on the
//! real 8×8 handwritten digits.
//!
//! **Data.** The UCI optical-recognition digits as packaged by scikit-learn (1797 images of 8×8
//! pixels with values 0..16, ten classes of about 180 images each), vendored in
//! `data/digits/digits.csv` with its provenance and licence (BSD-3-Clause) in
//! `data/digits/README.txt`. The header names 64 pixel columns `pixel_<row>_<col>` and a `target`
//! column holding the digit.
//!
//! **Steps.** Read and validate the CSV with [`tensorgrad::data::read_csv`] (a malformed file
//! stops the program with the file, the line and the problem), split it 80/20 into train and test
//! with a seeded *stratified* split (each digit keeps its share in both parts), scale the pixels to
//! [0, 1] by dividing by 16, and train with [`Trainer::fit`]; the test split is passed as
//! validation data, so each epoch line also shows `val_loss` and `val_accuracy` on it (they are
//! only reported: nothing is selected or stopped on them). Then it evaluates the test split and
//! prints its confusion matrix. The targets are class ids stored in a float tensor `[N]`:
//! `cross_entropy` takes that tensor as it is, and [`Metric::Accuracy`] compares it with the
//! arg-max of the logits.
//!
//! **Run it:**
//!
//! ```sh
//! cargo run --release --example mlp_digits
//! cargo run --release --example mlp_digits -- --epochs 50 --lr 0.0005 --seed 7 --out /tmp/digits
//! cargo run --release --example mlp_digits -- --epochs 2 --limit 300   # a few seconds, for CI
//! ```
//!
//! Flags: `--epochs N` (default 30), `--batch-size N` (default 64), `--lr X` (Adam's learning
//! rate, default 0.001), `--seed N` (split, initialisation, dropout and shuffling; default 42),
//! `--limit N` (use only the first N rows of the file), `--data PATH` (default: the vendored CSV,
//! found through `CARGO_MANIFEST_DIR`, so it works from any working directory), `--out DIR`
//! (default `target/mlp_digits/`; receives `history.json`, and `training_curves.png` with the
//! `plot` feature), `--help`. The last line it prints is `test_accuracy=<float> test_loss=<float>`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tensorgrad::Tensor;
use tensorgrad::data::{CsvOptions, read_csv};
use tensorgrad::loss::{self, Reduction};
use tensorgrad::nn::{Dropout, Linear, Module, Relu, Sequential};
use tensorgrad::optim::{Adam, AdamConfig};
use tensorgrad::train::{FitOptions, Metric, Trainer, Validation};

#[path = "common/digits.rs"]
mod digits;
use digits::{CLASSES, argmax_rows, print_confusion};

#[path = "common/cli.rs"]
mod cli;

/// The vendored data, relative to the crate root.
const DEFAULT_DATA: &str = "data/digits/digits.csv";
/// Pixels per image (8×8).
const PIXELS: usize = 64;
/// The largest pixel value in the data set (4×4 blocks of a 32×32 bitmap, counted).
const MAX_PIXEL: f32 = 16.0;
/// The fraction of each class held out for testing.
const TEST_FRACTION: f64 = 0.2;

const USAGE: &str = "usage: mlp_digits [--epochs N] [--batch-size N] [--lr X] [--seed N] [--limit N] [--data PATH] \
                     [--out DIR]";

struct Args {
    epochs: usize,
    batch_size: usize,
    lr: f64,
    seed: u64,
    limit: Option<usize>,
    data: PathBuf,
    out: PathBuf,
}

/// Parses the flags; `Ok(None)` means `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        epochs: 30,
        batch_size: 64,
        lr: 1e-3,
        seed: 42,
        limit: None,
        data: root.join(DEFAULT_DATA),
        out: root.join("target/mlp_digits"),
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
    if a.limit.is_some_and(|n| n < 10) {
        return Err("--limit must be at least 10 rows (some for training, some for testing)".into());
    }
    Ok(Some(a))
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// The images, in file order.
struct Digits {
    /// `PIXELS` raw values (0..16) per image, row-major.
    pixels: Vec<[f32; PIXELS]>,
    /// The digit of each image.
    labels: Vec<usize>,
}

/// Reads the CSV with [`read_csv`]: a header with the 64 pixel columns and `target` (in any
/// order), then one row per image. Every pixel must be a number in 0..=16 and every target a
/// digit 0..9. Reads at most `limit` rows.
fn load_digits(path: &Path, limit: Option<usize>) -> tensorgrad::Result<Digits> {
    let pixel_names = (0..PIXELS).map(|k| format!("pixel_{}_{}", k / 8, k % 8));
    let mut options = CsvOptions::new().with_features(pixel_names).with_target("target");
    if let Some(n) = limit {
        options = options.with_max_rows(n);
    }
    let table = read_csv(path, &options)?;
    let labels = table.target_classes(Some(CLASSES))?;
    let mut pixels = Vec::with_capacity(table.len());
    for (i, row) in table.feature_values().chunks_exact(PIXELS).enumerate() {
        let mut image = [0f32; PIXELS];
        for ((px, &v), name) in image.iter_mut().zip(row).zip(table.feature_names()) {
            if !(0.0..=f64::from(MAX_PIXEL)).contains(&v) {
                return Err(table.row_error(i, format!("column `{name}`: pixel value {v} is not in 0..=16")));
            }
            *px = v as f32;
        }
        pixels.push(image);
    }
    Ok(Digits { pixels, labels })
}

// ---------------------------------------------------------------------------------------------
// Splitting and tensors
// ---------------------------------------------------------------------------------------------

/// A seeded stratified split: within each class, shuffle the rows and hold out
/// `round(TEST_FRACTION · count)` of them (at least one when the class has two or more). Returns
/// the train and test rows, each shuffled.
fn stratified_split(labels: &[usize], seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in 0..CLASSES {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rows.shuffle(&mut rng);
        let mut n_test = (rows.len() as f64 * TEST_FRACTION).round() as usize;
        if n_test == 0 && rows.len() >= 2 {
            n_test = 1;
        }
        test.extend_from_slice(&rows[..n_test]);
        train.extend_from_slice(&rows[n_test..]);
    }
    train.shuffle(&mut rng);
    test.shuffle(&mut rng);
    (train, test)
}

/// The scaled pixels `[n, 64]` (in [0, 1]) and the class ids `[n]` (as floats) of the rows `idx`.
fn tensors(data: &Digits, idx: &[usize]) -> (Tensor, Tensor) {
    let x: Vec<f32> = idx.iter().flat_map(|&i| data.pixels[i].map(|p| p / MAX_PIXEL)).collect();
    let y: Vec<f32> = idx.iter().map(|&i| data.labels[i] as f32).collect();
    (Tensor::from_vec(x, &[idx.len(), PIXELS]), Tensor::from_vec(y, &[idx.len()]))
}

/// Class ids stored as floats (`[N]` or `[N, 1]`) back to `usize`, for the confusion matrix.
fn class_ids(y: &Tensor) -> Vec<usize> {
    y.to_vec().into_iter().map(|v| v as usize).collect()
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn main() -> ExitCode {
    cli::main_with(USAGE, parse_args(std::env::args().skip(1)), run)
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let data = load_digits(&args.data, args.limit)?;
    let shown = args.data.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&args.data);
    let mut per_class = [0usize; CLASSES];
    data.labels.iter().for_each(|&l| per_class[l] += 1);
    println!(
        "data: {} ({} images of 8x8 pixels{}; per digit 0..9: {per_class:?})",
        shown.display(),
        data.labels.len(),
        if args.limit.is_some() { ", --limit" } else { "" }
    );

    let (train_idx, test_idx) = stratified_split(&data.labels, args.seed);
    if train_idx.is_empty() || test_idx.is_empty() {
        let msg = format!("{} rows leave the train or the test split empty: use more rows", data.labels.len());
        return Err(tensorgrad::Error::DataFile { path: args.data.clone(), line: None, reason: msg }.into());
    }
    let (x_train, y_train) = tensors(&data, &train_idx);
    let (x_test, y_test) = tensors(&data, &test_idx);
    println!(
        "split: {} train, {} test (stratified, seed {}); pixels scaled to [0, 1] by dividing by 16",
        train_idx.len(),
        test_idx.len(),
        args.seed
    );

    let mut rng = StdRng::seed_from_u64(args.seed);
    let model: Sequential = Sequential::new()
        .add_named("fc1", Linear::new(PIXELS, 128, &mut rng))
        .add_named("relu", Relu)
        .add_named("dropout", Dropout::new(0.1, args.seed))
        .add_named("fc2", Linear::new(128, CLASSES, &mut rng));
    println!(
        "model: Linear(64, 128) → ReLU → Dropout(0.1) → Linear(128, 10); {} parameters; Adam lr {}, {} epochs, \
         batch {}",
        model.num_parameters(),
        args.lr,
        args.epochs,
        args.batch_size
    );

    let opt = Adam::new(model.parameters(), AdamConfig { lr: args.lr, ..AdamConfig::default() });
    // The targets arrive as the float tensor [N] of class ids built above, as cross_entropy takes them.
    let cross_entropy = |logits: &Tensor, y: &Tensor| loss::cross_entropy(logits, y, 0.0, Reduction::Mean);
    let mut trainer = Trainer::new(model, opt, cross_entropy).metrics(&[Metric::Accuracy]);
    let fit = FitOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        validation: Validation::Data(&x_test, &y_test),
        ..FitOptions::default()
    };
    println!("training (val_ = the test split, reported only):");
    let history = trainer.fit(&x_train, &y_train, &fit)?;

    let train_eval = trainer.evaluate(&x_train, &y_train, 256);
    let test_eval = trainer.evaluate(&x_test, &y_test, 256);
    let logits = trainer.predict(&x_test, 256);
    let predicted = argmax_rows(&logits);
    print_confusion("the test split", &class_ids(&y_test), &predicted);

    std::fs::create_dir_all(&args.out)?;
    history.save_json(args.out.join("history.json"))?;
    #[cfg(feature = "plot")]
    history.plot(args.out.join("training_curves.png"))?;
    let wrote = if cfg!(feature = "plot") { "history.json and training_curves.png" } else { "history.json" };
    println!("wrote {wrote} to {}", args.out.display());

    let accuracy = |e: &tensorgrad::train::Evaluation| e.get("accuracy").unwrap_or(f64::NAN);
    println!("train: loss {:.4}, accuracy {:.4}", train_eval.loss, accuracy(&train_eval));
    println!(
        "test:  loss {:.4}, accuracy {:.4} ({} of {} digits right); {:.1} s in all",
        test_eval.loss,
        accuracy(&test_eval),
        predicted.iter().zip(class_ids(&y_test)).filter(|&(p, a)| *p == a).count(),
        test_idx.len(),
        started.elapsed().as_secs_f64()
    );
    println!("test_accuracy={:.4} test_loss={:.4}", accuracy(&test_eval), test_eval.loss);
    Ok(())
}
