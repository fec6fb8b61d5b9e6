//! Getting data in: Keras-style text preprocessing, readers for CSV and labelled text files,
//! seeded splits, and PyTorch-style datasets and loaders.
//!
//! - [`Tokenizer`]: Keras's `Tokenizer` — lower-casing, punctuation filtering, a vocabulary
//!   ranked by word frequency, `num_words` and `oov_token` with Keras's exact semantics — plus a
//!   crash-safe save/load of the vocabulary.
//! - [`pad_sequences`] / [`pad_sequences_ids`]: Keras's `pad_sequences`, returning a `[n, maxlen]`
//!   tensor of ids ready for [`Embedding`](crate::nn::Embedding), or plain vectors.
//! - [`read_labelled`]: a labelled text file (TSV without quoting, or RFC 4180 CSV) with `label`
//!   and `text` columns, as a [`TextDataset`]; malformed rows are an error naming the file, line
//!   and problem, or are skipped and counted.
//! - [`read_csv`]: a numeric table (feature columns, an optional target column, with or
//!   without a header) as a [`Table`], ready to become tensors: [`Table::features`] `[n, f]`,
//!   [`Table::target`] `[n]` or [`Table::target_classes`]; a malformed file is an error naming the
//!   file, line and column.
//! - [`train_test_split`], [`train_val_test_split`], [`permutation`], [`batches`]: seeded,
//!   reproducible shuffling, splitting and mini-batching of row indices.
//! - [`Dataset`] and [`DataLoader`]: PyTorch's map-style datasets — in memory
//!   ([`TensorDataset`], a `Vec<Sample>`) or read on demand ([`FnDataset`], your own type), so the
//!   data need not fit in memory, with one or several inputs per sample — in seeded, shuffled
//!   mini-batches, optionally prefetched on a background thread. A
//!   [`Trainer`](crate::train::Trainer) trains on them with
//!   [`fit_loader`](crate::train::Trainer::fit_loader).
//! - [`DistributedSampler`]: PyTorch's `DistributedSampler`, each process's disjoint, equally
//!   long share of a seeded per-epoch shuffle, for data-parallel training.
//!
//! ```
//! use tensorgrad::data::{Padding, Tokenizer, Truncating, batches, pad_sequences};
//!
//! let texts = ["A gripping, funny film!", "A dull film.", "Funny and warm."];
//! let mut tokenizer = Tokenizer::new().with_num_words(100).with_oov_token("<OOV>");
//! tokenizer.fit_on_texts(&texts);
//! let sequences = tokenizer.texts_to_sequences(&texts);
//! let ids = pad_sequences(&sequences, Some(4), Padding::Pre, Truncating::Pre, 0.0);
//! assert_eq!(ids.shape(), &[3, 4]);
//!
//! for batch in batches(texts.len(), 2, Some(42)) {
//!     let x = ids.index_select(0, &batch); // [batch, 4], the input of an `Embedding`
//!     assert_eq!(x.shape()[1], 4);
//! }
//! ```

mod csv_quotes;
mod dataset;
mod labelled;
mod loader;
mod sampler;
mod sequence;
mod split;
mod table;
mod tokenizer;
mod vocab_file;

pub use dataset::{Batch, Dataset, FnDataset, Sample, TensorDataset};
pub use labelled::{Format, ReadOptions, SkippedRow, TextDataset, read_labelled};
pub use loader::{DataLoader, EpochBatches};
pub use sampler::DistributedSampler;
pub use sequence::{Padding, Truncating, pad_sequences, pad_sequences_ids};
pub use split::{Batches, Split, batches, batches_from, permutation, train_test_split, train_val_test_split};
pub use table::{Column, CsvOptions, Table, read_csv, read_csv_from_reader};
pub use tokenizer::{DEFAULT_FILTERS, Tokenizer, text_to_word_sequence};
