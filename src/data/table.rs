//! `read_csv`: numeric tables (feature columns and an optional target column) from CSV files.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::csv_quotes::{LineCounter, check_quotes};
use crate::error::{backticked, bare, listed, quoted};
use crate::{Element, Error, Result, Tensor};

/// A column of a CSV file, chosen by its header name or by its 0-based position.
///
/// Strings and integers convert into it, so the options take `"target"` or `3` alike:
///
/// ```
/// use tensorgrad::data::Column;
/// assert_eq!(Column::from("target"), Column::Name("target".to_owned()));
/// assert_eq!(Column::from(3), Column::Index(3));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    /// The column whose header field is this name (after trimming spaces). In a file without a
    /// header the columns are named by their 0-based position: `"0"`, `"1"`, …
    Name(String),
    /// The column at this 0-based position in each record.
    Index(usize),
}

impl From<&str> for Column {
    fn from(name: &str) -> Self {
        Column::Name(name.to_owned())
    }
}

impl From<String> for Column {
    fn from(name: String) -> Self {
        Column::Name(name)
    }
}

impl From<&String> for Column {
    fn from(name: &String) -> Self {
        Column::Name(name.clone())
    }
}

impl From<usize> for Column {
    fn from(index: usize) -> Self {
        Column::Index(index)
    }
}

/// How [`read_csv`] reads a file.
///
/// ```
/// use tensorgrad::data::{CsvOptions, read_csv_from_reader};
///
/// // Semicolons, a date kept as text, two chosen features in a chosen order, a target.
/// let csv = "date;temp;wind;rain;sales\n2024-01-01;3.5;10;0;120\n2024-01-02;4.0;5;1;95\n";
/// let options = CsvOptions::new()
///     .with_delimiter(b';')
///     .with_text_columns(["date"])
///     .with_features(["wind", "temp"])
///     .with_target("sales");
/// let table = read_csv_from_reader(csv.as_bytes(), "sales.csv", &options)?;
/// assert_eq!(table.feature_names(), ["wind", "temp"]);
/// assert_eq!(table.feature_row(1), Some(&[5.0, 4.0][..]));
/// assert_eq!(table.text_column("date"), Some(&["2024-01-01".to_string(), "2024-01-02".to_string()][..]));
/// assert_eq!(table.target_values(), Some(&[120.0, 95.0][..]));
/// # Ok::<(), tensorgrad::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Whether the first record is a header naming the columns (default `true`). Without one,
    /// the columns are named `"0"`, `"1"`, … and the first record is data.
    pub has_header: bool,
    /// The field separator (default `b','`; `b'\t'` for tab-separated files, `b';'`, …).
    pub delimiter: u8,
    /// The feature columns, in the order they take in [`Table::features`]; `None` (the default)
    /// means every column that is neither the target nor a text column, in file order.
    pub features: Option<Vec<Column>>,
    /// The target column, if any (default none).
    pub target: Option<Column>,
    /// Columns kept as text, not parsed as numbers (dates, ids); see [`Table::text_column`].
    pub text_columns: Vec<Column>,
    /// Read at most this many data rows (default `None`: all of them). The rows after them are
    /// not read, so they are not checked either.
    pub max_rows: Option<usize>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            has_header: true,
            delimiter: b',',
            features: None,
            target: None,
            text_columns: Vec::new(),
            max_rows: None,
        }
    }
}

impl CsvOptions {
    /// The defaults: a header, commas, every column a feature, no target, all rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the first record is a header.
    pub fn with_header(mut self, has_header: bool) -> Self {
        self.has_header = has_header;
        self
    }

    /// The field separator, e.g. `b'\t'` or `b';'`.
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The feature columns, by name or index, in the order wanted; the other columns are not
    /// read (nor checked).
    pub fn with_features<C: Into<Column>>(mut self, columns: impl IntoIterator<Item = C>) -> Self {
        self.features = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// The target column, by name or index. Unless [`with_features`](Self::with_features) says
    /// otherwise, the features are then all the other columns.
    pub fn with_target(mut self, column: impl Into<Column>) -> Self {
        self.target = Some(column.into());
        self
    }

    /// Columns to keep as text (as they are, untrimmed) instead of parsing them as numbers, by
    /// name or index.
    pub fn with_text_columns<C: Into<Column>>(mut self, columns: impl IntoIterator<Item = C>) -> Self {
        self.text_columns = columns.into_iter().map(Into::into).collect();
        self
    }

    /// Read at most `n` data rows.
    pub fn with_max_rows(mut self, n: usize) -> Self {
        self.max_rows = Some(n);
        self
    }
}

/// A numeric table read by [`read_csv`]: `f64` features (row-major), an optional target, optional
/// text columns, and the file line of every row, for error messages.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::data::{CsvOptions, read_csv_from_reader};
///
/// let csv = "x1,x2,label\n0.5,1.0,0\n1.5,2.0,1\n2.5,3.0,2\n";
/// let table = read_csv_from_reader(csv.as_bytes(), "points.csv", &CsvOptions::new().with_target("label"))?;
/// assert_eq!((table.len(), table.num_features(), table.target_name()), (3, 2, Some("label")));
///
/// // As tensors for a classifier: features [3, 2], class ids as a [3] tensor or a Vec.
/// let x: Tensor = table.features();
/// let y: Tensor = table.target().unwrap();
/// assert_eq!((x.shape(), y.shape()), (&[3, 2][..], &[3][..]));
/// assert_eq!(table.target_classes(Some(3))?, [0, 1, 2]);
/// assert_eq!(table.column("x2"), Some(vec![1.0, 2.0, 3.0]));
///
/// // Rows keep their line in the file, for errors of your own.
/// let rows = table.subset(&[2]);
/// assert_eq!(rows.row_error(0, "an outlier").to_string(), "points.csv:4: an outlier");
/// # Ok::<(), tensorgrad::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    path: PathBuf,
    feature_names: Vec<String>,
    features: Vec<f64>,
    target_name: Option<String>,
    target: Option<Vec<f64>>,
    text: Vec<(String, Vec<String>)>,
    lines: Vec<usize>,
}

impl Table {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are no rows (never the case for a table returned by [`read_csv`]).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The file the table was read from (the name given to [`read_csv_from_reader`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names of the feature columns, in the order of [`features`](Self::features).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The number of feature columns.
    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    /// The name of the target column, if one was read.
    pub fn target_name(&self) -> Option<&str> {
        self.target_name.as_deref()
    }

    /// All features, row-major: row `i` is `[i * num_features .. (i + 1) * num_features]`.
    pub fn feature_values(&self) -> &[f64] {
        &self.features
    }

    /// The features of row `i`, or `None` if `i` is out of range.
    pub fn feature_row(&self, i: usize) -> Option<&[f64]> {
        let f = self.num_features();
        if i < self.len() { self.features.get(i * f..(i + 1) * f) } else { None }
    }

    /// The target of each row, if a target column was read.
    pub fn target_values(&self) -> Option<&[f64]> {
        self.target.as_deref()
    }

    /// The values of the feature or target column `name`, or `None` if there is none.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        if let Some(j) = self.feature_names.iter().position(|n| n == name) {
            let f = self.num_features();
            return Some(self.features.iter().skip(j).step_by(f).copied().collect());
        }
        match (&self.target_name, &self.target) {
            (Some(n), Some(t)) if n == name => Some(t.clone()),
            _ => None,
        }
    }

    /// The text column `name` (one of [`CsvOptions::text_columns`]), or `None` if there is none.
    pub fn text_column(&self, name: &str) -> Option<&[String]> {
        self.text.iter().find(|(n, _)| n == name).map(|(_, values)| values.as_slice())
    }

    /// The 1-based line of the file on which row `i` starts, or `None` if `i` is out of range.
    pub fn line(&self, i: usize) -> Option<usize> {
        self.lines.get(i).copied()
    }

    /// The features as a tensor `[len, num_features]` (as `f32`, values beyond its range become
    /// infinite).
    pub fn features<E: Element>(&self) -> Tensor<E> {
        let data = self.features.iter().map(|&v| E::of(v)).collect();
        Tensor::from_vec(data, &[self.len(), self.num_features()])
    }

    /// The target as a tensor `[len]` (`.unsqueeze(1)` makes it `[len, 1]`), if a target column
    /// was read.
    pub fn target<E: Element>(&self) -> Option<Tensor<E>> {
        let target = self.target.as_ref()?;
        Some(Tensor::from_vec(target.iter().map(|&v| E::of(v)).collect(), &[target.len()]))
    }

    /// The target as class indices, for [`cross_entropy`](crate::loss::cross_entropy) and the
    /// like: every value must be a whole number `≥ 0`, and below `num_classes` if given.
    ///
    /// # Errors
    /// [`Error::DataFile`] naming the file, the line and the column of the first value that is
    /// not a class index, or (with no line) if no target column was read.
    pub fn target_classes(&self, num_classes: Option<usize>) -> Result<Vec<usize>> {
        let (Some(name), Some(target)) = (&self.target_name, &self.target) else {
            return Err(self.file_error("no target column was read: name one with `CsvOptions::with_target`"));
        };
        // Beyond 2^53 not every whole number is an f64; no class count comes near it.
        let limit = num_classes.map_or(9_007_199_254_740_992.0, |n| n as f64);
        let range = num_classes.map_or_else(|| "≥ 0".to_owned(), |n| format!("in 0..{n}"));
        target
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v >= 0.0 && v < limit && v.fract() == 0.0 {
                    Ok(v as usize)
                } else {
                    Err(self.row_error(
                        i,
                        format!("column {}: {v} is not a class index (a whole number {range})", backticked(name)),
                    ))
                }
            })
            .collect()
    }

    /// The rows at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is out of range.
    #[track_caller]
    pub fn subset(&self, indices: &[usize]) -> Table {
        let n = self.len();
        if let Some(&i) = indices.iter().find(|&&i| i >= n) {
            panic!("Table::subset: index {i} is out of range for a table of {n} rows");
        }
        let f = self.num_features();
        Table {
            path: self.path.clone(),
            feature_names: self.feature_names.clone(),
            features: indices.iter().flat_map(|&i| &self.features[i * f..(i + 1) * f]).copied().collect(),
            target_name: self.target_name.clone(),
            target: self.target.as_ref().map(|t| indices.iter().map(|&i| t[i]).collect()),
            text: self
                .text
                .iter()
                .map(|(name, v)| (name.clone(), indices.iter().map(|&i| v[i].clone()).collect()))
                .collect(),
            lines: indices.iter().map(|&i| self.lines[i]).collect(),
        }
    }

    /// An [`Error::DataFile`] about row `i`, naming the file and the row's line (no line if `i` is
    /// out of range), for checks of your own: `data.csv:7: <reason>`.
    pub fn row_error(&self, i: usize, reason: impl Into<String>) -> Error {
        Error::DataFile { path: self.path.clone(), line: self.line(i), reason: reason.into() }
    }

    /// An [`Error::DataFile`] about the whole file: `data.csv: <reason>`.
    pub fn file_error(&self, reason: impl Into<String>) -> Error {
        Error::DataFile { path: self.path.clone(), line: None, reason: reason.into() }
    }
}

/// Reads a numeric table from a CSV file: features, an optional target, optional text columns.
///
/// The file is RFC 4180 CSV (quoted fields may hold delimiters and newlines) with the
/// [`CsvOptions::delimiter`]; empty lines, a UTF-8 byte order mark and `\r` before line breaks
/// are ignored. With a header (the default), columns are chosen by name or position; without
/// one, by position or by the names `"0"`, `"1"`, …. The target and text columns are never
/// features. Numbers are parsed as `f64` after trimming spaces; columns that are not chosen are
/// not read.
///
/// Anything wrong is an [`Error::DataFile`] naming the file, the 1-based line (counting the
/// header, and where a quoted record starts) and the problem, with the column where it is about
/// one: a field that is not a finite number (`data.csv:7: column `age`: "n/a" is not a number`),
/// a record with another number of fields than the header, a quote that is never closed or text
/// after a closing quote, bytes that are not UTF-8, a column the header does not have, an empty
/// file or one without data rows. A bad file never panics.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::data::{CsvOptions, read_csv};
/// # let dir = std::env::temp_dir().join(format!("tensorgrad-doc-csv-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("flowers.csv");
/// std::fs::write(&path, "petal_length,petal_width,species\n1.4,0.2,0\n4.7,1.4,1\n5.9,2.1,2\n").unwrap();
///
/// let table = read_csv(&path, &CsvOptions::new().with_target("species"))?;
/// assert_eq!(table.feature_names(), ["petal_length", "petal_width"]);
/// let x: Tensor = table.features(); // [3, 2], f32
/// assert_eq!(x.shape(), &[3, 2]);
/// assert_eq!(table.target_classes(Some(3))?, [0, 1, 2]);
///
/// // A bad field is an error naming the file, the line and the column.
/// std::fs::write(&path, "petal_length,petal_width,species\n1.4,0.2,0\n4.7,wide,1\n").unwrap();
/// let err = read_csv(&path, &CsvOptions::new().with_target("species")).unwrap_err();
/// assert!(err.to_string().ends_with("flowers.csv:3: column `petal_width`: \"wide\" is not a number"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened or read; [`Error::DataFile`] for a malformed file,
/// as above.
pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Table> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| Error::Io { op: "open", path: path.to_path_buf(), source })?;
    read_csv_from_reader(file, path, options)
}

/// [`read_csv`] from any reader (a byte slice, a decompressor, standard input), read to its end
/// first; `name` stands for the source in error messages and in [`Table::path`].
///
/// ```
/// use tensorgrad::data::{CsvOptions, read_csv_from_reader};
///
/// // No header: columns by position; the last one is the target.
/// let csv = "0.5;1.5;3\n2.0;-1.0;7\n";
/// let options = CsvOptions::new().with_header(false).with_delimiter(b';').with_target(2);
/// let table = read_csv_from_reader(csv.as_bytes(), "inline.csv", &options)?;
/// assert_eq!(table.feature_values(), [0.5, 1.5, 2.0, -1.0]);
/// assert_eq!(table.target_values(), Some(&[3.0, 7.0][..]));
///
/// let ragged = read_csv_from_reader("1,2\n3\n".as_bytes(), "inline.csv", &CsvOptions::new().with_header(false));
/// assert_eq!(ragged.unwrap_err().to_string(), "inline.csv:2: expected 2 fields (as in the first row), found 1");
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// As [`read_csv`]; [`Error::Io`] if the reader fails.
pub fn read_csv_from_reader(mut reader: impl Read, name: impl AsRef<Path>, options: &CsvOptions) -> Result<Table> {
    let path = name.as_ref();
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|source| Error::Io { op: "read", path: path.to_path_buf(), source })?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(options.delimiter)
        .from_reader(bytes.as_slice());
    let mut lines = LineCounter::new(&bytes);
    let mut record = csv::ByteRecord::new();
    let mut layout: Option<Layout> = None;
    let mut table = Table {
        path: path.to_path_buf(),
        feature_names: Vec::new(),
        features: Vec::new(),
        target_name: None,
        target: None,
        text: Vec::new(),
        lines: Vec::new(),
    };
    let error = |line: Option<usize>, reason: String| Error::DataFile { path: path.to_path_buf(), line, reason };
    loop {
        if layout.is_some() && options.max_rows.is_some_and(|n| table.len() >= n) {
            break;
        }
        let start = csv.position().byte();
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Reading from memory, only malformed input can fail (the parser is lenient).
                let line = lines.record_line(e.position().map_or(start, |p| p.byte()));
                return Err(error(Some(line), format!("cannot parse the CSV: {}", bare(&e.to_string()))));
            }
        }
        let record_start = record.position().map_or(start, |p| p.byte());
        let line = lines.record_line(record_start);
        // The reader accepts any quoting; a quote left open or text after a closing one is an
        // error, at the line of the bad field's opening quote.
        if let Err(bad) = check_quotes(&bytes, record_start, options.delimiter) {
            return Err(error(Some(lines.line_at(bad.offset)), bad.reason));
        }
        let layout = match &layout {
            Some(layout) => layout,
            None => {
                let new = Layout::new(&record, options).map_err(|reason| error(Some(line), reason))?;
                table.feature_names = new.features.iter().map(|&c| new.names[c].clone()).collect();
                table.target_name = new.target.map(|c| new.names[c].clone());
                table.target = new.target.map(|_| Vec::new());
                table.text = new.text.iter().map(|&c| (new.names[c].clone(), Vec::new())).collect();
                let layout = layout.insert(new);
                if options.has_header {
                    continue;
                }
                layout
            }
        };
        layout.row(&record, &mut table).map_err(|reason| error(Some(line), reason))?;
        table.lines.push(line);
    }
    match layout {
        None => Err(error(None, "the file is empty".to_owned())),
        Some(_) if table.is_empty() => Err(error(
            None,
            if options.max_rows == Some(0) {
                "no data rows were read (`max_rows` is 0)".to_owned()
            } else if options.has_header {
                "the file has a header but no data rows".to_owned()
            } else {
                "the file has no data rows".to_owned()
            },
        )),
        Some(_) => Ok(table),
    }
}

/// Where the chosen columns are in each record, found from the first record.
struct Layout {
    /// The name of every column of the file.
    names: Vec<String>,
    /// How many fields every record has.
    count: usize,
    features: Vec<usize>,
    target: Option<usize>,
    text: Vec<usize>,
    /// `"the header"` or `"the first row"`, for messages.
    first: &'static str,
}

impl Layout {
    /// The layout from the first record (the header, or the first row without one).
    fn new(record: &csv::ByteRecord, options: &CsvOptions) -> Result<Layout, String> {
        let count = record.len();
        let names: Vec<String> = if options.has_header {
            let mut names = Vec::with_capacity(count);
            for (i, field) in record.iter().enumerate() {
                match std::str::from_utf8(field) {
                    Ok(s) => names.push(s.trim().to_owned()),
                    Err(e) => return Err(format!("field {} of the header is not valid UTF-8 ({e})", i + 1)),
                }
            }
            names
        } else {
            (0..count).map(|i| i.to_string()).collect()
        };
        let find = |column: &Column| -> Result<usize, String> {
            match column {
                Column::Index(i) if *i < count => Ok(*i),
                Column::Index(i) => Err(format!("there is no column {i}: the file has {count} columns (0..{count})")),
                Column::Name(name) => {
                    let mut hits = names.iter().enumerate().filter(|(_, n)| *n == name).map(|(i, _)| i);
                    match (hits.next(), hits.next()) {
                        (Some(i), None) => Ok(i),
                        (Some(_), Some(_)) => Err(format!("the header has more than one `{name}` column")),
                        (None, _) if options.has_header => Err(format!(
                            "the header has no `{name}` column (found {})",
                            listed(names.iter().map(|n| backticked(n)))
                        )),
                        (None, _) => Err(format!(
                            "there is no column `{name}`: without a header the columns are named 0..{count}"
                        )),
                    }
                }
            }
        };
        let target = options.target.as_ref().map(find).transpose()?;
        let text = options.text_columns.iter().map(find).collect::<Result<Vec<_>, _>>()?;
        let features = match &options.features {
            Some(columns) => columns.iter().map(find).collect::<Result<Vec<_>, _>>()?,
            None => (0..count).filter(|c| Some(*c) != target && !text.contains(c)).collect(),
        };
        // Every chosen column once, under a name no other chosen column has.
        let chosen: Vec<usize> = features.iter().chain(&target).chain(&text).copied().collect();
        for (k, &c) in chosen.iter().enumerate() {
            if chosen[..k].contains(&c) {
                return Err(format!(
                    "column {} is chosen twice (as a feature, the target or a text column)",
                    backticked(&names[c])
                ));
            }
            if chosen[..k].iter().any(|&d| names[d] == names[c]) {
                return Err(format!("two of the chosen columns are named {}", backticked(&names[c])));
            }
        }
        let first = if options.has_header { "the header" } else { "the first row" };
        Ok(Layout { names, count, features, target, text, first })
    }

    /// Parses the chosen fields of a data row into `table`, or says what is wrong. Nothing is
    /// added to `table` unless the whole row is good.
    fn row(&self, record: &csv::ByteRecord, table: &mut Table) -> Result<(), String> {
        if record.len() != self.count {
            return Err(format!("expected {} fields (as in {}), found {}", self.count, self.first, record.len()));
        }
        let field = |c: usize| -> Result<&str, String> {
            let bytes = record.get(c).unwrap_or_default();
            std::str::from_utf8(bytes)
                .map_err(|e| format!("column {} is not valid UTF-8 ({e})", backticked(&self.names[c])))
        };
        let number = |c: usize| -> Result<f64, String> {
            let raw = field(c)?;
            let s = raw.trim();
            if s.is_empty() {
                return Err(format!("column {} is empty", backticked(&self.names[c])));
            }
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                Ok(_) => Err(format!("column {}: {} is not a finite number", backticked(&self.names[c]), quoted(raw))),
                Err(_) => Err(format!("column {}: {} is not a number", backticked(&self.names[c]), quoted(raw))),
            }
        };
        let features = self.features.iter().map(|&c| number(c)).collect::<Result<Vec<_>, _>>()?;
        let target = self.target.map(number).transpose()?;
        let text = self.text.iter().map(|&c| field(c)).collect::<Result<Vec<_>, _>>()?;
        table.features.extend(features);
        if let (Some(values), Some(v)) = (&mut table.target, target) {
            values.push(v);
        }
        for ((_, values), s) in table.text.iter_mut().zip(text) {
            values.push(s.to_owned());
        }
        Ok(())
    }
}
