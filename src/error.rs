//! The crate's error type, for fallible construction and I/O, and the text of its messages.

use std::path::{Path, PathBuf};

/// Errors returned by fallible constructors and by file I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The number of values does not match the requested shape.
    #[error("{op}: {len} values cannot fill shape {shape:?}, which holds {expected}")]
    DataLength {
        /// The constructor that failed.
        op: &'static str,
        /// How many values were given.
        len: usize,
        /// The requested shape.
        shape: Vec<usize>,
        /// How many values the shape holds.
        expected: usize,
    },
    /// A value that must be finite was NaN or infinite.
    #[error("{op}: value {value} at position {position} is not finite")]
    NonFinite {
        /// The operation that checked.
        op: &'static str,
        /// The offending value, as text.
        value: String,
        /// Its position in the input.
        position: usize,
    },
    /// A file could not be read, written, synced or renamed.
    #[error("cannot {op} {}: {source}", .path.display())]
    Io {
        /// What was being done, e.g. `"read"` or `"create the temporary file"`.
        op: &'static str,
        /// The file the operation failed on.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Bytes that are not a valid safetensors file: truncated, a corrupt or hostile header,
    /// sizes that do not add up (see [`crate::io`]).
    #[error("{}: not a valid safetensors file: {reason}", describe_origin(.path))]
    Format {
        /// The file, or `None` for bytes given in memory.
        path: Option<std::path::PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// A stored tensor whose element type is not the one asked for (loading never converts).
    #[error("{}: tensor {} is stored as {found}, expected {expected}", describe_origin(.path), backticked(.name))]
    DType {
        /// The file, or `None` for bytes given in memory.
        path: Option<std::path::PathBuf>,
        /// The tensor's name in the file.
        name: String,
        /// The stored safetensors dtype (`"F64"`, `"BF16"`, …).
        found: String,
        /// The dtype that was asked for (`"F32"` or `"F64"`).
        expected: String,
    },
    /// A tensor or metadata name that cannot be saved: a duplicate, or the reserved
    /// `"__metadata__"`.
    #[error("cannot save {kind} named {}: {reason}", quoted(.name))]
    InvalidName {
        /// `"tensor"` or `"metadata key"`.
        kind: &'static str,
        /// The name.
        name: String,
        /// Why it cannot be saved.
        reason: &'static str,
    },
    /// The tensors of a weight file do not match a model's parameters; nothing was loaded.
    /// The fields list every difference at once; the message shows up to 20 of each kind.
    #[error(
        "{}",
        describe_state_mismatch(.path, .missing, .unexpected, .mismatched, .wrong_dtype)
    )]
    StateMismatch {
        /// The weight file, or `None` for bytes given in memory.
        path: Option<std::path::PathBuf>,
        /// Parameters of the model that the file does not have.
        missing: Vec<String>,
        /// Tensors of the file that the model has no parameter for.
        unexpected: Vec<String>,
        /// Tensors whose shape differs: (name, the model's shape, the file's shape).
        mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
        /// Tensors whose element type differs: (name, the model's dtype, the file's dtype).
        wrong_dtype: Vec<(String, String, String)>,
    },
    /// A parameter that is a non-contiguous view, so its values cannot be overwritten in place.
    #[error("cannot load parameter `{name}` in place: it is a non-contiguous view of shape {shape:?}")]
    NotContiguous {
        /// The parameter's name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// An optimizer's saved state does not fit the optimizer loading it; nothing was changed.
    /// The fields list every problem at once; the message shows up to 20 of each kind.
    #[error(
        "{optimizer}: cannot load the optimizer state: {}",
        describe_optimizer_state(.missing, .unexpected, .invalid)
    )]
    OptimizerState {
        /// The optimizer that was loading (`"Adam"`, `"Sgd"`, …).
        optimizer: &'static str,
        /// Entries the optimizer needs that the state lacks, e.g. `"1.exp_avg_sq"`.
        missing: Vec<String>,
        /// Entries of the state the optimizer does not know: an unknown name, or a parameter
        /// index beyond the optimizer's parameters.
        unexpected: Vec<String>,
        /// Entries with a wrong shape or an invalid value, or given twice, each with the reason.
        invalid: Vec<String>,
    },
    /// A data file that cannot be read as a dataset: a malformed row (wrong number of fields, a
    /// label or value that is not a number, bytes that are not UTF-8), a missing column, or an
    /// unknown format (see [`crate::data::read_labelled`] and [`crate::data::read_csv`]).
    #[error("{}: {reason}", describe_location(.path, .line))]
    DataFile {
        /// The file.
        path: std::path::PathBuf,
        /// The 1-based line the problem is on (where the record starts), or `None` for a problem
        /// of the whole file.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A tokenizer vocabulary file that is corrupt, truncated or not UTF-8 (see
    /// [`crate::data::Tokenizer::load`]).
    #[error("{}: not a valid tokenizer vocabulary: {reason}", describe_location(.path, .line))]
    Vocabulary {
        /// The file.
        path: std::path::PathBuf,
        /// The 1-based line the problem is on, or `None` for a problem of the whole file.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A training history (JSON or CSV) that is corrupt, truncated or not in the format that
    /// [`crate::train::History`] writes.
    #[error("{}: not a valid training history: {reason}", describe_history_origin(.path, .line))]
    History {
        /// The file, or `None` for JSON given as a string.
        path: Option<std::path::PathBuf>,
        /// The 1-based line the problem is on, when it is known.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A model configuration (a Hugging Face `config.json`) that cannot be used: corrupt JSON,
    /// a value of the wrong type, or a setting the model does not support (see
    /// [`crate::models`]).
    #[error("{}: {reason}", describe_config_origin(.path))]
    Config {
        /// The file, or `None` for JSON given as a string.
        path: Option<std::path::PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// A tokenizer file (`tokenizer.json`) that the `tokenizers` crate cannot read (see
    /// `models::load_tokenizer`, behind the `tokenizers` feature).
    #[error("{}: not a usable tokenizer: {reason}", .path.display())]
    Tokenizer {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, as the `tokenizers` crate reports it.
        reason: String,
    },
    /// Data-parallel training could not start or could not go on (see [`crate::distributed`]):
    /// MPI is not usable, or the processes disagree (their parameters after a step, their
    /// data sizes).
    #[error("{op}: {reason}")]
    Distributed {
        /// The operation that failed, e.g. `"Mpi::init"`.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An argument outside what an operation accepts, found before any work was done: a token
    /// id beyond the vocabulary, a sequence longer than the model's positions, a temperature
    /// that is not positive (see [`crate::models::gpt2::Gpt2LMHeadModel::generate`]).
    #[error("{op}: {reason}")]
    InvalidArgument {
        /// The operation that checked.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A plot that cannot be drawn: an unsupported file extension, nothing to draw, or a
    /// failure of the drawing backend.
    #[error("cannot plot to {}: {reason}", .path.display())]
    Plot {
        /// The image file that was asked for.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// `` `path` `` for a file, or a phrase for bytes in memory, for the messages of
/// [`Error::Format`] and [`Error::DType`].
fn describe_origin(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!("`{}`", p.display()),
        None => "safetensors bytes".to_string(),
    }
}

/// `` `path`: not a valid model configuration `` or the same for JSON in memory, for the message
/// of [`Error::Config`].
fn describe_config_origin(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!("`{}`: not a usable model configuration", p.display()),
        None => "model configuration JSON: not usable".to_string(),
    }
}

/// The multi-line listing of [`Error::StateMismatch`]: names from the file are escaped and cut,
/// and each list stops after [`LIST_LIMIT`] entries with the count of all.
fn describe_state_mismatch(
    path: &Option<PathBuf>,
    missing: &[String],
    unexpected: &[String],
    mismatched: &[(String, Vec<usize>, Vec<usize>)],
    wrong_dtype: &[(String, String, String)],
) -> String {
    let origin = match path {
        Some(p) => format!("the tensors in `{}`", p.display()),
        None => "the tensors in the safetensors bytes".to_string(),
    };
    let mut s = format!("{origin} do not match the model's parameters; nothing was loaded");
    if !missing.is_empty() {
        s += &format!("\n  missing from the file ({}): {}", missing.len(), listed(missing.iter().map(|n| bare(n))));
    }
    if !unexpected.is_empty() {
        s += &format!("\n  not in the model ({}): {}", unexpected.len(), listed(unexpected.iter().map(|n| bare(n))));
    }
    let lines = |s: &mut String, entries: Vec<String>| {
        for entry in entries.iter().take(LIST_LIMIT) {
            *s += &format!("\n    {entry}");
        }
        if entries.len() > LIST_LIMIT {
            *s += &format!("\n    … ({} in all)", entries.len());
        }
    };
    if !mismatched.is_empty() {
        s += &format!("\n  wrong shape ({}):", mismatched.len());
        lines(
            &mut s,
            mismatched
                .iter()
                .map(|(name, model, file)| format!("{}: model {model:?}, file {file:?}", bare(name)))
                .collect(),
        );
    }
    if !wrong_dtype.is_empty() {
        s += &format!("\n  wrong dtype ({}):", wrong_dtype.len());
        lines(
            &mut s,
            wrong_dtype
                .iter()
                .map(|(name, model, file)| format!("{}: model {model}, file {}", bare(name), bare(file)))
                .collect(),
        );
    }
    s
}

/// `path:line` or `path` for the messages of [`Error::DataFile`] and [`Error::Vocabulary`].
fn describe_location(path: &Path, line: &Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}

/// `path:line`, `path`, or a phrase for JSON given in memory, for the message of
/// [`Error::History`].
fn describe_history_origin(path: &Option<std::path::PathBuf>, line: &Option<usize>) -> String {
    match (path, line) {
        (Some(p), Some(line)) => format!("{}:{line}", p.display()),
        (Some(p), None) => p.display().to_string(),
        (None, Some(line)) => format!("history JSON, line {line}"),
        (None, None) => "history JSON".to_string(),
    }
}

/// The body of the message of [`Error::OptimizerState`]: its non-empty lists, in order.
fn describe_optimizer_state(missing: &[String], unexpected: &[String], invalid: &[String]) -> String {
    let parts: Vec<String> = [("missing", missing), ("unexpected", unexpected), ("invalid", invalid)]
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(what, list)| format!("{what} {}", listed(list.iter().map(|entry| bare(entry)))))
        .collect();
    parts.join("; ")
}

/// How much escaped text an error message quotes from user data before cutting it, in bytes
/// (twice as much for a whole message of another library, see [`bare`]).
pub(crate) const EXCERPT_LIMIT: usize = 100;

/// How many entries an error message lists before it only counts the rest (see [`listed`]).
pub(crate) const LIST_LIMIT: usize = 20;

/// User data (a line, a field, a name, another library's message that embeds them) as an error
/// message shows it: escaped, so control bytes and invisible characters show as `\n`, `\u{1b}`,
/// …, and cut after about [`EXCERPT_LIMIT`] bytes of escaped text, in which case it is followed
/// by `… (N bytes in all)`. A 48 MB line then makes a message of a few hundred bytes, not 48 MB.
///
/// Made by [`quoted`], [`backticked`] or [`bare`]; used through `Display`, so nothing is
/// allocated for the text.
pub(crate) struct Excerpt<'a> {
    text: &'a str,
    marks: Marks,
    limit: usize,
}

/// How an [`Excerpt`] is delimited.
#[derive(Clone, Copy)]
enum Marks {
    /// `"text"`, escaped exactly as `{:?}` escapes a `str`.
    Quotes,
    /// `` `text` ``, for names; quotes and backslashes are shown as they are.
    Backticks,
    /// The text alone, escaped like a name.
    Bare,
}

/// `text` in double quotes, escaped as `{:?}` escapes it, cut if long: `"n/a"`.
pub(crate) fn quoted(text: &str) -> Excerpt<'_> {
    Excerpt { text, marks: Marks::Quotes, limit: EXCERPT_LIMIT }
}

/// `text` in backticks, for a name from a file (a column, a key, a tensor), escaped and cut like
/// [`quoted`] but with quotes and backslashes as they are: `` `age` ``.
pub(crate) fn backticked(text: &str) -> Excerpt<'_> {
    Excerpt { text, marks: Marks::Backticks, limit: EXCERPT_LIMIT }
}

/// `text` without delimiters, escaped like [`backticked`], cut after twice
/// [`EXCERPT_LIMIT`]: for an entry of a list, or a message of another library that may hold
/// user data (a JSON parser quoting a string of the file).
pub(crate) fn bare(text: &str) -> Excerpt<'_> {
    Excerpt { text, marks: Marks::Bare, limit: 2 * EXCERPT_LIMIT }
}

/// At most [`LIST_LIMIT`] items joined by `, `, then `, … (N in all)` if there are more.
pub(crate) fn listed<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let mut out = String::new();
    let mut count = 0;
    for item in items {
        if count < LIST_LIMIT {
            if count > 0 {
                out.push_str(", ");
            }
            out.push_str(&item.to_string());
        }
        count += 1;
    }
    if count > LIST_LIMIT {
        out.push_str(&format!(", … ({count} in all)"));
    }
    out
}

impl Excerpt<'_> {
    /// The length of the longest prefix whose escaped form fits in the limit.
    fn kept(&self) -> usize {
        let mut width = 0;
        for (i, c) in self.text.char_indices() {
            width += c.escape_debug().len();
            if width > self.limit {
                return i;
            }
        }
        self.text.len()
    }
}

impl std::fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        let kept = self.kept();
        let head = &self.text[..kept];
        let escaped = |f: &mut std::fmt::Formatter<'_>| -> std::fmt::Result {
            for c in head.chars() {
                if matches!(c, '"' | '\'' | '\\') {
                    f.write_char(c)?;
                } else {
                    write!(f, "{}", c.escape_debug())?;
                }
            }
            Ok(())
        };
        match self.marks {
            Marks::Quotes => write!(f, "{head:?}")?,
            Marks::Backticks => {
                f.write_char('`')?;
                escaped(f)?;
                f.write_char('`')?;
            }
            Marks::Bare => escaped(f)?,
        }
        if kept < self.text.len() {
            write!(f, "… ({} bytes in all)", self.text.len())?;
        }
        Ok(())
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_escape_and_cut_user_data() {
        assert_eq!(quoted("n/a").to_string(), "\"n/a\"");
        assert_eq!(quoted("say \"hi\"\n").to_string(), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(backticked("a\"b\\c\u{1b}[31m").to_string(), "`a\"b\\c\\u{1b}[31m`");
        assert_eq!(bare("tab\there").to_string(), "tab\\there");
        assert_eq!(
            bare(&"y".repeat(500)).to_string(),
            format!("{}… (500 bytes in all)", "y".repeat(2 * EXCERPT_LIMIT))
        );
        assert_eq!(listed(["a", "b"]), "a, b");
        assert_eq!(
            listed((0..1000).map(|i| backticked("n").to_string() + &i.to_string())).matches('`').count(),
            2 * LIST_LIMIT
        );
        assert!(listed(0..1000).ends_with("19, … (1000 in all)"));

        let long = "x".repeat(48_000_000);
        let shown = quoted(&long).to_string();
        assert_eq!(shown, format!("\"{}\"… (48000000 bytes in all)", "x".repeat(EXCERPT_LIMIT)));
        // Escapes count towards the limit, and a cut never splits a character or an escape.
        let controls = "\u{1}é".repeat(1000);
        let shown = backticked(&controls).to_string();
        assert!(shown.len() < EXCERPT_LIMIT + 40, "{shown}");
        assert!(shown.starts_with("`\\u{1}é\\u{1}é") && shown.ends_with("é`… (3000 bytes in all)"), "{shown}");
    }
}
