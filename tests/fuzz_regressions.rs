//! Hostile inputs kept as regression tests: each file of `tests/fixtures/fuzz/<kind>/` goes
//! through the loaders of its kind (the fuzz targets of `fuzz/` in plain `cargo test`). No
//! loader may panic; a file whose name starts with `err_` must be refused by every loader of its
//! kind, and a model must keep its values when it is.
//!
//! Kinds: `weights` (safetensors: `load_tensors_from_bytes`, `load_tensors`, `load_metadata`,
//! `load_model`), `optimizer` (safetensors fed to `Adam::load_state_dict`), `vocabulary`
//! (`Tokenizer::load`), `dataset` (`read_labelled`, by the file's extension), `history`
//! (`History::load_json` for `.json`, `History::load_csv` for `.csv`). To keep a crash the
//! fuzzer found, copy its input (from `fuzz/artifacts/<target>/`) into the matching directory.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use tensorgrad::data::{ReadOptions, Tokenizer, read_labelled};
use tensorgrad::nn::{Linear, Module, Sequential};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
use tensorgrad::train::History;
use tensorgrad::{Tensor, io};

/// The files of one kind, sorted; none if the directory does not exist.
fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz").join(kind);
    let Ok(entries) = fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn must_fail(path: &Path) -> bool {
    path.file_name().unwrap().to_string_lossy().starts_with("err_")
}

/// Runs `load` on `path`; panics (failing the test) with the file's name if it panics or if it
/// accepts an `err_` file.
fn check<T>(what: &str, path: &Path, load: impl FnOnce() -> tensorgrad::Result<T>) {
    check_no_panic(what, path, load, must_fail(path));
}

fn check_no_panic<T>(what: &str, path: &Path, load: impl FnOnce() -> tensorgrad::Result<T>, expect_err: bool) {
    let name = path.file_name().unwrap().to_string_lossy();
    match catch_unwind(AssertUnwindSafe(load)) {
        Err(_) => panic!("{what} panicked on {name}"),
        Ok(Ok(_)) if expect_err => panic!("{what} accepted {name}"),
        Ok(_) => {}
    }
}

#[test]
fn weight_files() {
    let files = fixtures("weights");
    assert!(!files.is_empty());
    for path in files {
        let bytes = fs::read(&path).unwrap();
        check("load_tensors_from_bytes::<f32>", &path, || io::load_tensors_from_bytes::<f32>(&bytes));
        check("load_tensors_from_bytes::<f64>", &path, || io::load_tensors_from_bytes::<f64>(&bytes));
        check("load_tensors", &path, || io::load_tensors::<f32>(&path));
        check("load_metadata", &path, || io::load_metadata(&path));
        // A one-layer model named as the files' tensors are; a refused file changes nothing.
        let model =
            Sequential::new().add_named("fc", Linear::from_tensors(Tensor::from_vec(vec![5.0, 6.0], &[1, 2]), None));
        check("load_model", &path, || io::load_model(&model, &path));
        if must_fail(&path) {
            assert_eq!(model.named_parameters()[0].1.to_vec(), [5.0, 6.0], "{}", path.display());
        }
    }
}

#[test]
fn optimizer_states() {
    for path in fixtures("optimizer") {
        // The fuzz target only reaches the optimizer with files that load.
        let state = io::load_tensors_from_bytes::<f32>(&fs::read(&path).unwrap()).unwrap();
        let param = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).requires_grad();
        let mut opt = Adam::new(vec![param], AdamConfig::default());
        check("load_state_dict", &path, || opt.load_state_dict(&state));
    }
}

#[test]
fn vocabularies() {
    for path in fixtures("vocabulary") {
        check("Tokenizer::load", &path, || Tokenizer::load(&path));
    }
}

#[test]
fn datasets() {
    for path in fixtures("dataset") {
        check("read_labelled", &path, || read_labelled(&path, &ReadOptions::new()));
        // Skipping bad rows may accept an `err_` file; it must not panic on it.
        let lenient = ReadOptions::new().with_skip_bad_rows(true);
        check_no_panic("read_labelled (skipping bad rows)", &path, || read_labelled(&path, &lenient), false);
    }
}

#[test]
fn histories() {
    for path in fixtures("history") {
        if path.extension().is_some_and(|e| e == "json") {
            check("History::load_json", &path, || History::load_json(&path));
        } else {
            check("History::load_csv", &path, || History::load_csv(&path));
        }
    }
}
