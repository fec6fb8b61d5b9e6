//! # Logistic regression on the breast-cancer data: one sigmoid neuron, two inputs
//!
//! The project's worked example. It trains a single sigmoid neuron
//! `p = σ(x·w + b)` (`w` of shape `[2, 1]`, `b` of shape `[1]`) by plain full-batch gradient
//! descent on the mean squared error `mean((p − y)²)`, using only the crate's tensors and
//! autograd: the forward pass is recorded, `backward` returns the gradients, and the parameters
//! are overwritten in place with [`Tensor::update_`]: `w ← w − lr·∂w`, `b ← b − lr·∂b`.
//!
//! **Data.** The Wisconsin diagnostic breast-cancer data (569 tumours, 30 features), vendored in
//! `data/breast_cancer/breast_cancer.csv` with its provenance and licence (BSD-3-Clause, from
//! scikit-learn) in `data/breast_cancer/README.txt`. The two inputs are the columns
//! `mean_radius` (the tumour's mean radius) and `mean_texture` (the standard deviation of its
//! grey levels); the label is the column `target`: 0 = malignant, 1 = benign, so `p` is the
//! predicted probability that a tumour is benign.
//!
//! **Steps.** Read and validate the CSV with [`tensorgrad::data::read_csv`] (a malformed file
//! stops the program with the file, the line and the problem), shuffle the rows with a seeded
//! RNG, split them 80/20 into train and test, standardise both features with the *train* mean and
//! standard deviation, initialise `w` and `b` with small seeded values, train, and report the
//! train and test accuracy at the threshold 0.5. The last line is
//! `test_accuracy=<float> test_loss=<float>`. The loss printed for an epoch is the training loss
//! before that epoch's update. The default learning rate is large because the gradient of the
//! squared error through a sigmoid is small (σ′ ≤ 1/4); with it the loss falls at every epoch and
//! has settled (to 4 digits) by epoch 200.
//!
//! **Run it:**
//!
//! ```sh
//! cargo run --release --example logistic_regression
//! cargo run --release --example logistic_regression -- --epochs 500 --lr 1 --seed 7 --log-every 50
//! cargo run --release --example logistic_regression -- --data path/to/other.csv
//! ```
//!
//! Flags: `--epochs N` (default 200), `--lr X` (learning rate, default 5.0), `--seed N`
//! (shuffle and initialisation, default 42), `--log-every N` (print the loss every N epochs,
//! default 10; 1 prints every epoch), `--data PATH` (default: the vendored CSV, found through
//! `CARGO_MANIFEST_DIR`, so it works from any working directory), `--help`.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tensorgrad::data::{CsvOptions, Table, read_csv};
use tensorgrad::{Tensor, no_grad};

/// The two input columns.
pub const FEATURES: [&str; 2] = ["mean_radius", "mean_texture"];
/// The label column (0 = malignant, 1 = benign).
pub const TARGET: &str = "target";
/// The vendored data, relative to the crate root.
pub const DEFAULT_DATA: &str = "data/breast_cancer/breast_cancer.csv";

const USAGE: &str = "usage: logistic_regression [--epochs N] [--lr X] [--seed N] [--log-every N] [--data PATH]";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Everything that can stop the example.
pub enum ExampleError {
    /// A bad command line.
    Args(String),
    /// A missing or malformed data file (the message names the file, the line and the problem).
    Data(tensorgrad::Error),
}

impl fmt::Display for ExampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExampleError::Args(m) => write!(f, "{m}\n{USAGE}"),
            ExampleError::Data(e) => write!(f, "{e}"),
        }
    }
}

// `main` prints a returned error with `Debug`: show the readable message.
impl fmt::Debug for ExampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<tensorgrad::Error> for ExampleError {
    fn from(e: tensorgrad::Error) -> Self {
        ExampleError::Data(e)
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// Reads the CSV at `path` (a header row, then one row per tumour) with [`read_csv`], which
/// checks that the columns exist, that every row has as many fields as the header and that the
/// features and the label are finite numbers; then checks that every label is 0 or 1. The
/// table's features are `[mean_radius, mean_texture]` and its target the label, in file order.
pub fn load_dataset(path: &Path) -> tensorgrad::Result<Table> {
    let table = read_csv(path, &CsvOptions::new().with_features(FEATURES).with_target(TARGET))?;
    let targets = table.target_values().unwrap_or_default();
    if let Some(row) = targets.iter().position(|&y| y != 0.0 && y != 1.0) {
        let reason = format!("column `{TARGET}`: the label must be 0 or 1, found {}", targets[row]);
        return Err(table.row_error(row, reason));
    }
    Ok(table)
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/// The settings from the command line.
pub struct Config {
    /// Number of full-batch gradient steps.
    pub epochs: usize,
    /// Learning rate.
    pub lr: f32,
    /// Seed of the shuffle and of the initial weights.
    pub seed: u64,
    /// Print the loss every this many epochs.
    pub log_every: usize,
    /// The CSV file.
    pub data: PathBuf,
}

/// Parses `--epochs N --lr X --seed N --log-every N --data PATH`; `Ok(None)` means `--help`.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Config>, ExampleError> {
    let mut cfg = Config {
        epochs: 200,
        lr: 5.0,
        seed: 42,
        log_every: 10,
        data: Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_DATA),
    };
    fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, ExampleError> {
        let v = v.ok_or_else(|| ExampleError::Args(format!("{flag} needs a value")))?;
        v.parse().map_err(|_| ExampleError::Args(format!("{flag}: cannot read {v:?}")))
    }
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--epochs" => cfg.epochs = value(&flag, args.next())?,
            "--lr" => cfg.lr = value(&flag, args.next())?,
            "--seed" => cfg.seed = value(&flag, args.next())?,
            "--log-every" => cfg.log_every = value(&flag, args.next())?,
            "--data" => cfg.data = value(&flag, args.next())?,
            "-h" | "--help" => return Ok(None),
            other => return Err(ExampleError::Args(format!("unknown argument {other:?}"))),
        }
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(ExampleError::Args(format!("--lr must be a positive number, got {}", cfg.lr)));
    }
    if cfg.log_every == 0 {
        return Err(ExampleError::Args("--log-every must be at least 1".into()));
    }
    Ok(Some(cfg))
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// Mean and (population) standard deviation of each feature over `rows`; a constant feature
/// gets a standard deviation of 1 so that standardising it gives zeros rather than NaN.
pub fn mean_std(rows: &[[f64; 2]]) -> ([f64; 2], [f64; 2]) {
    let n = rows.len() as f64;
    let mut mean = [0.0; 2];
    let mut std = [0.0; 2];
    for j in 0..2 {
        mean[j] = rows.iter().map(|r| r[j]).sum::<f64>() / n;
        let var = rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
        std[j] = if var > 0.0 { var.sqrt() } else { 1.0 };
    }
    (mean, std)
}

/// The two features of row `i`.
fn row(data: &Table, i: usize) -> [f64; 2] {
    let r = data.feature_values();
    [r[2 * i], r[2 * i + 1]]
}

/// The standardised features `[n, 2]` and labels `[n, 1]` of the rows `idx`.
fn tensors(data: &Table, idx: &[usize], mean: [f64; 2], std: [f64; 2]) -> (Tensor, Tensor) {
    let x: Vec<f32> =
        idx.iter().flat_map(|&i| (0..2).map(move |j| ((row(data, i)[j] - mean[j]) / std[j]) as f32)).collect();
    let targets = data.target_values().unwrap_or_default();
    let y: Vec<f32> = idx.iter().map(|&i| targets[i] as f32).collect();
    (Tensor::from_vec(x, &[idx.len(), 2]), Tensor::from_vec(y, &[idx.len(), 1]))
}

/// The forward pass: `σ(x·w + b)`, one probability per row, shape `[n, 1]`.
fn predict(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    (x.matmul(w) + b).sigmoid()
}

/// The training objective: `mean((p − y)²)`.
fn mse(p: &Tensor, y: &Tensor) -> Tensor {
    let d = p - y;
    (&d * &d).mean()
}

/// Loss and accuracy (threshold 0.5) of the current parameters, without recording a graph.
fn evaluate(x: &Tensor, y: &Tensor, w: &Tensor, b: &Tensor) -> (f32, f32) {
    no_grad(|| {
        let p = predict(x, w, b);
        let loss = mse(&p, y).item();
        let (p, y) = (p.to_vec(), y.to_vec());
        let correct = p.iter().zip(&y).filter(|&(&p, &y)| (p >= 0.5) == (y >= 0.5)).count();
        (loss, correct as f32 / y.len() as f32)
    })
}

fn main() -> Result<(), ExampleError> {
    let Some(cfg) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let data = load_dataset(&cfg.data)?;
    let n = data.len();
    if n < 5 {
        return Err(data.file_error(format!("{n} data rows is too few for an 80/20 split")).into());
    }
    let shown = cfg.data.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&cfg.data);
    let benign = data.target_values().unwrap_or_default().iter().filter(|&&y| y == 1.0).count();
    println!("data: {} ({n} rows: {} malignant, {benign} benign)", shown.display(), n - benign);

    // Seeded shuffle, then 80% train / 20% test.
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let n_train = n * 4 / 5;
    let (train_idx, test_idx) = order.split_at(n_train);

    // Standardise with the statistics of the training rows only.
    let train_rows: Vec<[f64; 2]> = train_idx.iter().map(|&i| row(&data, i)).collect();
    let (mean, std) = mean_std(&train_rows);
    for j in 0..2 {
        println!("feature {}: train mean {:.4}, std {:.4}", FEATURES[j], mean[j], std[j]);
    }
    let (x_train, y_train) = tensors(&data, train_idx, mean, std);
    let (x_test, y_test) = tensors(&data, test_idx, mean, std);
    println!(
        "split: {} train, {} test (seed {}); epochs {}, lr {:?}",
        train_idx.len(),
        test_idx.len(),
        cfg.seed,
        cfg.epochs,
        cfg.lr
    );

    // One neuron: small seeded initial weights.
    let w = Tensor::<f32>::rand_uniform(&[2, 1], -0.1, 0.1, &mut rng).requires_grad();
    let b = Tensor::<f32>::rand_uniform(&[1], -0.1, 0.1, &mut rng).requires_grad();

    for epoch in 1..=cfg.epochs {
        let (loss, gw, gb) = {
            let loss = mse(&predict(&x_train, &w, &b), &y_train);
            let grads = loss.backward();
            let gw = grads.get(&w).expect("the loss depends on w").to_vec();
            let gb = grads.get(&b).expect("the loss depends on b").to_vec();
            (loss.item(), gw, gb)
        };
        // Plain gradient descent, in place.
        w.update_(|d| d.iter_mut().zip(&gw).for_each(|(v, g)| *v -= cfg.lr * g));
        b.update_(|d| d.iter_mut().zip(&gb).for_each(|(v, g)| *v -= cfg.lr * g));
        if epoch == 1 || epoch % cfg.log_every == 0 || epoch == cfg.epochs {
            println!("epoch {epoch:>4}  train_loss {loss:.6}");
        }
    }

    let (train_loss, train_acc) = evaluate(&x_train, &y_train, &w, &b);
    let (test_loss, test_acc) = evaluate(&x_test, &y_test, &w, &b);
    let majority = {
        let ones = y_test.to_vec().iter().filter(|&&y| y == 1.0).count();
        ones.max(test_idx.len() - ones) as f32 / test_idx.len() as f32
    };
    let (wv, bv) = (w.to_vec(), b.to_vec());
    println!("weights: w = [{:.4}, {:.4}], b = {:.4}", wv[0], wv[1], bv[0]);
    println!("train: loss {train_loss:.4}, accuracy {train_acc:.4}");
    println!("test:  loss {test_loss:.4}, accuracy {test_acc:.4} (majority class alone: {majority:.4})");
    println!("test_accuracy={test_acc:.4} test_loss={test_loss:.4}");
    Ok(())
}
