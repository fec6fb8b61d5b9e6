//! `read_labelled`: texts with numeric labels from TSV or CSV files.

use std::fs;
use std::path::Path;

use super::csv_quotes::{LineCounter, check_quotes};
use super::split;
use crate::error::{backticked, bare, listed, quoted};
use crate::{Error, Result};

/// The layout of a labelled text file.
///
/// ```
/// use tensorgrad::data::{Format, ReadOptions, read_labelled};
///
/// // CSV quoting: a quoted field may hold commas, newlines and doubled quotes.
/// let path = std::env::temp_dir().join(format!("tensorgrad-format-doc-{}.txt", std::process::id()));
/// std::fs::write(&path, "label,text\n1,\"Funny, \"\"warm\"\", and short.\"\n0,Dull.\n")?;
/// // The extension says nothing, so the format is given.
/// assert_eq!(Format::from_path(&path), None);
/// let data = read_labelled(&path, &ReadOptions::new().with_format(Format::Csv))?;
/// assert_eq!(data.texts, ["Funny, \"warm\", and short.", "Dull."]);
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Tab-separated, one record per line, no quoting: a `"` is an ordinary character of the
    /// text, and fields cannot contain tabs or newlines.
    Tsv,
    /// Comma-separated with RFC 4180 quoting: a field in double quotes may hold commas, newlines
    /// and doubled quotes (`""` for `"`). A quote that is never closed, or text after a closing
    /// quote, makes the row malformed. A `"` inside a field that does not start with one is
    /// text.
    Csv,
}

impl Format {
    /// The format named by the file's extension (case-insensitive): `.tsv` or `.tab` for
    /// [`Format::Tsv`], `.csv` for [`Format::Csv`]; `None` for anything else.
    ///
    /// ```
    /// use tensorgrad::data::Format;
    /// assert_eq!(Format::from_path("data/reviews.TSV"), Some(Format::Tsv));
    /// assert_eq!(Format::from_path("reviews.csv"), Some(Format::Csv));
    /// assert_eq!(Format::from_path("reviews.txt"), None);
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Option<Format> {
        let ext = path.as_ref().extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "tsv" | "tab" => Some(Format::Tsv),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    fn separator(self) -> &'static str {
        match self {
            Format::Tsv => "tab",
            Format::Csv => "comma",
        }
    }
}

/// How [`read_labelled`] reads a file.
///
/// ```
/// use tensorgrad::data::{ReadOptions, read_labelled};
///
/// // A file whose columns have other names, and one row with a label that is not a number.
/// let path = std::env::temp_dir().join(format!("tensorgrad-options-doc-{}.tsv", std::process::id()));
/// std::fs::write(&path, "id\treview\tsentiment\n1\tWarm.\t1\n2\tDull.\t0\n3\tOdd.\t?\n")?;
/// let options = ReadOptions::new().with_columns("sentiment", "review").with_skip_bad_rows(true);
/// let data = read_labelled(&path, &options)?;
/// assert_eq!(data.texts, ["Warm.", "Dull."]);
/// assert_eq!(data.labels, [1.0, 0.0]);
/// assert_eq!(data.skipped, 1);
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// The format; `None` (the default) chooses it from the file's extension.
    pub format: Option<Format>,
    /// Skip malformed rows and count them in [`TextDataset::skipped`] instead of failing
    /// (default `false`). A bad header is an error either way.
    pub skip_bad_rows: bool,
    /// The header name of the label column (default `"label"`).
    pub label_column: String,
    /// The header name of the text column (default `"text"`).
    pub text_column: String,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: None,
            skip_bad_rows: false,
            label_column: "label".to_owned(),
            text_column: "text".to_owned(),
        }
    }
}

impl ReadOptions {
    /// The defaults: format from the extension, fail on a bad row, columns `label` and `text`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the file as `format` whatever its extension.
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Whether to skip (and count) malformed rows instead of returning an error.
    pub fn with_skip_bad_rows(mut self, skip: bool) -> Self {
        self.skip_bad_rows = skip;
        self
    }

    /// The header names of the label and text columns.
    pub fn with_columns(mut self, label: impl Into<String>, text: impl Into<String>) -> Self {
        self.label_column = label.into();
        self.text_column = text.into();
        self
    }
}

/// A row that [`read_labelled`] skipped.
///
/// ```
/// use tensorgrad::data::{ReadOptions, read_labelled};
///
/// let path = std::env::temp_dir().join(format!("tensorgrad-skipped-doc-{}.tsv", std::process::id()));
/// std::fs::write(&path, "label\ttext\n1\tFine.\ngood\tNot a label.\n0\ttoo\tmany fields\n")?;
/// let data = read_labelled(&path, &ReadOptions::new().with_skip_bad_rows(true))?;
/// assert_eq!(data.texts, ["Fine."]);
/// let lines: Vec<usize> = data.skipped_rows.iter().map(|row| row.line).collect();
/// assert_eq!(lines, [3, 4]);
/// assert!(data.skipped_rows[0].reason.contains("not a number"));
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedRow {
    /// The 1-based line on which the row starts.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Texts with one numeric label each, as read by [`read_labelled`].
///
/// ```
/// use tensorgrad::data::TextDataset;
///
/// let data = TextDataset {
///     texts: (0..10).map(|i| format!("review {i}")).collect(),
///     labels: (0..10).map(|i| (i % 2) as f32).collect(),
///     ..Default::default()
/// };
/// let (train, test) = data.train_test_split(0.2, 42);
/// assert_eq!((train.len(), test.len()), (8, 2));
/// assert_eq!(data.subset(&[3, 0]).texts, ["review 3", "review 0"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TextDataset {
    /// The texts, in file order.
    pub texts: Vec<String>,
    /// The label of each text.
    pub labels: Vec<f32>,
    /// How many malformed rows were skipped (always 0 unless
    /// [`ReadOptions::skip_bad_rows`] is set).
    pub skipped: usize,
    /// The skipped rows with the reason for each, in file order.
    pub skipped_rows: Vec<SkippedRow>,
}

impl TextDataset {
    /// The number of texts.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are no texts.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The rows at `indices`, in that order (`skipped` is 0 in the result).
    ///
    /// # Panics
    /// If an index is out of range.
    #[track_caller]
    pub fn subset(&self, indices: &[usize]) -> TextDataset {
        let n = self.len();
        let mut out = TextDataset {
            texts: Vec::with_capacity(indices.len()),
            labels: Vec::with_capacity(indices.len()),
            ..TextDataset::default()
        };
        for &i in indices {
            if i >= n {
                panic!("TextDataset::subset: index {i} is out of range for a dataset of {n} rows");
            }
            out.texts.push(self.texts[i].clone());
            out.labels.push(self.labels[i]);
        }
        out
    }

    /// Shuffles the rows with `seed` and splits them into `(train, test)` datasets, as
    /// [`train_test_split`](super::train_test_split) splits indices.
    ///
    /// # Panics
    /// If `test_fraction` is not in `[0, 1]`.
    #[track_caller]
    pub fn train_test_split(&self, test_fraction: f64, seed: u64) -> (TextDataset, TextDataset) {
        let (train, test) = split::train_test_split(self.len(), test_fraction, seed);
        (self.subset(&train), self.subset(&test))
    }
}

/// Reads a labelled text file: a header naming a `label` and a `text` column (in any order,
/// other columns ignored), then one record per row.
///
/// The format is [`ReadOptions::format`], or else chosen by the extension
/// ([`Format::from_path`]): [`Format::Tsv`] has no quoting, so `"` is part of the text;
/// [`Format::Csv`] follows RFC 4180, so quoted fields may hold commas and newlines. Empty lines
/// are ignored, as are a UTF-8 byte order mark and `\r` before a line break. Texts are kept as
/// they are (no trimming); labels are parsed as `f32` after trimming spaces.
///
/// A malformed row — a wrong number of fields, a label that is not a finite number, bytes that
/// are not UTF-8, in CSV a quote that is never closed or text after a closing quote (`"fine"x`)
/// — is an error naming the file, the line where the row starts (for a quoting error, where the
/// bad field's quote opens) and the problem, e.g. `reviews.tsv:7: label "good" is not a number`;
/// with [`skip_bad_rows`](ReadOptions::skip_bad_rows) it is skipped and counted instead. After a
/// quote that is never closed, reading goes on at the next line.
///
/// ```
/// use tensorgrad::data::{ReadOptions, read_labelled};
/// # let dir = std::env::temp_dir().join(format!("tensorgrad-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("reviews.tsv");
/// std::fs::write(&path, "label\ttext\n1\tA \"great\" film.\n0\tDull.\nx\tbad row\n").unwrap();
///
/// let err = read_labelled(&path, &ReadOptions::new()).unwrap_err();
/// assert!(err.to_string().ends_with("reviews.tsv:4: label \"x\" is not a number"));
///
/// let data = read_labelled(&path, &ReadOptions::new().with_skip_bad_rows(true)).unwrap();
/// assert_eq!(data.texts, ["A \"great\" film.", "Dull."]);
/// assert_eq!(data.labels, [1.0, 0.0]);
/// assert_eq!(data.skipped, 1);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::DataFile`] for an unknown extension
/// (without [`ReadOptions::format`]), a missing or bad header, or (unless skipped) a malformed
/// row.
pub fn read_labelled(path: impl AsRef<Path>, options: &ReadOptions) -> Result<TextDataset> {
    let path = path.as_ref();
    let format = match options.format.or_else(|| Format::from_path(path)) {
        Some(format) => format,
        None => {
            return Err(Error::DataFile {
                path: path.to_path_buf(),
                line: None,
                reason: "cannot tell the format from the file name: expected a .tsv, .tab or .csv extension, \
                         or a format in the ReadOptions"
                    .to_owned(),
            });
        }
    };
    let bytes = fs::read(path).map_err(|source| Error::Io { op: "read", path: path.to_path_buf(), source })?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut reader = Reader { path, options, format, columns: None, data: TextDataset::default() };
    match format {
        Format::Tsv => {
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    continue;
                }
                let n = i + 1;
                let fields = match std::str::from_utf8(line) {
                    Ok(s) => s.split('\t').map(Field::Text).collect(),
                    Err(e) => vec![Field::Invalid(e.to_string())],
                };
                reader.record(n, fields)?;
            }
        }
        Format::Csv => {
            let mut lines = LineCounter::new(bytes);
            // Where the CSV reader starts: after a quote that is never closed, skip mode reads on
            // from the line after the quote's, with a new reader.
            let mut base = 0;
            'reading: while base < bytes.len() {
                let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&bytes[base..]);
                let mut record = csv::ByteRecord::new();
                loop {
                    let start = base as u64 + csv.position().byte();
                    match csv.read_byte_record(&mut record) {
                        Ok(true) => {}
                        Ok(false) => break 'reading,
                        Err(e) => {
                            // Reading from memory, only malformed input can fail (the parser is
                            // lenient).
                            return Err(reader.error(
                                lines.record_line(start),
                                format!("cannot parse the CSV: {}", bare(&e.to_string())),
                            ));
                        }
                    }
                    let record_start = record.position().map_or(start, |p| base as u64 + p.byte());
                    let n = lines.record_line(record_start);
                    match check_quotes(bytes, record_start, b',') {
                        Ok(()) => {}
                        Err(bad) => {
                            // Reported (and skipped) at the line of the bad field's opening quote.
                            reader.bad_record(lines.line_at(bad.offset), bad.reason)?;
                            if bad.unclosed {
                                match bytes[bad.offset..].iter().position(|&b| b == b'\n') {
                                    Some(k) => base = bad.offset + k + 1,
                                    None => base = bytes.len(),
                                }
                                continue 'reading;
                            }
                            continue;
                        }
                    }
                    let fields = record
                        .iter()
                        .map(|f| match std::str::from_utf8(f) {
                            Ok(s) => Field::Text(s),
                            Err(e) => Field::Invalid(e.to_string()),
                        })
                        .collect();
                    reader.record(n, fields)?;
                }
            }
        }
    }
    if reader.columns.is_none() {
        return Err(Error::DataFile {
            path: path.to_path_buf(),
            line: None,
            reason: format!(
                "the file is empty: expected a header with `{}` and `{}` columns",
                options.label_column, options.text_column
            ),
        });
    }
    Ok(reader.data)
}

/// A field of a record: its text, or why its bytes are not UTF-8.
enum Field<'a> {
    Text(&'a str),
    Invalid(String),
}

/// Where the label and text are in each record, and how many fields a record has.
struct Columns {
    label: usize,
    text: usize,
    count: usize,
}

/// The state of [`read_labelled`]: header first, then rows.
struct Reader<'a> {
    path: &'a Path,
    options: &'a ReadOptions,
    format: Format,
    columns: Option<Columns>,
    data: TextDataset,
}

impl Reader<'_> {
    fn error(&self, line: usize, reason: String) -> Error {
        Error::DataFile { path: self.path.to_path_buf(), line: Some(line), reason }
    }

    /// Takes the header or one row starting on line `n`.
    fn record(&mut self, n: usize, fields: Vec<Field<'_>>) -> Result<()> {
        let Some(columns) = &self.columns else {
            self.columns = Some(self.header(n, &fields)?);
            return Ok(());
        };
        match self.row(columns, &fields) {
            Ok((label, text)) => {
                self.data.labels.push(label);
                self.data.texts.push(text);
                Ok(())
            }
            Err(reason) => self.bad_record(n, reason),
        }
    }

    /// A record that cannot be read, on line `n`: an error, or skipped and counted with
    /// [`ReadOptions::skip_bad_rows`] (never the header: a bad header is always an error).
    fn bad_record(&mut self, n: usize, reason: String) -> Result<()> {
        if self.columns.is_some() && self.options.skip_bad_rows {
            self.data.skipped += 1;
            self.data.skipped_rows.push(super::SkippedRow { line: n, reason });
            Ok(())
        } else {
            Err(self.error(n, reason))
        }
    }

    fn header(&self, n: usize, fields: &[Field<'_>]) -> Result<Columns> {
        let mut names = Vec::with_capacity(fields.len());
        for field in fields {
            match field {
                Field::Text(s) => names.push(s.trim()),
                Field::Invalid(e) => return Err(self.error(n, format!("the header is not valid UTF-8 ({e})"))),
            }
        }
        let find = |wanted: &str| -> Result<usize> {
            let mut hits = names.iter().enumerate().filter(|(_, name)| **name == wanted).map(|(i, _)| i);
            match (hits.next(), hits.next()) {
                (Some(i), None) => Ok(i),
                (Some(_), Some(_)) => Err(self.error(n, format!("the header has more than one `{wanted}` column"))),
                (None, _) => Err(self.error(
                    n,
                    format!(
                        "the header has no `{wanted}` column (found {}; is this {} data?)",
                        listed(names.iter().map(|s| backticked(s))),
                        match self.format {
                            Format::Tsv => "tab-separated",
                            Format::Csv => "comma-separated",
                        }
                    ),
                )),
            }
        };
        let label = find(&self.options.label_column)?;
        let text = find(&self.options.text_column)?;
        Ok(Columns { label, text, count: names.len() })
    }

    /// The label and text of a row, or what is wrong with it.
    fn row(&self, columns: &Columns, fields: &[Field<'_>]) -> Result<(f32, String), String> {
        if let [Field::Invalid(e)] = fields {
            // A TSV line that is not UTF-8 is not split into fields.
            return Err(format!("the line is not valid UTF-8 ({e})"));
        }
        if fields.len() != columns.count {
            return Err(format!(
                "expected {} {}-separated fields, found {}",
                columns.count,
                self.format.separator(),
                fields.len()
            ));
        }
        let mut texts = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            match field {
                Field::Text(s) => texts.push(*s),
                Field::Invalid(e) => return Err(format!("field {} is not valid UTF-8 ({e})", i + 1)),
            }
        }
        let raw = texts[columns.label];
        let label = raw.trim();
        if label.is_empty() {
            return Err("the label is empty".to_owned());
        }
        let value: f32 = label.parse().map_err(|_| format!("label {} is not a number", quoted(raw)))?;
        if !value.is_finite() {
            return Err(format!("label {} is not a finite number", quoted(raw)));
        }
        Ok((value, texts[columns.text].to_owned()))
    }
}
