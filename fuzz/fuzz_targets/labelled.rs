//! Labelled datasets: `read_labelled` of arbitrary bytes as TSV and as CSV, failing on a bad
//! row and skipping bad rows. Never a panic; every text has one finite label; skipping is
//! consistent with failing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tensorgrad::data::{ReadOptions, TextDataset, read_labelled};
use tensorgrad_fuzz::write_scratch;

fn check(name: &str, data: &[u8]) {
    let path = write_scratch(name, data);
    let strict = read_labelled(&path, &ReadOptions::new());
    let lenient = read_labelled(&path, &ReadOptions::new().with_skip_bad_rows(true));
    let valid = |d: &TextDataset| {
        assert_eq!(d.texts.len(), d.labels.len());
        assert!(d.labels.iter().all(|l| l.is_finite()));
        assert_eq!(d.skipped, d.skipped_rows.len());
    };
    if let Ok(d) = &strict {
        valid(d);
        assert_eq!(d.skipped, 0);
        assert_eq!(lenient.as_ref().ok(), Some(d), "skipping bad rows changed a file without any");
    }
    match &lenient {
        Ok(d) => valid(d),
        Err(_) => assert!(strict.is_err()),
    }
    // Other column names: the same file, read again.
    let _ = read_labelled(&path, &ReadOptions::new().with_columns("text", "label").with_skip_bad_rows(true));
}

fuzz_target!(|data: &[u8]| {
    check("data.tsv", data);
    check("data.csv", data);
});
