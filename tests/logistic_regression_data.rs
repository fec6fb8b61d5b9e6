//! The data of `examples/logistic_regression.rs`: the vendored breast-cancer CSV parses with the
//! example's own loader, and a malformed file gives an error naming the file, line and problem.

use std::path::{Path, PathBuf};

#[path = "../examples/logistic_regression.rs"]
#[allow(dead_code)]
mod example;

use example::{DEFAULT_DATA, load_dataset, parse_args};

fn vendored() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_DATA)
}

/// Loads `contents` from a temporary file and returns the error message.
fn load_error(name: &str, contents: &str) -> String {
    let path = std::env::temp_dir().join(format!("tensorgrad_lr_{}_{name}.csv", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    let result = load_dataset(&path);
    std::fs::remove_file(&path).unwrap();
    let message = match result {
        Ok(_) => panic!("{name}: a malformed file was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains(&path.display().to_string()), "{name}: no file name in {message:?}");
    message
}

#[test]
fn vendored_csv_parses() {
    let data = load_dataset(&vendored()).unwrap_or_else(|e| panic!("{e}"));
    let n = data.len();
    assert!(n > 500, "only {n} rows");
    assert_eq!(data.feature_names(), ["mean_radius", "mean_texture"]);
    assert_eq!(data.feature_values().len(), 2 * n);
    assert!(data.feature_values().iter().all(|v| v.is_finite()));
    // Radii and textures are positive physical measurements.
    assert!(data.feature_values().iter().all(|&v| v > 0.0));
    let targets = data.target_values().unwrap();
    let benign = targets.iter().filter(|&&y| y == 1.0).count();
    assert!(targets.iter().all(|&y| y == 0.0 || y == 1.0));
    assert!(benign > 0 && benign < n, "both classes must be present");
}

#[test]
fn licence_is_beside_the_data() {
    let readme = vendored().with_file_name("README.txt");
    let text = std::fs::read_to_string(&readme).unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
    assert!(text.contains("BSD-3-Clause"));
}

#[test]
fn malformed_files_name_the_line_and_problem() {
    let header = "mean_radius,mean_texture,target\n";
    let m = load_error("number", &format!("{header}17.9,10.3,0\nabc,20.1,1\n"));
    assert!(m.contains(".csv:3: ") && m.contains("mean_radius") && m.contains("\"abc\""), "{m}");

    let m = load_error("fields", &format!("{header}17.9,10.3,0\n12.0,20.1\n"));
    assert!(m.contains(".csv:3: ") && m.contains("expected 3 fields"), "{m}");

    let m = load_error("label", &format!("{header}17.9,10.3,2\n"));
    assert!(m.contains(".csv:2: ") && m.contains("0 or 1"), "{m}");

    let m = load_error("nan", &format!("{header}17.9,NaN,0\n"));
    assert!(m.contains(".csv:2: ") && m.contains("mean_texture"), "{m}");

    let m = load_error("column", "mean_radius,target\n17.9,0\n");
    assert!(m.contains(".csv:1: ") && m.contains("mean_texture"), "{m}");

    let m = load_error("empty", header);
    assert!(m.contains("no data rows"), "{m}");

    let missing = vendored().with_file_name("no_such_file.csv");
    let m = load_dataset(&missing).expect_err("a missing file must be an error").to_string();
    assert!(m.contains("no_such_file.csv") && m.contains("cannot open"), "{m}");
}

#[test]
fn flags_parse() {
    let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
    let cfg = args(&["--epochs", "5", "--lr", "0.5", "--seed", "3", "--log-every", "1"]).unwrap().unwrap();
    assert_eq!((cfg.epochs, cfg.lr, cfg.seed, cfg.log_every), (5, 0.5, 3, 1));
    assert_eq!(cfg.data, vendored());
    assert!(args(&["--help"]).unwrap().is_none());
    assert!(args(&["--epochs"]).is_err());
    assert!(args(&["--lr", "-1"]).is_err());
    assert!(args(&["--bogus"]).is_err());
}
