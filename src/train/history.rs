//! [`History`]: the per-epoch record of a training run, Keras's `history.history`.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
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
            // serde_json's message ends in "at line L column C"; keep it, it is the clearest.
            err(None, e.to_string())
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
                    format!("series `{name}` has {} values but `seconds` has {epochs} epochs", values.len()),
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
                        return Err(de::Error::custom(format_args!("series `{name}` is given twice")));
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
                _ => e.to_string(),
            };
            err(line, reason)
        };

        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes.as_slice());
        let header = reader.headers().map_err(csv_err)?.clone();
        if header.len() < 2 || &header[0] != "epoch" || &header[1] != "seconds" {
            let found: Vec<&str> = header.iter().take(3).collect();
            return Err(err(
                Some(1),
                format!("the header must start with `epoch,seconds`, found `{}`", found.join(",")),
            ));
        }
        let names: Vec<String> = header.iter().skip(2).map(str::to_string).collect();
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(err(Some(1), format!("series `{name}` is given twice")));
            }
        }

        let mut history = History { series: vec![Vec::new(); names.len()], names: names.clone(), seconds: Vec::new() };
        for record in reader.records() {
            let record = record.map_err(csv_err)?;
            let line = record.position().map(|p| p.line() as usize);
            let expected = history.epochs() + 1;
            let epoch = record[0].trim();
            if epoch.parse::<usize>().ok() != Some(expected) {
                return Err(err(line, format!("expected epoch {expected}, found `{epoch}`")));
            }
            let value = |column: &str, field: &str| {
                parse_value(field).ok_or_else(|| err(line, format!("column `{column}`: `{field}` is not a number")))
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
// Plot
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
    /// ```no_run
    /// # let history = tensorgrad::train::History::new();
    /// history.plot("training.png")?;
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Plot`] if the extension is neither `png` nor `svg`, the history has no epochs or
    /// nothing to plot, or drawing fails; [`Error::Io`] if the file cannot be written.
    pub fn plot(&self, path: impl AsRef<Path>) -> Result<()> {
        plot::plot(self, path.as_ref())
    }
}

#[cfg(feature = "plot")]
mod plot {
    use std::path::Path;
    use std::sync::OnceLock;

    use ab_glyph::{Font, FontRef, ScaleFont, point};
    use plotters::coord::Shift;
    use plotters::element::DashedPathElement;
    use plotters::prelude::*;
    use plotters::style::{FontStyle, register_font};
    use plotters_backend::text_anchor::{HPos, VPos};
    use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

    use super::History;
    use crate::error::{Error, Result};
    use crate::io::write_atomically;

    /// The size of one panel, in pixels.
    const PANEL: (u32, u32) = (640, 480);
    /// matplotlib's first two colours, `tab:blue` and `tab:orange`.
    const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
    const VAL_COLOR: RGBColor = RGBColor(255, 127, 14);
    /// Series with at most this many points also get a marker at each point.
    const MAX_MARKED: usize = 40;
    /// Font sizes (plotters' sizes: the pixel height of ascent − descent).
    const TITLE_SIZE: f64 = 22.0;
    const AXIS_LABEL_SIZE: f64 = 18.0;
    const TICK_SIZE: f64 = 14.0;
    const LEGEND_SIZE: f64 = 15.0;
    /// The bundled font (licence: `assets/fonts/LICENSE-DejaVu.txt`).
    static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

    /// One panel: a title, a y-axis label and up to two curves.
    struct Panel<'a> {
        title: String,
        y_label: String,
        /// (legend label, values, is validation)
        curves: Vec<(String, &'a [f64], bool)>,
    }

    pub(super) fn plot(history: &History, path: &Path) -> Result<()> {
        let fail = |reason: String| Error::Plot { path: path.to_path_buf(), reason };
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("png" | "svg")) {
            return Err(fail("unsupported file extension: use .png or .svg".to_string()));
        }
        if history.epochs() == 0 {
            return Err(fail("the history has no epochs".to_string()));
        }
        let panels = panels(history);
        if panels.is_empty() {
            return Err(fail("the history has neither a loss nor a metric to plot".to_string()));
        }
        let font = ensure_font().ok_or_else(|| fail("cannot load the bundled font".to_string()))?;

        let size = (PANEL.0 * panels.len() as u32, PANEL.1);
        let bytes = if ext.as_deref() == Some("png") {
            let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
            {
                let backend = Typeset { inner: BitMapBackend::with_buffer(&mut rgb, size), font };
                let root = backend.into_drawing_area();
                draw(&root, &panels, history.epochs()).map_err(&fail)?;
                root.present().map_err(|e| fail(e.to_string()))?;
            }
            encode_png(&rgb, size).map_err(|e| fail(format!("cannot encode the PNG: {e}")))?
        } else {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                draw(&root, &panels, history.epochs()).map_err(&fail)?;
                root.present().map_err(|e| fail(e.to_string()))?;
            }
            svg.into_bytes()
        };
        write_atomically(path, &bytes)
    }

    /// The bundled font, also registered as plotters' `sans-serif` (which plotters measures
    /// text with) unless the program registered a `sans-serif` of its own.
    fn ensure_font() -> Option<FontRef<'static>> {
        static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
        FONT.get_or_init(|| {
            let font = FontRef::try_from_slice(DEJAVU_SANS).ok()?;
            let present = ("sans-serif", 12.0).into_font().box_size("0").is_ok();
            if !present {
                register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS).ok()?;
            }
            Some(font)
        })
        .clone()
    }

    /// The loss panel and the metric panel, those that have something to show.
    fn panels(history: &History) -> Vec<Panel<'_>> {
        let mut panels = Vec::new();
        if history.get("loss").is_some() || history.get("val_loss").is_some() {
            panels.push(panel(history, "loss"));
        }
        let bases: Vec<&str> = history.names.iter().map(|n| n.strip_prefix("val_").unwrap_or(n)).collect();
        let metric = bases
            .iter()
            .find(|b| **b == "accuracy")
            .or_else(|| bases.iter().find(|b| !matches!(**b, "loss" | "lr" | "learning_rate")));
        if let Some(metric) = metric {
            panels.push(panel(history, metric));
        }
        panels
    }

    fn panel<'a>(history: &'a History, base: &str) -> Panel<'a> {
        let train = history.get(base);
        let val = history.get(&format!("val_{base}"));
        let word = base.replace('_', " ");
        let title = match (train.is_some(), val.is_some()) {
            (true, true) => format!("Training and validation {word}"),
            (true, false) => format!("Training {word}"),
            _ => format!("Validation {word}"),
        };
        let mut curves = Vec::new();
        if let Some(s) = train {
            curves.push((format!("Training {word}"), s, false));
        }
        if let Some(s) = val {
            curves.push((format!("Validation {word}"), s, true));
        }
        Panel { title, y_label: base.to_string(), curves }
    }

    fn draw<DB: DrawingBackend>(
        root: &DrawingArea<DB, Shift>,
        panels: &[Panel<'_>],
        epochs: usize,
    ) -> std::result::Result<(), String> {
        let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(text)?;
        let areas = root.split_evenly((1, panels.len()));
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, panel, epochs).map_err(text)?;
        }
        Ok(())
    }

    fn draw_panel<DB: DrawingBackend>(
        area: &DrawingArea<DB, Shift>,
        panel: &Panel<'_>,
        epochs: usize,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        // Epochs count from 1; NaN and ±∞ are left out and the other points joined.
        let points: Vec<Vec<(i64, f64)>> = panel
            .curves
            .iter()
            .map(|(_, values, _)| {
                values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, &v)| (i as i64 + 1, v)).collect()
            })
            .collect();
        let (y_lo, y_hi) = y_range(points.iter().flatten().map(|p| p.1));
        let (x_lo, x_hi) = if epochs == 1 { (0, 2) } else { (1, epochs as i64) };

        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", TITLE_SIZE))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(panel.y_label.as_str())
            .axis_desc_style(("sans-serif", AXIS_LABEL_SIZE))
            .label_style(("sans-serif", TICK_SIZE))
            .x_labels(epochs.clamp(2, 10))
            .y_labels(8)
            .y_label_formatter(&|y| format_tick(*y, y_hi - y_lo))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(TRANSPARENT)
            .draw()?;

        for ((label, _, is_val), pts) in panel.curves.iter().zip(&points) {
            let color = if *is_val { VAL_COLOR } else { TRAIN_COLOR };
            let style = color.stroke_width(2);
            if *is_val {
                chart
                    .draw_series(DashedLineSeries::new(pts.iter().copied(), 8, 5, style))?
                    .label(label.as_str())
                    .legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 24, y)], 8, 5, style));
            } else {
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), style))?
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            }
            if pts.len() <= MAX_MARKED {
                let marker = if *is_val { color.stroke_width(2) } else { color.filled() };
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, marker)))?;
            }
        }

        // Where the legend covers the fewest points of the curves, as matplotlib's "best".
        let (width, height) = chart.plotting_area().dim_in_pixel();
        let longest = panel.curves.iter().map(|c| c.0.chars().count()).max().unwrap_or(0);
        let legend_box = (
            (longest as f64 * 0.6 * LEGEND_SIZE + 60.0) / width as f64,
            (panel.curves.len() as f64 * 22.0 + 24.0) / height as f64,
        );
        let normalized: Vec<Vec<(f64, f64)>> = points
            .iter()
            .map(|pts| {
                pts.iter()
                    .map(|&(x, y)| ((x - x_lo) as f64 / (x_hi - x_lo) as f64, (y - y_lo) / (y_hi - y_lo)))
                    .collect()
            })
            .collect();
        chart
            .configure_series_labels()
            .position(legend_position(&normalized, legend_box))
            .label_font(("sans-serif", LEGEND_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .margin(10)
            .draw()?;
        Ok(())
    }

    /// The corner whose legend box (a fraction of the plot's width and height) covers the fewest
    /// points of the curves, sampled along their segments; coordinates are in `[0, 1]`, y up.
    fn legend_position(curves: &[Vec<(f64, f64)>], (w, h): (f64, f64)) -> SeriesLabelPosition {
        let corners = [
            (SeriesLabelPosition::UpperRight, 1.0 - w, 1.0 - h),
            (SeriesLabelPosition::LowerRight, 1.0 - w, 0.0),
            (SeriesLabelPosition::UpperLeft, 0.0, 1.0 - h),
            (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
        ];
        let mut samples = Vec::new();
        for curve in curves {
            samples.extend(curve.first().copied());
            for pair in curve.windows(2) {
                let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
                samples.extend((1..=16).map(|k| {
                    let t = k as f64 / 16.0;
                    (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
                }));
            }
        }
        let covered = |&(_, x, y): &(SeriesLabelPosition, f64, f64)| {
            samples.iter().filter(|&&(px, py)| px >= x && px <= x + w && py >= y && py <= y + h).count()
        };
        let best = corners.iter().min_by_key(|c| covered(c)).expect("four corners");
        best.0.clone()
    }

    /// The y range: the finite values with a 5 % margin, widened when they are all equal.
    fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo > hi {
            return (0.0, 1.0);
        }
        let span = hi - lo;
        let pad = if span > 0.0 { span * 0.05 } else { (hi.abs() * 0.05).max(0.05) };
        (lo - pad, hi + pad)
    }

    /// A y tick with as many decimals as the span of the axis needs (0.1 steps: 2 decimals).
    fn format_tick(y: f64, span: f64) -> String {
        let decimals = if span > 0.0 { (1.0 - span.log10().floor()).clamp(0.0, 8.0) as usize } else { 2 };
        format!("{y:.decimals$}")
    }

    /// Encodes 8-bit RGB pixels as a PNG.
    fn encode_png(rgb: &[u8], (width, height): (u32, u32)) -> std::result::Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
        Ok(out)
    }

    /// A bitmap backend that draws text itself. plotters' ab_glyph renderer places each glyph
    /// at the pen position without its left side bearing, so kerned pairs overlap ("Tr") and
    /// spacing is uneven; this draws every glyph at its proper place, inside the box plotters
    /// measured for the text (so layouts are unchanged), with the capitals centred in it.
    struct Typeset<B> {
        inner: B,
        font: FontRef<'static>,
    }

    impl<B: DrawingBackend> DrawingBackend for Typeset<B> {
        type ErrorType = B::ErrorType;

        fn get_size(&self) -> (u32, u32) {
            self.inner.get_size()
        }

        fn ensure_prepared(&mut self) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
            self.inner.ensure_prepared()
        }

        fn present(&mut self) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
            self.inner.present()
        }

        fn draw_pixel(
            &mut self,
            point: BackendCoord,
            color: BackendColor,
        ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
            self.inner.draw_pixel(point, color)
        }

        fn draw_line<S: plotters_backend::BackendStyle>(
            &mut self,
            from: BackendCoord,
            to: BackendCoord,
            style: &S,
        ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
            self.inner.draw_line(from, to, style)
        }

        fn draw_rect<S: plotters_backend::BackendStyle>(
            &mut self,
            upper_left: BackendCoord,
            bottom_right: BackendCoord,
            style: &S,
            fill: bool,
        ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
            self.inner.draw_rect(upper_left, bottom_right, style, fill)
        }

        fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            path: I,
            style: &S,
        ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
            self.inner.draw_path(path, style)
        }

        fn draw_circle<S: plotters_backend::BackendStyle>(
            &mut self,
            center: BackendCoord,
            radius: u32,
            style: &S,
            fill: bool,
        ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
            self.inner.draw_circle(center, radius, style, fill)
        }

        fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            vert: I,
            style: &S,
        ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
            self.inner.fill_polygon(vert, style)
        }

        fn blit_bitmap(
            &mut self,
            pos: BackendCoord,
            size: (u32, u32),
            src: &[u8],
        ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
            self.inner.blit_bitmap(pos, size, src)
        }

        fn draw_text<S: BackendTextStyle>(
            &mut self,
            text: &str,
            style: &S,
            pos: BackendCoord,
        ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
            let color = style.color();
            if color.alpha == 0.0 {
                return Ok(());
            }
            let ((x0, y0), (x1, y1)) = style.layout_box(text).map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
            let (width, height) = (x1 - x0, y1 - y0);
            let dx = match style.anchor().h_pos {
                HPos::Left => 0,
                HPos::Right => -width,
                HPos::Center => -width / 2,
            };
            let dy = match style.anchor().v_pos {
                VPos::Top => 0,
                VPos::Center => -height / 2,
                VPos::Bottom => -height,
            };
            let font = self.font.as_scaled(style.size() as f32);
            let h_glyph = font.glyph_id('H').with_scale_and_position(font.scale(), point(0.0, 0.0));
            let cap_height = font.outline_glyph(h_glyph).map_or(0.6 * font.height(), |o| -o.px_bounds().min.y);
            let baseline = (height as f32 + cap_height) / 2.0;

            let transform = style.transform();
            let (w, h) = self.inner.get_size();
            let mut pixels = Vec::new();
            let mut pen = 0.0f32;
            let mut previous = None;
            for c in text.chars() {
                let id = font.glyph_id(c);
                if let Some(p) = previous {
                    pen += font.kern(p, id);
                }
                previous = Some(id);
                let glyph = id.with_scale_and_position(font.scale(), point(pen, baseline));
                pen += font.h_advance(id);
                if let Some(outline) = font.outline_glyph(glyph) {
                    let b = outline.px_bounds();
                    outline.draw(|x, y, coverage| {
                        pixels.push((b.min.x as i32 + x as i32, b.min.y as i32 + y as i32, coverage));
                    });
                }
            }
            for (x, y, coverage) in pixels {
                if coverage <= 0.0 {
                    continue;
                }
                let (x, y) = transform.transform(x + dx, y + dy);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                    let alpha = color.alpha * f64::from(coverage.min(1.0));
                    self.inner.draw_pixel((x, y), BackendColor { alpha, rgb: color.rgb })?;
                }
            }
            Ok(())
        }
    }
}
