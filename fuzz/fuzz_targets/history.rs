//! Training histories: `History::from_json`, `load_json` and `load_csv` of arbitrary bytes.
//! Never a panic; a history that loads saves and loads back to the same values, in both
//! formats.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tensorgrad::train::History;
use tensorgrad_fuzz::{scratch, write_scratch};

/// Equal names, epochs and values (`NaN` equal to `NaN`, `-0` to `0` not: bits otherwise).
fn assert_same(a: &History, b: &History) {
    let same = |x: &[f64], y: &[f64]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| (p.is_nan() && q.is_nan()) || p.to_bits() == q.to_bits())
    };
    assert_eq!(a.names(), b.names());
    assert!(same(a.epoch_seconds(), b.epoch_seconds()), "seconds differ");
    for name in a.names() {
        assert!(same(a.get(name).unwrap(), b.get(name).unwrap()), "series {name:?} differs");
    }
}

fn round_trip(h: &History) {
    let json = History::from_json(&h.to_json()).expect("reading written JSON");
    assert_same(h, &json);
    let csv = scratch("history-saved.csv");
    h.save_csv(&csv).expect("saving CSV");
    let back = History::load_csv(&csv).expect("reading saved CSV");
    assert_same(h, &back);
}

fuzz_target!(|data: &[u8]| {
    let json_path = write_scratch("history.json", data);
    let from_file = History::load_json(&json_path);
    match std::str::from_utf8(data) {
        Ok(text) => {
            let from_str = History::from_json(text);
            assert_eq!(from_str.is_ok(), from_file.is_ok());
        }
        Err(_) => assert!(from_file.is_err(), "JSON that is not UTF-8 was accepted"),
    }
    if let Ok(h) = &from_file {
        round_trip(h);
    }

    let csv_path = write_scratch("history.csv", data);
    if let Ok(h) = History::load_csv(&csv_path) {
        round_trip(&h);
    }
});
