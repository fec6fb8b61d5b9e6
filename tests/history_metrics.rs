//! `train::History` (JSON/CSV round trips, corrupt files, `best`, plots) and
//! `train::MetricState` (against hand-computed values).

use std::path::{Path, PathBuf};

use tensorgrad::train::{History, Metric, MetricState};
use tensorgrad::{Error, Tensor};

/// A fresh directory for one test's files, removed when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

fn temp_dir(test: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("tensorgrad-history-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// Values that test exactness: shortest-digit decimals, extremes, signed zero, non-finite.
const AWKWARD: [f64; 10] =
    [0.1 + 0.2, 1.0 / 3.0, -0.0, 1e-300, 5e-324, f64::MAX, -123456.789e10, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];

/// Three epochs; `val_loss` is missing in epoch 1 and `lr` appears only in epoch 3.
fn sample() -> History {
    let mut h = History::new();
    h.push_epoch(&[("loss".into(), 0.9), ("accuracy".into(), 0.5)], 1.25);
    h.push_epoch(&[("loss".into(), 0.6), ("accuracy".into(), 0.75), ("val_loss".into(), 0.7)], 1.5);
    h.push_epoch(
        &[("loss".into(), 0.4), ("accuracy".into(), 0.875), ("val_loss".into(), 0.65), ("lr".into(), 1e-3)],
        1.125,
    );
    h
}

/// A history whose one series holds every awkward value, and whose seconds do too.
fn awkward() -> History {
    let mut h = History::new();
    for (i, &v) in AWKWARD.iter().enumerate() {
        h.push_epoch(&[("x".into(), v), ("y".into(), i as f64)], v);
    }
    h
}

/// Equal as bit patterns, except that any NaN equals any NaN.
fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan())
}

fn assert_same_history(a: &History, b: &History) {
    assert_eq!(a.names(), b.names());
    assert_eq!(a.epochs(), b.epochs());
    assert!(same(a.epoch_seconds(), b.epoch_seconds()), "{:?} vs {:?}", a.epoch_seconds(), b.epoch_seconds());
    for name in a.names() {
        assert!(same(a.get(name).unwrap(), b.get(name).unwrap()), "series {name}");
    }
}

// ---------------------------------------------------------------------------------------------
// History: recording and queries
// ---------------------------------------------------------------------------------------------

#[test]
fn push_epoch_fills_missing_names_with_nan() {
    let h = sample();
    assert_eq!(h.epochs(), 3);
    assert_eq!(h.names(), ["loss", "accuracy", "val_loss", "lr"]);
    assert_eq!(h.get("loss"), Some(&[0.9, 0.6, 0.4][..]));
    assert!(same(h.get("val_loss").unwrap(), &[f64::NAN, 0.7, 0.65]));
    assert!(same(h.get("lr").unwrap(), &[f64::NAN, f64::NAN, 1e-3]));
    assert_eq!(h.epoch_seconds(), &[1.25, 1.5, 1.125]);
    assert_eq!(h.get("val_accuracy"), None);

    // A known name missing from a later epoch is NaN there; a name given twice keeps the last.
    let mut h = sample();
    h.push_epoch(&[("loss".into(), 0.3), ("loss".into(), 0.2)], 1.0);
    assert_eq!(h.get("loss").unwrap()[3], 0.2);
    assert!(h.get("accuracy").unwrap()[3].is_nan());
    assert!(h.names().iter().all(|n| h.get(n).unwrap().len() == 4));
}

#[test]
fn last_and_best() {
    let h = sample();
    assert_eq!(h.last("loss"), Some(0.4));
    assert_eq!(h.last("nope"), None);
    assert_eq!(History::new().last("loss"), None);

    assert_eq!(h.best("loss", true), Some((2, 0.4)));
    assert_eq!(h.best("loss", false), Some((0, 0.9)));
    assert_eq!(h.best("val_loss", true), Some((2, 0.65)), "the NaN of epoch 1 is skipped");
    assert_eq!(h.best("val_loss", false), Some((1, 0.7)));
    assert_eq!(h.best("nope", true), None);

    // Ties: the earliest epoch wins; a series of only NaN has no best.
    let mut h = History::new();
    for (v, w) in [(0.5, f64::NAN), (0.3, f64::NAN), (0.3, f64::NAN), (0.5, f64::NAN)] {
        h.push_epoch(&[("val_loss".into(), v), ("w".into(), w)], 1.0);
    }
    assert_eq!(h.best("val_loss", true), Some((1, 0.3)));
    assert_eq!(h.best("val_loss", false), Some((0, 0.5)));
    assert_eq!(h.best("w", true), None);
}

#[test]
fn truncate_keeps_the_first_epochs() {
    let mut h = sample();
    h.truncate(5);
    assert_eq!(h.epochs(), 3, "truncating to more epochs than recorded does nothing");
    h.truncate(2);
    assert_eq!(h.epochs(), 2);
    assert_eq!(h.epoch_seconds(), &[1.25, 1.5]);
    assert_eq!(h.get("loss"), Some(&[0.9, 0.6][..]));
    assert!(same(h.get("lr").unwrap(), &[f64::NAN, f64::NAN]), "names are kept");

    // Resuming appends after the kept epochs.
    h.push_epoch(&[("loss".into(), 0.5)], 2.0);
    assert_eq!(h.get("loss"), Some(&[0.9, 0.6, 0.5][..]));
    assert_eq!(h.last("lr").map(f64::is_nan), Some(true));
}

// ---------------------------------------------------------------------------------------------
// History: JSON
// ---------------------------------------------------------------------------------------------

#[test]
fn json_round_trip_is_exact() {
    for h in [sample(), awkward(), History::new()] {
        let back = History::from_json(&h.to_json()).unwrap();
        assert_same_history(&h, &back);
    }

    let dir = temp_dir("json");
    let path = dir.join("history.json");
    awkward().save_json(&path).unwrap();
    assert_same_history(&awkward(), &History::load_json(&path).unwrap());
    // Saving over an existing file replaces it and leaves no temporary file behind.
    sample().save_json(&path).unwrap();
    assert_same_history(&sample(), &History::load_json(&path).unwrap());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn json_is_keras_history_with_null_for_nan() {
    let json = sample().to_json();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let history = doc["history"].as_object().unwrap();
    assert_eq!(history["loss"], serde_json::json!([0.9, 0.6, 0.4]));
    assert_eq!(history["val_loss"], serde_json::json!([null, 0.7, 0.65]));
    assert_eq!(doc["seconds"], serde_json::json!([1.25, 1.5, 1.125]));
    // Series keep their recording order in the text.
    let pos = |k: &str| json.find(&format!("\"{k}\"")).unwrap();
    assert!(pos("loss") < pos("accuracy") && pos("accuracy") < pos("val_loss") && pos("val_loss") < pos("lr"));

    // ±∞ are strings; "NaN" is read as well as null.
    let json = awkward().to_json();
    assert!(json.contains("\"Infinity\"") && json.contains("\"-Infinity\"") && json.contains("null"));
    let h = History::from_json(r#"{"seconds": [1, 2], "history": {"a": ["NaN", -3]}}"#).unwrap();
    assert!(same(h.get("a").unwrap(), &[f64::NAN, -3.0]));
    assert_eq!(h.epoch_seconds(), &[1.0, 2.0]);
}

#[test]
fn corrupt_json_is_an_error() {
    let cases = [
        ("empty", ""),
        ("not JSON", "loss,val_loss\n0.1,0.2\n"),
        ("truncated", r#"{"seconds": [1.0, 2.0], "history": {"loss": [0.5, 0.4"#),
        ("missing history", r#"{"seconds": [1.0]}"#),
        ("missing seconds", r#"{"history": {"loss": [0.5]}}"#),
        ("not an object", "[1, 2, 3]"),
        ("value not a number", r#"{"seconds": [1.0], "history": {"loss": [true]}}"#),
        ("unknown string", r#"{"seconds": [1.0], "history": {"loss": ["0.5"]}}"#),
        ("series not an array", r#"{"seconds": [1.0], "history": {"loss": 0.5}}"#),
        ("short series", r#"{"seconds": [1.0, 2.0], "history": {"loss": [0.5]}}"#),
        ("long series", r#"{"seconds": [1.0], "history": {"loss": [0.5, 0.4]}}"#),
        ("duplicate name", r#"{"seconds": [1.0], "history": {"loss": [0.5], "loss": [0.4]}}"#),
    ];
    for (what, text) in cases {
        match History::from_json(text) {
            Err(Error::History { path: None, reason, .. }) => assert!(!reason.is_empty(), "{what}"),
            other => panic!("{what}: expected Error::History, got {other:?}"),
        }
    }

    let dir = temp_dir("json-corrupt");
    let path = dir.join("history.json");
    let mut bytes = sample().to_json().into_bytes();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, &bytes).unwrap();
    match History::load_json(&path) {
        Err(e @ Error::History { path: Some(_), .. }) => assert!(e.to_string().contains("history.json"), "{e}"),
        other => panic!("expected Error::History naming the file, got {other:?}"),
    }
    std::fs::write(&path, b"\xff\xfe{}").unwrap();
    assert!(matches!(History::load_json(&path), Err(Error::History { .. })));
    assert!(matches!(History::load_json(dir.join("missing.json")), Err(Error::Io { .. })));
}

// ---------------------------------------------------------------------------------------------
// History: CSV
// ---------------------------------------------------------------------------------------------

#[test]
fn csv_round_trip_is_exact() {
    let dir = temp_dir("csv");
    let path = dir.join("history.csv");
    for h in [sample(), awkward(), History::new()] {
        h.save_csv(&path).unwrap();
        assert_same_history(&h, &History::load_csv(&path).unwrap());
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left");
}

#[test]
fn csv_layout() {
    let dir = temp_dir("csv-layout");
    let path = dir.join("history.csv");
    sample().save_csv(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "epoch,seconds,loss,accuracy,val_loss,lr\n\
         1,1.25,0.9,0.5,NaN,NaN\n\
         2,1.5,0.6,0.75,0.7,NaN\n\
         3,1.125,0.4,0.875,0.65,0.001\n"
    );

    awkward().save_csv(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let x: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').nth(2).unwrap()).collect();
    assert_eq!(
        x,
        [
            "0.30000000000000004",
            "0.3333333333333333",
            "-0",
            "1e-300",
            "5e-324",
            "1.7976931348623157e308",
            "-1234567890000000",
            "inf",
            "-inf",
            "NaN"
        ]
    );

    // Empty fields (as pandas writes NaN) read as NaN; a header-only file has no epochs.
    std::fs::write(&path, "epoch,seconds,loss,val_loss\n1,2.5,0.5,\n2,,0.25,0.125\n").unwrap();
    let h = History::load_csv(&path).unwrap();
    assert!(same(h.get("val_loss").unwrap(), &[f64::NAN, 0.125]));
    assert!(same(h.epoch_seconds(), &[2.5, f64::NAN]));
    std::fs::write(&path, "epoch,seconds,loss\n").unwrap();
    let h = History::load_csv(&path).unwrap();
    assert_eq!((h.epochs(), h.names()), (0, vec!["loss"]));
}

#[test]
fn corrupt_csv_is_an_error() {
    let dir = temp_dir("csv-corrupt");
    let path = dir.join("history.csv");
    let cases: [(&str, &[u8], Option<usize>); 9] = [
        ("empty", b"", None),
        ("wrong header", b"loss,val_loss\n0.5,0.6\n", Some(1)),
        ("header without seconds", b"epoch,loss\n1,0.5\n", Some(1)),
        ("duplicate name", b"epoch,seconds,loss,loss\n1,1,0.5,0.5\n", Some(1)),
        ("missing field", b"epoch,seconds,loss\n1,1.0,0.5\n2,1.0\n", Some(3)),
        ("extra field", b"epoch,seconds,loss\n1,1.0,0.5,0.7\n", Some(2)),
        ("not a number", b"epoch,seconds,loss\n1,1.0,abc\n", Some(2)),
        ("epochs out of order", b"epoch,seconds,loss\n1,1.0,0.5\n3,1.0,0.4\n", Some(3)),
        ("not UTF-8", b"epoch,seconds,loss\n1,1.0,\xff\xfe\n", Some(2)),
    ];
    for (what, bytes, line) in cases {
        std::fs::write(&path, bytes).unwrap();
        match History::load_csv(&path) {
            Err(e @ Error::History { .. }) => {
                let Error::History { path: Some(p), line: l, .. } = &e else { unreachable!() };
                assert_eq!(p, &path, "{what}");
                if line.is_some() {
                    assert_eq!(*l, line, "{what}: {e}");
                }
                assert!(e.to_string().contains("history.csv"), "{what}: {e}");
            }
            other => panic!("{what}: expected Error::History, got {other:?}"),
        }
    }
    assert!(matches!(History::load_csv(dir.join("missing.csv")), Err(Error::Io { .. })));

    // A file cut off in the middle of a row.
    sample().save_csv(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() - 12]).unwrap();
    assert!(matches!(History::load_csv(&path), Err(Error::History { .. })));
}

#[test]
fn history_equality_is_exact_with_nan_equal_to_nan() {
    // Issue 12: `History` is comparable. `sample()` has NaN (missing values), so a derived
    // `f64` comparison would make it unequal to itself.
    let h = sample();
    assert_eq!(h, h.clone());
    assert_eq!(awkward(), awkward());
    assert_eq!(History::from_json(&h.to_json()).unwrap(), h);
    let dir = temp_dir("equality");
    let path = dir.as_ref().join("h.csv");
    awkward().save_csv(&path).unwrap();
    assert_eq!(History::load_csv(&path).unwrap(), awkward());

    // A value, a second count, a name, the order of names, one more epoch: all differ.
    let mut other = History::new();
    other.push_epoch(&[("loss".into(), 0.9), ("accuracy".into(), 0.5)], 1.25);
    let mut same_start = History::new();
    same_start.push_epoch(&[("loss".into(), 0.9), ("accuracy".into(), 0.5)], 1.25);
    assert_eq!(other, same_start);
    let variants = [
        vec![("loss".into(), 0.9000000000000001), ("accuracy".into(), 0.5)],
        vec![("loss".into(), 0.9), ("acc".into(), 0.5)],
        vec![("accuracy".into(), 0.5), ("loss".into(), 0.9)],
        vec![("loss".into(), 0.9)],
    ];
    for values in variants {
        let mut v = History::new();
        v.push_epoch(&values, 1.25);
        assert_ne!(v, other, "{values:?}");
    }
    let mut slower = History::new();
    slower.push_epoch(&[("loss".into(), 0.9), ("accuracy".into(), 0.5)], 1.5);
    assert_ne!(slower, other);
    let mut zero = History::new();
    zero.push_epoch(&[("loss".into(), 0.0)], 1.0);
    let mut negative_zero = History::new();
    negative_zero.push_epoch(&[("loss".into(), -0.0)], 1.0);
    assert_ne!(zero, negative_zero);
    same_start.push_epoch(&[], 1.0);
    assert_ne!(same_start, other);
    assert_ne!(History::new(), other);
}

#[test]
fn history_errors_quote_a_short_escaped_excerpt() {
    // Issue 12: errors quoted whole fields, names and strings of the file.
    let dir = temp_dir("huge");
    let huge = "9x\u{1b}".repeat(1 << 20);
    let path = dir.as_ref().join("history.csv");
    std::fs::write(&path, format!("epoch,seconds,loss\n1,1.0,{huge}\n")).unwrap();
    let msg = History::load_csv(&path).unwrap_err().to_string();
    assert!(
        msg.len() < 400 && msg.contains("history.csv:2: not a valid training history: column `loss`: `9x\\u{1b}9x"),
        "{msg}"
    );
    assert!(msg.ends_with("… (3145728 bytes in all) is not a number"), "{msg}");
    std::fs::write(&path, format!("epoch,seconds,{huge},{huge}\n")).unwrap();
    let msg = History::load_csv(&path).unwrap_err().to_string();
    assert!(
        msg.len() < 400
            && msg.contains(":1: not a valid training history: series `9x\\u{1b}")
            && msg.ends_with("is given twice"),
        "{msg}"
    );
    // serde_json quotes the offending string; the message keeps only its start.
    let json_huge = huge.replace('\u{1b}', "\\u001b");
    let msg =
        History::from_json(&format!("{{\"seconds\": [\"{json_huge}\"], \"history\": {{}}}}")).unwrap_err().to_string();
    assert!(msg.len() < 400 && msg.contains("bytes in all)") && msg.contains("9x\\u{1b}"), "{msg}");
    assert!(!msg.contains('\u{1b}'), "{msg:?}");
}

// ---------------------------------------------------------------------------------------------
// History: plots
// ---------------------------------------------------------------------------------------------

/// Twenty epochs of plausible curves; validation is computed every epoch.
#[cfg(feature = "plot")]
fn curves() -> History {
    let mut h = History::new();
    for e in 0..20 {
        let t = e as f64;
        h.push_epoch(
            &[
                ("loss".into(), 0.7 * (-t / 6.0).exp() + 0.05),
                ("accuracy".into(), 1.0 - 0.5 * (-t / 5.0).exp()),
                ("val_loss".into(), 0.65 * (-t / 8.0).exp() + 0.12 + 0.004 * t),
                ("val_accuracy".into(), 0.95 - 0.45 * (-t / 6.0).exp()),
                ("lr".into(), 1e-3),
            ],
            1.0,
        );
    }
    h
}

/// Decodes a PNG into (width, height, RGB pixels).
#[cfg(feature = "plot")]
fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let pixels = buf[..info.buffer_size()].chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
    (info.width, info.height, pixels)
}

#[cfg(feature = "plot")]
#[test]
fn plot_png_is_written_and_decodes() {
    let dir = temp_dir("png");
    let path = dir.join("curves.PNG");
    curves().plot(&path).unwrap();
    let (w, h, pixels) = decode_png(&path);
    assert_eq!((w, h), (1280, 480), "two 640 × 480 panels");
    assert_eq!(pixels.len(), (w * h) as usize);

    let count = |f: &dyn Fn(&[u8; 3]) -> bool| pixels.iter().filter(|p| f(p)).count();
    let white = count(&|p| *p == [255, 255, 255]);
    assert!(white > pixels.len() / 2 && white < pixels.len(), "mostly white background, not blank");
    // Training curves in matplotlib's blue, validation in its orange.
    assert!(count(&|p| *p == [31, 119, 180]) > 500, "no training curve");
    assert!(count(&|p| *p == [255, 127, 14]) > 500, "no validation curve");
    // Text: dark pixels in the title band above the plots, in both panels.
    for panel in 0..2 {
        let title_ink = (0..40)
            .flat_map(|y| (panel * 640 + 100..panel * 640 + 540).map(move |x| (x, y)))
            .filter(|&(x, y)| pixels[(y * w + x) as usize].iter().all(|&c| c < 100))
            .count();
        assert!(title_ink > 150, "panel {panel}: the title is not drawn ({title_ink} dark pixels)");
    }
}

#[cfg(feature = "plot")]
#[test]
fn plot_svg_has_labels_and_legend() {
    let dir = temp_dir("svg");
    let path = dir.join("curves.svg");
    curves().plot(&path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for text in [
        "Training and validation loss",
        "Training and validation accuracy",
        "Training loss",
        "Validation loss",
        "Training accuracy",
        "Validation accuracy",
        "epoch",
        "loss",
        "accuracy",
    ] {
        assert!(svg.contains(&format!("\n{text}\n")), "no text {text:?}");
    }
    assert!(!svg.contains("\nlr\n"), "the learning rate is not a metric panel");
    assert!(svg.contains("#1F77B4") && svg.contains("#FF7F0E"), "curve colours");
}

#[cfg(feature = "plot")]
#[test]
fn plot_other_metric_sparse_validation_and_single_panel() {
    let dir = temp_dir("plot-cases");
    // No accuracy: the first other metric (not lr) is plotted; validation every other epoch.
    let mut h = History::new();
    for e in 0..7 {
        let val = |v: f64| if e % 2 == 1 { v } else { f64::NAN };
        h.push_epoch(
            &[
                ("loss".into(), 1.0 / (e + 1) as f64),
                ("lr".into(), 0.1),
                ("auc".into(), 0.5 + 0.05 * e as f64),
                ("val_loss".into(), val(1.2 / (e + 1) as f64)),
                ("val_auc".into(), val(0.45 + 0.05 * e as f64)),
            ],
            1.0,
        );
    }
    let svg_path = dir.join("auc.svg");
    h.plot(&svg_path).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("\nTraining and validation auc\n") && svg.contains("\nValidation auc\n"));
    h.plot(dir.join("auc.png")).unwrap();

    // Only a loss, one epoch: one panel.
    let mut h = History::new();
    h.push_epoch(&[("loss".into(), 0.5)], 1.0);
    h.plot(dir.join("one.png")).unwrap();
    let (w, h_px, _) = decode_png(&dir.join("one.png"));
    assert_eq!((w, h_px), (640, 480));
    // Infinite and NaN values are left out rather than breaking the plot.
    let mut h = History::new();
    for v in [f64::INFINITY, 0.5, f64::NAN, 0.25] {
        h.push_epoch(&[("loss".into(), v), ("accuracy".into(), f64::NAN)], 1.0);
    }
    h.plot(dir.join("gaps.png")).unwrap();
}

#[cfg(feature = "plot")]
#[test]
fn plot_errors() {
    let dir = temp_dir("plot-errors");
    let err = curves().plot(dir.join("curves.jpg")).unwrap_err();
    assert!(matches!(err, Error::Plot { .. }) && err.to_string().contains(".png or .svg"), "{err}");
    assert!(matches!(curves().plot(dir.join("curves")), Err(Error::Plot { .. })));
    assert!(matches!(History::new().plot(dir.join("empty.png")), Err(Error::Plot { .. })));
    let mut only_lr = History::new();
    only_lr.push_epoch(&[("lr".into(), 0.1)], 1.0);
    assert!(matches!(only_lr.plot(dir.join("lr.svg")), Err(Error::Plot { .. })));
    assert!(matches!(curves().plot(dir.join("no-such-dir").join("c.png")), Err(Error::Io { .. })));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing is written on error");
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/// Binary predictions and targets used below. With threshold 0.5:
/// predicted positive: 0, 2, 4, 6 — actual positive: 0, 3, 4, 6, 7
/// TP = {0, 4, 6} = 3, FP = {2} = 1, FN = {3, 7} = 2, TN = {1, 5} = 2.
const PRED: [f32; 8] = [0.9, 0.2, 0.6, 0.4, 0.7, 0.1, 0.55, 0.3];
const TARGET: [f32; 8] = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];

fn result_of(metric: Metric, pred: &Tensor, target: &Tensor) -> f64 {
    let mut state = MetricState::new(metric);
    state.update(pred, target);
    state.result()
}

#[test]
fn metric_names() {
    let names: Vec<&str> = [Metric::Accuracy, Metric::Precision, Metric::Recall, Metric::F1, Metric::Auc]
        .iter()
        .map(Metric::name)
        .collect();
    assert_eq!(names, ["accuracy", "precision", "recall", "f1", "auc"]);
    assert_eq!(Metric::F1.to_string(), "f1");
    assert_eq!(MetricState::new(Metric::Recall).metric(), Metric::Recall);
}

#[test]
fn binary_metrics_match_hand_computed_values() {
    for shape in [&[8][..], &[8, 1]] {
        let pred = Tensor::from_vec(PRED.to_vec(), shape);
        let target = Tensor::from_vec(TARGET.to_vec(), shape);
        // correct: TP + TN = 5 of 8.
        assert_eq!(result_of(Metric::Accuracy, &pred, &target), 5.0 / 8.0);
        // TP / (TP + FP) = 3 / 4.
        assert_eq!(result_of(Metric::Precision, &pred, &target), 0.75);
        // TP / (TP + FN) = 3 / 5.
        assert_eq!(result_of(Metric::Recall, &pred, &target), 0.6);
        // 2·P·R / (P + R) = 2 · 0.75 · 0.6 / 1.35 = 2 / 3.
        assert!((result_of(Metric::F1, &pred, &target) - 2.0 / 3.0).abs() < 1e-15);
    }
    // [N] predictions against [N, 1] targets are accepted too.
    let pred = Tensor::from_vec(PRED.to_vec(), &[8]);
    assert_eq!(result_of(Metric::Accuracy, &pred, &Tensor::from_vec(TARGET.to_vec(), &[8, 1])), 0.625);
}

#[test]
fn binary_threshold_and_degenerate_cases() {
    // 0.5 itself is a negative (Keras: y_pred > threshold).
    let pred = Tensor::from_vec(vec![0.5f32, 0.5], &[2]);
    let target = Tensor::from_vec(vec![0.0f32, 1.0], &[2]);
    assert_eq!(result_of(Metric::Accuracy, &pred, &target), 0.5);
    // Nothing predicted positive: precision 0 (Keras), recall 0, F1 0.
    assert_eq!(result_of(Metric::Precision, &pred, &target), 0.0);
    assert_eq!(result_of(Metric::Recall, &pred, &target), 0.0);
    assert_eq!(result_of(Metric::F1, &pred, &target), 0.0);
    // No positives at all: recall 0.
    let neg = Tensor::from_vec(vec![0.0f32, 0.0], &[2]);
    assert_eq!(result_of(Metric::Recall, &Tensor::from_vec(vec![0.9f32, 0.1], &[2]), &neg), 0.0);
    // Smoothed labels count as their nearest class.
    let smooth = Tensor::from_vec(vec![0.9f32, 0.1], &[2]);
    assert_eq!(result_of(Metric::Accuracy, &Tensor::from_vec(vec![0.8f32, 0.3], &[2]), &smooth), 1.0);
    // No samples: accuracy and AUC are undefined, precision follows Keras.
    let state = MetricState::new(Metric::Accuracy);
    assert!(state.result().is_nan());
    assert!(MetricState::new(Metric::Auc).result().is_nan());
    assert_eq!(MetricState::new(Metric::Precision).result(), 0.0);
}

#[test]
fn multiclass_accuracy() {
    // Row arg-maxes: 1, 0, 2, 0 (a tie goes to the first); targets 1, 0, 1, 1 → 2 of 4.
    let pred = Tensor::from_vec(vec![0.1f32, 0.7, 0.2, 0.8, 0.1, 0.1, 0.3, 0.3, 0.4, 0.5, 0.5, 0.0], &[4, 3]);
    let ids = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 1.0], &[4]);
    assert_eq!(result_of(Metric::Accuracy, &pred, &ids), 0.5);
    assert_eq!(result_of(Metric::Accuracy, &pred, &ids.reshape(&[4, 1])), 0.5);
    // One-hot targets give the same answer.
    let one_hot = Tensor::from_vec(vec![0.0f32, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0], &[4, 3]);
    assert_eq!(result_of(Metric::Accuracy, &pred, &one_hot), 0.5);
    // Logits work as well as probabilities, and f64 as well as f32.
    let logits = Tensor::from_vec(vec![-1.0f64, 3.0, 2.0, 0.5], &[2, 2]);
    let mut state = MetricState::new(Metric::Accuracy);
    state.update(&logits, &Tensor::from_vec(vec![1.0f64, 0.0], &[2]));
    assert_eq!(state.result(), 1.0);
}

#[test]
fn sparse_and_one_hot_categorical_accuracy_under_keras_names() {
    let pred = Tensor::from_vec(vec![0.1f32, 0.7, 0.2, 0.8, 0.1, 0.1, 0.3, 0.3, 0.4, 0.5, 0.5, 0.0], &[4, 3]);
    let ids = Tensor::from_vec(vec![1.0f32, 0.0, 2.0, 1.0], &[4]);
    // Arg-maxes 1, 0, 2, 0 against 1, 0, 2, 1: 3 of 4.
    assert_eq!(result_of(Metric::SparseCategoricalAccuracy, &pred, &ids), 0.75);
    assert_eq!(result_of(Metric::SparseCategoricalAccuracy, &pred, &ids.reshape(&[4, 1])), 0.75);
    // Smoothed one-hot rows: the arg-max of the target row is the class.
    let smoothed = Tensor::from_vec(vec![0.1f32, 0.8, 0.1, 0.8, 0.1, 0.1, 0.1, 0.1, 0.8, 0.1, 0.8, 0.1], &[4, 3]);
    assert_eq!(result_of(Metric::CategoricalAccuracy, &pred, &smoothed), 0.75);
    assert_eq!(Metric::SparseCategoricalAccuracy.name(), "sparse_categorical_accuracy");
    assert_eq!(Metric::CategoricalAccuracy.to_string(), "categorical_accuracy");
    assert!(MetricState::new(Metric::CategoricalAccuracy).result().is_nan());
}

#[test]
#[should_panic(
    expected = "metric sparse_categorical_accuracy: needs predictions of shape [N, C] and targets of shape [4] or [4, 1] (class ids); got predictions [4, 3] and targets [4, 3]"
)]
fn sparse_categorical_accuracy_refuses_one_hot_targets() {
    let pred = Tensor::<f32>::zeros(&[4, 3]);
    result_of(Metric::SparseCategoricalAccuracy, &pred, &Tensor::zeros(&[4, 3]));
}

#[test]
#[should_panic(
    expected = "metric categorical_accuracy: needs predictions of shape [N, C] and targets of shape [4, 3] (one-hot rows); got predictions [4, 3] and targets [4]"
)]
fn categorical_accuracy_refuses_class_ids() {
    let pred = Tensor::<f32>::zeros(&[4, 3]);
    result_of(Metric::CategoricalAccuracy, &pred, &Tensor::zeros(&[4]));
}

#[test]
#[should_panic(expected = "metric sparse_categorical_accuracy: target 1 is 3, not a class id in 0..3")]
fn sparse_categorical_accuracy_refuses_an_id_out_of_range() {
    let pred = Tensor::<f32>::zeros(&[2, 3]);
    result_of(Metric::SparseCategoricalAccuracy, &pred, &Tensor::from_vec(vec![0.0, 3.0], &[2]));
}

#[test]
fn auc_with_ties_is_the_mann_whitney_statistic() {
    // Positives score 0.35, 0.8, 0.4; negatives 0.1, 0.4, 0.7. Over the 9 (positive, negative)
    // pairs, a positive scoring higher counts 1 and a tie ½:
    //   0.35 beats 0.1                → 1
    //   0.8  beats 0.1, 0.4, 0.7      → 3
    //   0.4  beats 0.1, ties 0.4      → 1.5
    // AUC = 5.5 / 9.
    let pred = Tensor::from_vec(vec![0.1f32, 0.4, 0.35, 0.8, 0.4, 0.7], &[6, 1]);
    let target = Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 1.0, 1.0, 0.0], &[6, 1]);
    let auc = result_of(Metric::Auc, &pred, &target);
    assert!((auc - 5.5 / 9.0).abs() < 1e-15, "{auc}");

    // Perfect and reversed rankings, all-tied scores, one class only, a NaN score.
    let t = Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 1.0], &[4]);
    assert_eq!(result_of(Metric::Auc, &Tensor::from_vec(vec![0.1f32, 0.2, 0.3, 0.9], &[4]), &t), 1.0);
    assert_eq!(result_of(Metric::Auc, &Tensor::from_vec(vec![0.9f32, 0.8, 0.3, 0.2], &[4]), &t), 0.0);
    assert_eq!(result_of(Metric::Auc, &Tensor::from_vec(vec![0.5f32; 4], &[4]), &t), 0.5);
    let ones = Tensor::from_vec(vec![1.0f32; 4], &[4]);
    assert!(result_of(Metric::Auc, &Tensor::from_vec(vec![0.1f32, 0.2, 0.3, 0.9], &[4]), &ones).is_nan());
    assert!(result_of(Metric::Auc, &Tensor::from_vec(vec![0.1f32, f32::NAN, 0.3, 0.9], &[4]), &t).is_nan());

    // Hand-computed AUC again on the PRED/TARGET set: positives 0.9, 0.4, 0.7, 0.55, 0.3 against
    // negatives 0.2, 0.6, 0.1: 0.9 → 3, 0.4 → 2, 0.7 → 3, 0.55 → 2, 0.3 → 2; 12 / 15.
    let auc = result_of(Metric::Auc, &Tensor::from_vec(PRED.to_vec(), &[8]), &Tensor::from_vec(TARGET.to_vec(), &[8]));
    assert!((auc - 12.0 / 15.0).abs() < 1e-15, "{auc}");
}

#[test]
fn streaming_over_two_batches_equals_one_batch() {
    let all_pred = Tensor::from_vec(PRED.to_vec(), &[8, 1]);
    let all_target = Tensor::from_vec(TARGET.to_vec(), &[8, 1]);
    for metric in [Metric::Accuracy, Metric::Precision, Metric::Recall, Metric::F1, Metric::Auc] {
        let whole = result_of(metric, &all_pred, &all_target);
        let mut state = MetricState::new(metric);
        state.update(&all_pred.narrow(0, 0, 3), &all_target.narrow(0, 0, 3));
        state.update(&all_pred.narrow(0, 3, 5), &all_target.narrow(0, 3, 5));
        assert_eq!(state.result(), whole, "{metric}");

        // After a reset only what follows counts.
        state.reset();
        state.update(&all_pred.narrow(0, 0, 3), &all_target.narrow(0, 0, 3));
        assert_eq!(state.result(), result_of(metric, &all_pred.narrow(0, 0, 3), &all_target.narrow(0, 0, 3)));
    }

    // Multi-class, and an empty batch changes nothing.
    let pred = Tensor::from_vec(vec![0.1f32, 0.7, 0.2, 0.8, 0.1, 0.1, 0.3, 0.3, 0.4, 0.5, 0.5, 0.0], &[4, 3]);
    let ids = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 1.0], &[4]);
    let mut state = MetricState::new(Metric::Accuracy);
    state.update(&pred.narrow(0, 0, 1), &ids.narrow(0, 0, 1));
    state.update(&pred.narrow(0, 1, 0), &ids.narrow(0, 1, 0));
    state.update(&pred.narrow(0, 1, 3), &ids.narrow(0, 1, 3));
    assert_eq!(state.result(), 0.5);
}

#[test]
#[should_panic(expected = "metric precision is binary-only")]
fn binary_only_metrics_reject_multiclass_predictions() {
    let pred = Tensor::from_vec(vec![0.1f32, 0.9, 0.8, 0.2], &[2, 2]);
    MetricState::new(Metric::Precision).update(&pred, &Tensor::from_vec(vec![1.0f32, 0.0], &[2]));
}

#[test]
#[should_panic(expected = "not a class id in 0..3")]
fn multiclass_target_out_of_range_panics() {
    let pred = Tensor::from_vec(vec![0.1f32, 0.7, 0.2], &[1, 3]);
    MetricState::new(Metric::Accuracy).update(&pred, &Tensor::from_vec(vec![3.0f32], &[1]));
}

#[test]
#[should_panic(expected = "need targets of shape [4] or [4, 1]")]
fn binary_target_shape_mismatch_panics() {
    let pred = Tensor::from_vec(vec![0.1f32; 4], &[4, 1]);
    MetricState::new(Metric::Accuracy).update(&pred, &Tensor::from_vec(vec![0.0f32; 3], &[3]));
}
