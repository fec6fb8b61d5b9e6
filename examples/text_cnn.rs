//! # Sentiment with a convolutional sentence classifier (Kim, 2014)
//!
//! The flagship's task, data and flags (`text_classification`: Rotten Tomatoes critic snippets,
//! a seeded 80/20 split, ids padded `post` to 100 tokens, Adam, binary cross-entropy, 10 epochs
//! of 128), with a convolutional network instead of the LSTM
//! (`examples/common/text_cnn.rs`): `Embedding(10000, 128) → Conv1d(128, 100, k) + ReLU for
//! k = 3, 4, 5 → max over time → concat → Dropout(0.5) → Dense(1, sigmoid)`. It is
//! `text_classification --model cnn` with `--out` defaulting to `target/text_cnn/`.
//!
//! ```text
//! cargo run --release --example text_cnn
//! cargo run --release --example text_cnn -- --epochs 1 --limit 800   # seconds, for CI
//! ```
//!
//! Flags: those of `text_classification` (`--train`, `--test`, `--epochs`, `--batch-size`,
//! `--max-len`, `--vocab`, `--seed`, `--out`, `--limit`, `--save-split`). The last line it prints
//! is `test_accuracy=… test_loss=…`.

use std::process::ExitCode;

#[path = "text_classification.rs"]
mod flagship;

fn main() -> ExitCode {
    flagship::cli("text_cnn", std::env::args().skip(1).collect(), flagship::Arch::Cnn, "target/text_cnn")
}
