//! [`History`]: the per-epoch record of a training run, Keras's `history.history`.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, backticked, bare};
use crate::io::write_atomically;

/// The values a training run recorded at the end of each epoch, keyed by name (`"loss"`,
/// `"accuracy"`, `"val_loss"`, `"val_accuracy"`, `"lr"`, …), and the seconds each epoch took:
/// Keras's `history.history`.
///
/// Every series has one value per epoch. A name that was not recorded in some epoch (a
/// validation metric computed every other epoch, a metric added after a resume) holds `NaN`
/// there, so `get(name).unwrap()[i]` is always the value of epoch `i + 1`.
///
/// It saves to and loads from JSON (for programs) and CSV (for spreadsheets and pandas), and with
/// the `plot` feature draws the loss and accuracy curves to a PNG or SVG file.
///
/// Two histories are equal (`==`) when they have the same series names in the same order and
/// the same values, compared exactly: bit for bit, except that any `NaN` equals any `NaN` (so a
/// history with missing values equals itself, and its copy saved and loaded again), while `0.0`
/// and `-0.0` differ.
///
/// ```
/// use tensorgrad::train::History;
///
/// let mut history = History::new();
/// history.push_epoch(&[("loss".into(), 0.9), ("val_loss".into(), 1.0)], 1.5);
/// history.push_epoch(&[("loss".into(), 0.5), ("val_loss".into(), 0.7)], 1.4);
/// history.push_epoch(&[("loss".into(), 0.3), ("val_loss".into(), 0.8)], 1.4);
///
/// assert_eq!(history.epochs(), 3);
/// assert_eq!(history.names(), ["loss", "val_loss"]);
/// assert_eq!(history.get("loss"), Some(&[0.9, 0.5, 0.3][..]));
/// assert_eq!(history.last("val_loss"), Some(0.8));
/// assert_eq!(history.best("val_loss", true), Some((1, 0.7))); // epoch 2
///
/// let restored = History::from_json(&history.to_json())?;
/// assert_eq!(restored.get("val_loss"), history.get("val_loss"));
/// # Ok::<(), tensorgrad::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Series names, in the order they were first recorded.
    names: Vec<String>,
    /// `series[i]` is the series of `names[i]`; each has `seconds.len()` values.
    series: Vec<Vec<f64>>,
    /// Wall-clock seconds of each epoch.
    seconds: Vec<f64>,
}

/// Exact equality of values: the same bits, or both `NaN`.
fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Exact equality of two series of values (see [`same_value`]).
fn same_values(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| same_value(x, y))
}

impl PartialEq for History {
    fn eq(&self, other: &History) -> bool {
        self.names == other.names
            && same_values(&self.seconds, &other.seconds)
            && self.series.iter().zip(&other.series).all(|(a, b)| same_values(a, b))
    }
}

/// The equality is reflexive, `NaN` included.
impl Eq for History {}

impl History {
    /// An empty history: no epochs, no names.
    pub fn new() -> History {
        History::default()
    }

    /// Appends one epoch: its named values and the seconds it took.
    ///
    /// A name seen for the first time gets a new series, `NaN` for the epochs before; a known
    /// name missing from `values` gets `NaN` for this epoch. If `values` names the same series
    /// twice, the last value wins.
    ///
    /// ```
    /// use tensorgrad::train::History;
    ///
    /// let mut h = History::new();
    /// h.push_epoch(&[("loss".into(), 0.9)], 1.0);
    /// h.push_epoch(&[("loss".into(), 0.5), ("val_loss".into(), 0.6)], 1.0);
    /// assert!(h.get("val_loss").unwrap()[0].is_nan());
    /// assert_eq!(h.get("val_loss").unwrap()[1], 0.6);
    /// ```
    pub fn push_epoch(&mut self, values: &[(String, f64)], seconds: f64) {
        let epoch = self.seconds.len();
        for (name, value) in values {
            let i = match self.index(name) {
                Some(i) => i,
                None => {
                    self.names.push(name.clone());
                    self.series.push(vec![f64::NAN; epoch]);
                    self.series.len() - 1
                }
            };
            let series = &mut self.series[i];
            if series.len() == epoch {
                series.push(*value);
            } else {
                series[epoch] = *value;
            }
        }
        for series in &mut self.series {
            if series.len() == epoch {
                series.push(f64::NAN);
            }
        }
        self.seconds.push(seconds);
    }

    /// The series of `name`, one value per epoch (`NaN` where it was not recorded), or `None`
    /// for a name never recorded.
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.index(name).map(|i| self.series[i].as_slice())
    }

    /// The names of all series, in the order they were first recorded.
    pub fn names(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }

    /// The number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.seconds.len()
    }

    /// The wall-clock seconds each epoch took.
    pub fn epoch_seconds(&self) -> &[f64] {
        &self.seconds
    }

    /// The value of `name` in the last epoch — `NaN` if that epoch did not record it — or `None`
    /// for an unknown name or an empty history.
    pub fn last(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(|s| s.last().copied())
    }

    /// The best value of `name` and the index of its epoch (0-based: epoch `index + 1`): the
    /// smallest if `minimize`, else the largest. `NaN`s are skipped, and of equal values the
    /// earliest wins. `None` for an unknown name or a series of only `NaN`s.
    ///
    /// ```
    /// use tensorgrad::train::History;
    ///
    /// let mut h = History::new();
    /// for acc in [0.5, 0.8, f64::NAN, 0.8, 0.7] {
    ///     h.push_epoch(&[("val_accuracy".into(), acc)], 1.0);
    /// }
    /// assert_eq!(h.best("val_accuracy", false), Some((1, 0.8)));
    /// assert_eq!(h.best("val_accuracy", true), Some((0, 0.5)));
    /// ```
    pub fn best(&self, name: &str, minimize: bool) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        for (i, &v) in self.get(name)?.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            let better = match best {
                None => true,
                Some((_, b)) => {
                    if minimize {
                        v < b
                    } else {
                        v > b
                    }
                }
            };
            if better {
                best = Some((i, v));
            }
        }
        best
    }

    /// Appends the epochs of `later` (e.g. the history of a resumed run to that of the
    /// checkpoint it resumed from).
    ///
    /// ```
    /// use tensorgrad::train::History;
    /// let mut before = History::new();
    /// before.push_epoch(&[("loss".into(), 0.9)], 1.0);
    /// let mut after = History::new();
    /// after.push_epoch(&[("loss".into(), 0.5), ("val_loss".into(), 0.6)], 1.0);
    /// before.extend(&after);
    /// assert_eq!(before.get("loss"), Some(&[0.9, 0.5][..]));
    /// assert!(before.get("val_loss").unwrap()[0].is_nan()); // not recorded in epoch 1
    /// ```
    pub fn extend(&mut self, later: &History) {
        for e in 0..later.epochs() {
            let values: Vec<(String, f64)> =
                later.names().iter().map(|&n| (n.to_string(), later.get(n).map_or(f64::NAN, |v| v[e]))).collect();
            self.push_epoch(&values, later.epoch_seconds()[e]);
        }
    }

    /// Keeps only the first `epochs` epochs (for resuming from a checkpoint taken at that
    /// epoch); does nothing if there are not more. Every name is kept, even one whose series
    /// becomes all `NaN` or empty.
    ///
    /// ```
    /// use tensorgrad::train::History;
    /// let mut h = History::new();
    /// for loss in [0.9, 0.5, 0.4] {
    ///     h.push_epoch(&[("loss".into(), loss)], 1.0);
    /// }
    /// h.truncate(2);
    /// assert_eq!(h.get("loss"), Some(&[0.9, 0.5][..]));
    /// assert_eq!(h.epoch_seconds().len(), 2);
    /// ```
    pub fn truncate(&mut self, epochs: usize) {
        self.seconds.truncate(epochs);
        for series in &mut self.series {
            series.truncate(epochs);
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

impl History {
    /// The history as pretty-printed JSON:
    ///
    /// ```json
    /// {
    ///   "seconds": [1.5, 1.4],
    ///   "history": { "loss": [0.9, 0.5], "val_loss": [null, 0.6] }
    /// }
    /// ```
    ///
    /// `"history"` is Keras's `history.history` (series in recording order) and reads back in
    /// Python with `json.load(f)["history"]`. Finite values are written with the shortest digits
    /// that read back to the same `f64`; JSON has no `NaN` or infinities, so `NaN` is written as
    /// `null` and ±∞ as the strings `"Infinity"` and `"-Infinity"`. [`from_json`](Self::from_json)
    /// reads all of these back exactly (every `NaN` comes back as the standard `f64::NAN`).
    pub fn to_json(&self) -> String {
        let doc = JsonOut { seconds: self.seconds.iter().map(|&v| JsonF64(v)).collect(), history: SeriesOut(self) };
        serde_json::to_string_pretty(&doc).expect("serializing a History to JSON cannot fail")
    }

    /// Reads a history written by [`to_json`](Self::to_json).
    ///
    /// # Errors
    /// [`Error::History`] if the text is not JSON, lacks `"seconds"` or `"history"`, holds a
    /// value that is not a number, `null`, `"NaN"`, `"Infinity"` or `"-Infinity"`, names a
    /// series twice, or has a series whose length differs from the number of epochs.
    pub fn from_json(json: &str) -> Result<History> {
        Self::parse_json(json.as_bytes(), None)
    }

    /// Writes [`to_json`](Self::to_json) to `path`, crash-safely: to a temporary file beside it
    /// that is then renamed over `path`, so an interrupted save never leaves a truncated file.
    ///
    /// ```
    /// use tensorgrad::train::History;
    /// let mut h = History::new();
    /// h.push_epoch(&[("loss".into(), 0.9), ("val_loss".into(), f64::NAN)], 1.5);
    /// let path = std::env::temp_dir().join(format!("tensorgrad-history-doc-{}.json", std::process::id()));
    /// h.save_json(&path)?;
    /// assert_eq!(History::load_json(&path)?, h); // NaN included
    /// std::fs::remove_file(&path).ok();
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomically(path.as_ref(), self.to_json().as_bytes())
    }

    /// Reads a history saved by [`save_json`](Self::save_json).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::History`] as for
    /// [`from_json`](Self::from_json), naming the file.
    pub fn load_json(path: impl AsRef<Path>) -> Result<History> {
        let path = path.as_ref();
        let bytes = read(path)?;
        Self::parse_json(&bytes, Some(path))
    }

    fn parse_json(bytes: &[u8], path: Option<&Path>) -> Result<History> {
        let err = |line, reason| Error::History { path: path.map(Path::to_path_buf), line, reason };
        let doc: JsonIn = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json's message ends in "at line L column C"; keep it, it is the clearest
            // (cut if it quotes a long string of the file).
            err(None, bare(&e.to_string()).to_string())
        })?;
        let epochs = doc.seconds.len();
        let mut history = History {
            names: Vec::with_capacity(doc.history.0.len()),
            series: Vec::with_capacity(doc.history.0.len()),
            seconds: doc.seconds.into_iter().map(|v| v.0).collect(),
        };
        for (name, values) in doc.history.0 {
            if values.len() != epochs {
                return Err(err(
                    None,
                    format!(
                        "series {} has {} values but `seconds` has {epochs} epochs",
                        backticked(&name),
                        values.len()
                    ),
                ));
            }
            history.names.push(name);
            history.series.push(values.into_iter().map(|v| v.0).collect());
        }
        Ok(history)
    }
}

/// The JSON document as written.
#[derive(Serialize)]
struct JsonOut<'a> {
    seconds: Vec<JsonF64>,
    history: SeriesOut<'a>,
}

/// The JSON document as read; unknown fields are ignored, for files of later versions.
#[derive(Deserialize)]
struct JsonIn {
    seconds: Vec<JsonF64>,
    history: SeriesIn,
}

/// Writes the series as a JSON object in recording order.
struct SeriesOut<'a>(&'a History);

impl Serialize for SeriesOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let h = self.0;
        let mut map = serializer.serialize_map(Some(h.names.len()))?;
        for (name, series) in h.names.iter().zip(&h.series) {
            let values: Vec<JsonF64> = series.iter().map(|&v| JsonF64(v)).collect();
            map.serialize_entry(name, &values)?;
        }
        map.end()
    }
}

/// Reads a JSON object of series keeping the file's order, and rejects a name given twice.
struct SeriesIn(Vec<(String, Vec<JsonF64>)>);

impl<'de> Deserialize<'de> for SeriesIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct SeriesVisitor;
        impl<'de> Visitor<'de> for SeriesVisitor {
            type Value = SeriesIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping each series name to an array of values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<SeriesIn, A::Error> {
                let mut out: Vec<(String, Vec<JsonF64>)> = Vec::new();
                while let Some((name, values)) = map.next_entry::<String, Vec<JsonF64>>()? {
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format_args!("series {} is given twice", backticked(&name))));
                    }
                    out.push((name, values));
                }
                Ok(SeriesIn(out))
            }
        }
        deserializer.deserialize_map(SeriesVisitor)
    }
}

/// An `f64` that survives JSON: `NaN` as `null`, ±∞ as `"Infinity"` / `"-Infinity"`.
struct JsonF64(f64);

impl Serialize for JsonF64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            serializer.serialize_f64(v)
        } else if v.is_nan() {
            serializer.serialize_none()
        } else if v > 0.0 {
            serializer.serialize_str("Infinity")
        } else {
            serializer.serialize_str("-Infinity")
        }
    }
}

impl<'de> Deserialize<'de> for JsonF64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct F64Visitor;
        impl<'de> Visitor<'de> for F64Visitor {
            type Value = JsonF64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a number, null, "NaN", "Infinity" or "-Infinity""#)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<JsonF64, E> {
                Ok(JsonF64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<JsonF64, E> {
                Ok(JsonF64(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<JsonF64, E> {
                Ok(JsonF64(v as f64))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<JsonF64, E> {
                Ok(JsonF64(f64::NAN))
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<JsonF64, E> {
                Ok(JsonF64(f64::NAN))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<JsonF64, E> {
                match v {
                    "NaN" => Ok(JsonF64(f64::NAN)),
                    "Infinity" => Ok(JsonF64(f64::INFINITY)),
                    "-Infinity" => Ok(JsonF64(f64::NEG_INFINITY)),
                    _ => Err(de::Error::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(F64Visitor)
    }
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

impl History {
    /// Writes the history as CSV, one row per epoch, crash-safely like
    /// [`save_json`](Self::save_json):
    ///
    /// ```text
    /// epoch,seconds,loss,val_loss
    /// 1,1.5,0.9,NaN
    /// 2,1.4,0.5,0.6
    /// ```
    ///
    /// `epoch` counts from 1. Values are written with the shortest digits that read back to the
    /// same `f64` (in exponent form below 1e-5 and from 1e16 on), `NaN` as `NaN` and ±∞ as `inf`
    /// and `-inf`, all of which pandas' `read_csv` and [`load_csv`](Self::load_csv) read back.
    ///
    /// ```
    /// use tensorgrad::train::History;
    /// let mut h = History::new();
    /// h.push_epoch(&[("loss".into(), 0.9)], 1.5);
    /// h.push_epoch(&[("loss".into(), 0.5), ("val_loss".into(), 0.6)], 1.4);
    /// let path = std::env::temp_dir().join(format!("tensorgrad-history-doc-{}.csv", std::process::id()));
    /// h.save_csv(&path)?;
    /// let text = std::fs::read_to_string(&path).unwrap();
    /// assert_eq!(text, "epoch,seconds,loss,val_loss\n1,1.5,0.9,NaN\n2,1.4,0.5,0.6\n");
    /// assert_eq!(History::load_csv(&path)?, h);
    /// std::fs::remove_file(&path).ok();
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    pub fn save_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut w = csv::Writer::from_writer(Vec::new());
        let csv_err = |e: csv::Error| Error::Io { op: "write", path: path.to_path_buf(), source: e.into() };
        let header = ["epoch", "seconds"].into_iter().chain(self.names.iter().map(String::as_str));
        w.write_record(header).map_err(csv_err)?;
        for (epoch, &seconds) in self.seconds.iter().enumerate() {
            let row = [(epoch + 1).to_string(), format_value(seconds)]
                .into_iter()
                .chain(self.series.iter().map(|s| format_value(s[epoch])));
            w.write_record(row).map_err(csv_err)?;
        }
        let bytes = w.into_inner().map_err(|e| csv_err(e.into_error().into()))?;
        write_atomically(path, &bytes)
    }

    /// Reads a history saved by [`save_csv`](Self::save_csv). An empty field reads as `NaN`, as
    /// in pandas.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::History`] naming the file and line if
    /// the header does not start with `epoch,seconds` or names a series twice, a row has the
    /// wrong number of fields, a value is not a number, the epochs do not count 1, 2, 3, …, or
    /// the bytes are not UTF-8.
    pub fn load_csv(path: impl AsRef<Path>) -> Result<History> {
        let path = path.as_ref();
        let bytes = read(path)?;
        let err = |line: Option<usize>, reason: String| Error::History { path: Some(path.to_path_buf()), line, reason };
        let csv_err = |e: csv::Error| {
            let line = e.position().map(|p| p.line() as usize);
            let reason = match e.kind() {
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                    format!("a row has {len} fields, the header has {expected_len}")
                }
                csv::ErrorKind::Utf8 { .. } => "the file is not UTF-8".to_string(),
                _ => bare(&e.to_string()).to_string(),
            };
            err(line, reason)
        };

        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes.as_slice());
        let header = reader.headers().map_err(csv_err)?.clone();
        if header.len() < 2 || &header[0] != "epoch" || &header[1] != "seconds" {
            let found: Vec<&str> = header.iter().take(3).collect();
            return Err(err(
                Some(1),
                format!("the header must start with `epoch,seconds`, found {}", backticked(&found.join(","))),
            ));
        }
        let names: Vec<String> = header.iter().skip(2).map(str::to_string).collect();
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(err(Some(1), format!("series {} is given twice", backticked(name))));
            }
        }

        let mut history = History { series: vec![Vec::new(); names.len()], names: names.clone(), seconds: Vec::new() };
        for record in reader.records() {
            let record = record.map_err(csv_err)?;
            let line = record.position().map(|p| p.line() as usize);
            let expected = history.epochs() + 1;
            let epoch = record[0].trim();
            if epoch.parse::<usize>().ok() != Some(expected) {
                return Err(err(line, format!("expected epoch {expected}, found {}", backticked(epoch))));
            }
            let value = |column: &str, field: &str| {
                parse_value(field).ok_or_else(|| {
                    err(line, format!("column {}: {} is not a number", backticked(column), backticked(field)))
                })
            };
            history.seconds.push(value("seconds", &record[1])?);
            for (i, name) in names.iter().enumerate() {
                let v = value(name, &record[i + 2])?;
                history.series[i].push(v);
            }
        }
        Ok(history)
    }
}

/// The shortest text that parses back to `v`: plain decimals for ordinary magnitudes,
/// exponent form for very small and very large ones; `NaN`, `inf`, `-inf` otherwise.
fn format_value(v: f64) -> String {
    let a = v.abs();
    if v.is_finite() && a != 0.0 && !(1e-5..1e16).contains(&a) { format!("{v:e}") } else { format!("{v}") }
}

/// A CSV field as a value: a number (Rust's syntax, which includes `NaN`, `inf`, `infinity`
/// in any case), or `NaN` for an empty field.
fn parse_value(field: &str) -> Option<f64> {
    let field = field.trim();
    if field.is_empty() { Some(f64::NAN) } else { field.parse().ok() }
}

/// Reads a whole file, as [`Error::Io`] on failure.
fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io { op: "read", path: path.to_path_buf(), source })
}

// ---------------------------------------------------------------------------------------------
// Plot (drawn in `plot.rs`)
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "plot")]
impl History {
    /// Draws the training curves to `path`, as PNG or SVG by its extension (`.png`, `.svg`, in
    /// any case): the figure a Keras user draws with matplotlib.
    ///
    /// Two panels side by side, 1280 × 480 pixels: the loss on the left (`loss` and `val_loss`),
    /// on the right `accuracy` and `val_accuracy` — or, without accuracy, the first other metric
    /// recorded (not `lr`) and its `val_` series. Training curves are solid blue, validation
    /// curves dashed orange, over epochs counted from 1, with titles, axis labels and a legend.
    /// `NaN` and infinite values are left out and the remaining points joined, so a validation
    /// metric computed every few epochs is still a curve. Without a loss or without a metric
    /// only one panel is drawn. The text uses the DejaVu Sans font bundled with the crate, so
    /// no system font library is needed.
    ///
    /// The file is written crash-safely like [`save_json`](Self::save_json).
    ///
    /// ```
    /// use tensorgrad::train::History;
    ///
    /// let mut history = History::new();
    /// for (loss, accuracy) in [(0.7, 0.55), (0.5, 0.75), (0.4, 0.8)] {
    ///     let epoch = [("loss".to_string(), loss), ("accuracy".to_string(), accuracy)];
    ///     history.push_epoch(&epoch, 1.0);
    /// }
    /// let path = std::env::temp_dir().join(format!("tensorgrad-curves-doc-{}.svg", std::process::id()));
    /// history.plot(&path)?;
    /// assert!(std::fs::read_to_string(&path).unwrap().contains("<svg"));
    /// std::fs::remove_file(&path).ok();
    ///
    /// // Nothing to draw is an error, as is an unknown extension.
    /// assert!(History::new().plot(&path).is_err());
    /// assert!(history.plot(path.with_extension("jpg")).is_err());
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Plot`] if the extension is neither `png` nor `svg`, the history has no epochs or
    /// nothing to plot, or drawing fails; [`Error::Io`] if the file cannot be written.
    pub fn plot(&self, path: impl AsRef<Path>) -> Result<()> {
        super::plot::plot(self, path.as_ref())
    }
}
