//! Helpers shared by the test files that compare against PyTorch fixtures (not every file uses
//! every helper).
#![allow(dead_code)]

use tensorgrad::Tensor;

/// The tensor called `name` in a reference file whose lines read `name [shape] [values]`
/// (written by the `make_reference.py` scripts under `tests/fixtures/`).
pub fn named_tensor(file: &str, name: &str) -> Tensor<f64> {
    let rest = file
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} missing"));
    let (shape, values) = rest.split_once("] ").unwrap();
    let shape: Vec<usize> = shape
        .trim_start_matches('[')
        .split(',')
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().parse().unwrap())
        .collect();
    let values = values.trim().trim_start_matches('[').trim_end_matches(']');
    let values: Vec<f64> = values.split(',').map(|v| v.trim().parse().unwrap()).collect();
    Tensor::from_vec(values, &shape)
}

/// Asserts `got` has `want`'s shape and equals it to 1e-12 (relative above 1, absolute below).
pub fn close(got: &Tensor<f64>, want: &Tensor<f64>, what: &str) {
    close_to(got, want, 1e-12, what);
}

/// Asserts `got` has `want`'s shape and equals it to `tol` (relative above 1, absolute below).
pub fn close_to(got: &Tensor<f64>, want: &Tensor<f64>, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    for (i, (g, w)) in got.to_vec().iter().zip(want.to_vec()).enumerate() {
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: {g} vs PyTorch {w}");
    }
}
