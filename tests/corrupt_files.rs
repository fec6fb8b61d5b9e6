//! Corrupt and hostile files of every kind the crate reads — weight files, model files,
//! optimizer state, tokenizer vocabularies, TSV and CSV datasets, training histories in JSON and
//! CSV — made by mutating valid files: truncated, bit-flipped, bytes inserted or deleted, the
//! safetensors header length or any number in the file set to a huge value.
//!
//! Every loader must return `Ok` or a typed `Err`: never a panic (checked with
//! `catch_unwind`), never an abort or an allocation sized by a declared length (an abort would
//! end the test binary). A `load_model` that fails leaves every parameter bit-identical, and an
//! optimizer that refuses a state keeps its own.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::sample::Index;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::data::{Format, ReadOptions, Tokenizer, read_labelled};
use tensorgrad::nn::{Embedding, Linear, Lstm, LstmConfig, Module, Sequential};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
use tensorgrad::train::History;
use tensorgrad::{Error, Tensor, io};

// ---------------------------------------------------------------------------------------------
// Scratch files
// ---------------------------------------------------------------------------------------------

/// A fresh directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        // Unique per call: the tests run in parallel, and proptest cases one after another.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tensorgrad-corrupt-{}-{test}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `bytes` to the file `name` of the directory and returns its path.
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn read_back(&self, name: &str) -> Vec<u8> {
        fs::read(self.0.join(name)).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Valid files of each kind
// ---------------------------------------------------------------------------------------------

/// Embedding(10, 3) → Lstm(3 → 4) → Linear(4, 1), f32.
fn small_model(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .add_named("emb", Embedding::new(10, 3, &mut rng))
        .add_named("lstm", Lstm::new(LstmConfig::new(3, 4), &mut rng))
        .add_named("fc", Linear::new(4, 1, &mut rng))
}

/// Every parameter's name, shape and value bits, sorted by name.
fn bits(tensors: &[(String, Tensor)]) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let mut out: Vec<_> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().to_vec(), t.to_vec().iter().map(|v| v.to_bits()).collect()))
        .collect();
    out.sort();
    out
}

fn weights_file() -> Vec<u8> {
    static CACHE: OnceLock<Vec<u8>> = OnceLock::new();
    CACHE.get_or_init(make_weights_file).clone()
}

fn make_weights_file() -> Vec<u8> {
    let tensors = vec![
        ("a".to_string(), Tensor::from_vec(vec![1.0, -2.5, 0.0, f32::NAN, 7.0, -0.0], &[2, 3])),
        ("b.weight".to_string(), Tensor::from_vec(vec![0.25, 0.5, 0.75, 1.0], &[4])),
        ("empty".to_string(), Tensor::zeros(&[0, 3])),
        ("scalar".to_string(), Tensor::scalar(3.0)),
    ];
    io::save_tensors_to_bytes(&tensors, &[("format".to_string(), "pt".to_string())]).unwrap()
}

fn model_file() -> Vec<u8> {
    static CACHE: OnceLock<Vec<u8>> = OnceLock::new();
    CACHE.get_or_init(make_model_file).clone()
}

fn make_model_file() -> Vec<u8> {
    io::save_tensors_to_bytes(&small_model(1).named_parameters(), &[("format".to_string(), "pt".to_string())]).unwrap()
}

/// An Adam over the small model's parameters.
fn adam(model: &Sequential) -> Adam {
    Adam::new(model.parameters(), AdamConfig { lr: 0.01, amsgrad: true, ..AdamConfig::default() })
}

/// One step of `opt` on a tiny batch.
fn step(model: &Sequential, opt: &mut Adam) {
    let ids = Tensor::from_vec(vec![1.0, 2.0, 3.0, 0.0, 5.0, 9.0], &[2, 3]);
    let loss = model.forward(&ids).powf(2.0).mean();
    opt.step(&loss.backward());
}

fn optimizer_file() -> Vec<u8> {
    static CACHE: OnceLock<Vec<u8>> = OnceLock::new();
    CACHE.get_or_init(make_optimizer_file).clone()
}

fn make_optimizer_file() -> Vec<u8> {
    let model = small_model(2);
    let mut opt = adam(&model);
    step(&model, &mut opt);
    step(&model, &mut opt);
    io::save_tensors_to_bytes(&opt.state_dict(), &[]).unwrap()
}

fn vocabulary_file() -> Vec<u8> {
    static CACHE: OnceLock<Vec<u8>> = OnceLock::new();
    CACHE.get_or_init(make_vocabulary_file).clone()
}

fn make_vocabulary_file() -> Vec<u8> {
    let dir = Scratch::new("vocabulary_file");
    let mut t = Tokenizer::new().with_oov_token("<OOV>").with_num_words(6);
    t.fit_on_texts(["The cat sat on the mat.", "The dog ate 12 tab\tseparated\\words", "Ünïcödé wörds"]);
    t.save(dir.0.join("vocab.txt")).unwrap();
    dir.read_back("vocab.txt")
}

const TSV: &[u8] = b"label\ttext\n1\tA \"great\" film.\n0\tDull.\n\n0.5\tFine, really\r\n";
const CSV: &[u8] = b"id,text,label\n1,\"Commas, and\nnewlines\",1\n2,\"She said \"\"no\"\"\",0.5\n3,plain,0\n";

fn history() -> History {
    let mut h = History::new();
    h.push_epoch(&[("loss".into(), 0.9), ("accuracy".into(), 0.5)], 1.5);
    h.push_epoch(&[("loss".into(), 0.5), ("val_loss".into(), f64::INFINITY)], 1e-7);
    h.push_epoch(&[("loss".into(), f64::NAN), ("val_loss".into(), 123456.0)], 2e17);
    h
}

fn history_csv_file() -> Vec<u8> {
    static CACHE: OnceLock<Vec<u8>> = OnceLock::new();
    CACHE.get_or_init(make_history_csv_file).clone()
}

fn make_history_csv_file() -> Vec<u8> {
    let dir = Scratch::new("history_csv_file");
    history().save_csv(dir.0.join("h.csv")).unwrap();
    dir.read_back("h.csv")
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

/// One change to a file's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    /// Cut the file at a position.
    Truncate(Index),
    /// Flip one bit of one byte.
    FlipBit(Index, u8),
    /// Insert bytes at a position.
    Insert(Index, Vec<u8>),
    /// Delete up to `n` bytes from a position.
    Delete(Index, usize),
    /// Overwrite one byte.
    Set(Index, u8),
    /// Set the first 8 bytes (the safetensors header length) to a value, little-endian.
    HeaderLength(u64),
    /// Replace one run of ASCII digits (a shape, an offset, a count, a value) by another number.
    Number(Index, &'static str),
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match self {
            Mutation::Truncate(i) => bytes.truncate(i.index(len + 1)),
            Mutation::FlipBit(i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << (bit % 8),
            Mutation::Insert(i, new) => {
                let at = i.index(len + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let at = i.index(len + 1);
                bytes.drain(at..(at + n).min(len));
            }
            Mutation::Set(i, b) if len > 0 => bytes[i.index(len)] = *b,
            Mutation::HeaderLength(v) => {
                if len < 8 {
                    bytes.resize(8, 0);
                }
                bytes[..8].copy_from_slice(&v.to_le_bytes());
            }
            Mutation::Number(i, number) => {
                let runs = digit_runs(bytes);
                if !runs.is_empty() {
                    let (start, end) = runs[i.index(runs.len())];
                    bytes.splice(start..end, number.bytes());
                }
            }
            _ => {}
        }
    }
}

/// The `(start, end)` of every run of ASCII digits.
fn digit_runs(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// Numbers that break sizes, offsets and counts.
const HOSTILE_NUMBERS: [&str; 10] = [
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "4294967296",
    "1000000000000",
    "99999999999999999999999999999999",
    "0",
    "1",
    "1e308",
    "-1",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let header_length = prop_oneof![
        Just(u64::MAX),
        Just(u64::MAX / 2),
        Just(1u64 << 32),
        Just(100_000_001u64),
        0..2000u64,
        any::<u64>(),
    ];
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<Index>(), 1..16usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        header_length.prop_map(Mutation::HeaderLength),
        (any::<Index>(), proptest::sample::select(&HOSTILE_NUMBERS[..])).prop_map(|(i, n)| Mutation::Number(i, n)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..5)
}

fn mutate(valid: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for m in mutations {
        m.apply(&mut bytes);
    }
    bytes
}

/// Runs `load`, failing the test case if it panics.
fn no_panic<T>(what: &str, load: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(load)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        TestCaseError::fail(format!("{what} panicked: {msg}"))
    })
}

// ---------------------------------------------------------------------------------------------
// The loaders, each on mutated files
// ---------------------------------------------------------------------------------------------

/// Weight files: `load_tensors_from_bytes` (f32, f64), `load_tensors` and `load_metadata`.
fn check_weights(dir: &Scratch, bytes: &[u8]) -> Result<(), TestCaseError> {
    let f32s = no_panic("load_tensors_from_bytes::<f32>", || io::load_tensors_from_bytes::<f32>(bytes))?;
    let _ = no_panic("load_tensors_from_bytes::<f64>", || io::load_tensors_from_bytes::<f64>(bytes))?;
    let path = dir.write("w.safetensors", bytes);
    let from_file = no_panic("load_tensors", || io::load_tensors::<f32>(&path))?;
    let _ = no_panic("load_metadata", || io::load_metadata(&path))?;
    prop_assert_eq!(f32s.is_ok(), from_file.is_ok());
    if let Ok(tensors) = &f32s {
        for (name, t) in tensors {
            prop_assert_eq!(t.numel(), t.shape().iter().product::<usize>(), "{}", name);
        }
    }
    Ok(())
}

/// `load_model` into the small model: all or nothing; `load_model_from_bytes` does the same.
fn check_model(dir: &Scratch, bytes: &[u8]) -> Result<(), TestCaseError> {
    let model = small_model(7);
    let before = bits(&model.named_parameters());
    let path = dir.write("model.safetensors", bytes);
    let from_file = no_panic("load_model", || io::load_model(&model, &path))?;
    match &from_file {
        Ok(()) => {
            let file = io::load_tensors::<f32>(&path).expect("a file load_model accepts loads as tensors");
            prop_assert_eq!(bits(&model.named_parameters()), bits(&file));
        }
        Err(e) => {
            prop_assert!(bits(&model.named_parameters()) == before, "a failed load_model changed the model: {}", e);
        }
    }
    let in_memory = small_model(7);
    let from_bytes = no_panic("load_model_from_bytes", || io::load_model_from_bytes(&in_memory, bytes))?;
    prop_assert_eq!(from_bytes.is_ok(), from_file.is_ok());
    prop_assert_eq!(bits(&in_memory.named_parameters()), bits(&model.named_parameters()));
    Ok(())
}

/// Optimizer state read from a weight file and given to an Adam that has stepped once.
fn check_optimizer(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(state) = no_panic("load_tensors_from_bytes", || io::load_tensors_from_bytes::<f32>(bytes))? else {
        return Ok(());
    };
    let model = small_model(3);
    let mut opt = adam(&model);
    step(&model, &mut opt);
    let before = bits(&opt.state_dict());
    match no_panic("load_state_dict", || opt.load_state_dict(&state))? {
        Ok(()) => no_panic("a step after load_state_dict", || step(&model, &mut opt))?,
        Err(e) => prop_assert!(bits(&opt.state_dict()) == before, "a refused state changed the optimizer: {}", e),
    }
    Ok(())
}

fn check_vocabulary(dir: &Scratch, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = dir.write("vocab.txt", bytes);
    if let Ok(t) = no_panic("Tokenizer::load", || Tokenizer::load(&path))? {
        no_panic("using a loaded tokenizer", || {
            let vocab = t.vocab_size();
            let ids = t.texts_to_sequences(["the cat sat on an unknown mat"]);
            assert!(ids.iter().flatten().all(|&id| id < vocab));
            t.sequences_to_texts(&[vec![0, 1, 2, vocab]]);
        })?;
    }
    Ok(())
}

fn check_dataset(dir: &Scratch, name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = dir.write(name, bytes);
    for skip in [false, true] {
        let options = ReadOptions::new().with_skip_bad_rows(skip);
        if let Ok(d) = no_panic("read_labelled", || read_labelled(&path, &options))? {
            prop_assert_eq!(d.texts.len(), d.labels.len());
            prop_assert!(d.labels.iter().all(|l| l.is_finite()));
        }
    }
    Ok(())
}

fn check_history_json(dir: &Scratch, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = dir.write("h.json", bytes);
    let from_file = no_panic("History::load_json", || History::load_json(&path))?;
    if let Ok(text) = std::str::from_utf8(bytes) {
        let from_str = no_panic("History::from_json", || History::from_json(text))?;
        prop_assert_eq!(from_str.is_ok(), from_file.is_ok());
    }
    Ok(())
}

fn check_history_csv(dir: &Scratch, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = dir.write("h.csv", bytes);
    let _ = no_panic("History::load_csv", || History::load_csv(&path))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_weight_files_never_panic(m in mutations()) {
        let dir = Scratch::new("weights");
        check_weights(&dir, &mutate(&weights_file(), &m))?;
    }

    #[test]
    fn mutated_model_files_never_panic_and_a_failed_load_changes_nothing(m in mutations()) {
        let dir = Scratch::new("model");
        check_model(&dir, &mutate(&model_file(), &m))?;
    }

    #[test]
    fn mutated_optimizer_states_never_panic_and_a_refused_one_changes_nothing(m in mutations()) {
        check_optimizer(&mutate(&optimizer_file(), &m))?;
    }

    #[test]
    fn mutated_vocabularies_never_panic(m in mutations()) {
        let dir = Scratch::new("vocabulary");
        check_vocabulary(&dir, &mutate(&vocabulary_file(), &m))?;
    }

    #[test]
    fn mutated_tsv_datasets_never_panic(m in mutations()) {
        let dir = Scratch::new("tsv");
        check_dataset(&dir, "data.tsv", &mutate(TSV, &m))?;
    }

    #[test]
    fn mutated_csv_datasets_never_panic(m in mutations()) {
        let dir = Scratch::new("csv");
        check_dataset(&dir, "data.csv", &mutate(CSV, &m))?;
    }

    #[test]
    fn mutated_history_json_never_panics(m in mutations()) {
        let dir = Scratch::new("history_json");
        check_history_json(&dir, &mutate(history().to_json().as_bytes(), &m))?;
    }

    #[test]
    fn mutated_history_csv_never_panics(m in mutations()) {
        let dir = Scratch::new("history_csv");
        check_history_csv(&dir, &mutate(&history_csv_file(), &m))?;
    }
}

proptest! {
    // Each case runs all eight loaders on all eight kinds of file.
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any file of one kind given to the loader of another (a vocabulary as weights, a weight
    /// file as a dataset, …) is an error or, at worst, a valid load — never a panic.
    #[test]
    fn every_file_kind_given_to_every_loader_never_panics(m in proptest::collection::vec(mutation(), 0..3)) {
        let dir = Scratch::new("cross");
        let files = [
            weights_file(),
            model_file(),
            optimizer_file(),
            vocabulary_file(),
            TSV.to_vec(),
            CSV.to_vec(),
            history().to_json().into_bytes(),
            history_csv_file(),
        ];
        for file in &files {
            let bytes = mutate(file, &m);
            check_weights(&dir, &bytes)?;
            check_model(&dir, &bytes)?;
            check_optimizer(&bytes)?;
            check_vocabulary(&dir, &bytes)?;
            check_dataset(&dir, "data.tsv", &bytes)?;
            check_dataset(&dir, "data.csv", &bytes)?;
            check_history_json(&dir, &bytes)?;
            check_history_csv(&dir, &bytes)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sanity: the valid files load, so the mutations start from something meaningful
// ---------------------------------------------------------------------------------------------

#[test]
fn the_unmutated_files_load() {
    let dir = Scratch::new("unmutated");
    assert_eq!(io::load_tensors_from_bytes::<f32>(&weights_file()).unwrap().len(), 4);
    let model = small_model(9);
    io::load_model(&model, dir.write("m.safetensors", &model_file())).unwrap();
    assert_eq!(bits(&model.named_parameters()), bits(&small_model(1).named_parameters()));
    let target = small_model(4);
    let mut opt = adam(&target);
    opt.load_state_dict(&io::load_tensors_from_bytes::<f32>(&optimizer_file()).unwrap()).unwrap();
    assert_eq!(opt.state_dict().len(), 4 * 7);
    assert!(Tokenizer::load(dir.write("v.txt", &vocabulary_file())).unwrap().vocab_size() == 6);
    assert_eq!(read_labelled(dir.write("d.tsv", TSV), &ReadOptions::new()).unwrap().len(), 3);
    assert_eq!(read_labelled(dir.write("d.csv", CSV), &ReadOptions::new()).unwrap().len(), 3);
    assert_eq!(History::from_json(&history().to_json()).unwrap().epochs(), 3);
    assert_eq!(History::load_csv(dir.write("h.csv", &history_csv_file())).unwrap().epochs(), 3);
    assert_eq!(read_labelled(dir.write("d.txt", TSV), &ReadOptions::new().with_format(Format::Tsv)).unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Hostile files made by hand: each a typed error
// ---------------------------------------------------------------------------------------------

/// A safetensors file from a JSON header and a data section.
fn craft(header: impl AsRef<[u8]>, data: &[u8]) -> Vec<u8> {
    let header = header.as_ref();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

#[test]
fn huge_declared_sizes_are_format_errors_without_allocating() {
    let headers = [
        // 2^62 elements in 16 bytes.
        r#"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}}"#,
        // A shape whose product overflows usize.
        r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}}"#,
        // Offsets far beyond the file.
        r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,18446744073709551600]}}"#,
        r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[18446744073709551600,18446744073709551615]}}"#,
    ];
    for header in headers {
        let r = io::load_tensors_from_bytes::<f32>(&craft(header, &[0; 16]));
        assert!(matches!(r, Err(Error::Format { .. })), "{header}: {r:?}");
    }
    // A header length of 2^64 - 1, 2^63 and just one byte too many.
    let valid = weights_file();
    for len in [u64::MAX, 1 << 63, (valid.len() - 8 + 1) as u64] {
        let mut bytes = valid.clone();
        bytes[..8].copy_from_slice(&len.to_le_bytes());
        let r = io::load_tensors_from_bytes::<f32>(&bytes);
        assert!(matches!(r, Err(Error::Format { .. })), "header length {len}: {r:?}");
    }
}

#[test]
fn a_vocabulary_declaring_a_huge_word_count_is_an_error() {
    let dir = Scratch::new("huge_word_count");
    let text = String::from_utf8(vocabulary_file()).unwrap();
    let words_line = text.lines().find(|l| l.starts_with("words\t")).unwrap();
    let hostile = text.replace(words_line, "words\t18446744073709551615");
    let r = Tokenizer::load(dir.write("v.txt", hostile.as_bytes()));
    assert!(matches!(r, Err(Error::Vocabulary { .. })), "{r:?}");
}

#[test]
fn wrong_dtypes_are_dtype_errors() {
    let f64s = io::save_tensors_to_bytes(&[("x".to_string(), Tensor::<f64>::zeros(&[2]))], &[]).unwrap();
    assert!(matches!(io::load_tensors_from_bytes::<f32>(&f64s), Err(Error::DType { .. })));
    // A dtype the crate does not hold at all.
    let i64s = craft(r#"{"x":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#, &[0; 16]);
    assert!(matches!(io::load_tensors_from_bytes::<f32>(&i64s), Err(Error::DType { .. })));
}

#[test]
fn duplicate_names_are_errors() {
    // Two tensors of one name over different bytes.
    let two = craft(
        r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        &[0; 8],
    );
    assert!(io::load_tensors_from_bytes::<f32>(&two).is_err());
    // Two entries of one name over the same bytes, which pass every check of sizes and offsets:
    // either could be meant.
    let same_bytes = craft(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    let r = io::load_tensors_from_bytes::<f32>(&same_bytes);
    assert!(matches!(&r, Err(Error::Format { reason, .. }) if reason.contains("`a` twice")), "{r:?}");
    // A metadata key given twice.
    let dir = Scratch::new("duplicate_names");
    let meta = dir.write(
        "m.safetensors",
        &craft(r#"{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &[0; 8]),
    );
    assert!(matches!(io::load_metadata(&meta), Err(Error::Format { .. })));
    assert!(matches!(io::load_tensors::<f32>(&meta), Err(Error::Format { .. })));
    // The same into a model: refused, and the model keeps its values.
    let model =
        Sequential::new().add_named("fc", Linear::from_tensors(Tensor::from_vec(vec![5.0, 6.0], &[1, 2]), None));
    let file = dir.write(
        "fc.safetensors",
        &craft(
            r#"{"fc.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"fc.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#,
            &[0; 8],
        ),
    );
    assert!(matches!(io::load_model(&model, &file), Err(Error::Format { .. })));
    assert_eq!(model.named_parameters()[0].1.to_vec(), [5.0, 6.0]);
    // A word listed twice in a vocabulary.
    let text = String::from_utf8(vocabulary_file()).unwrap();
    let first_word = text.lines().find(|l| l.starts_with("2\t")).unwrap();
    let doubled = text.replace(first_word, &format!("{first_word}\n{first_word}"));
    assert!(matches!(Tokenizer::load(dir.write("v.txt", doubled.as_bytes())), Err(Error::Vocabulary { .. })));
    // A series named twice in a history.
    let json = r#"{"seconds":[1.0],"history":{"loss":[1.0],"loss":[2.0]}}"#;
    assert!(matches!(History::from_json(json), Err(Error::History { .. })));
    let csv = dir.write("h.csv", b"epoch,seconds,loss,loss\n1,1.0,1.0,2.0\n");
    assert!(matches!(History::load_csv(csv), Err(Error::History { .. })));
    // Two `label` columns in a dataset.
    let tsv = dir.write("d.tsv", b"label\ttext\tlabel\n1\tx\t0\n");
    assert!(matches!(read_labelled(tsv, &ReadOptions::new()), Err(Error::DataFile { .. })));
    // A step count given twice to an optimizer is impossible in one file (the names are a map),
    // but a state list can repeat it.
    let model = small_model(5);
    let mut opt = adam(&model);
    let state = vec![("0.step".to_string(), Tensor::scalar(1.0)), ("0.step".to_string(), Tensor::scalar(2.0))];
    assert!(matches!(opt.load_state_dict(&state), Err(Error::OptimizerState { .. })));
}

#[test]
fn non_utf8_text_is_an_error_in_every_text_format() {
    let dir = Scratch::new("non_utf8");
    let mut vocab = vocabulary_file();
    let at = vocab.len() - 6;
    vocab.insert(at, 0xFF);
    assert!(matches!(Tokenizer::load(dir.write("v.txt", &vocab)), Err(Error::Vocabulary { .. })));
    assert!(matches!(History::load_json(dir.write("h.json", b"{\"seconds\":[\xff]}")), Err(Error::History { .. })));
    let csv = dir.write("h.csv", b"epoch,seconds,lo\xffss\n1,1.0,1.0\n");
    assert!(matches!(History::load_csv(csv), Err(Error::History { .. })));
    let tsv = dir.write("d.tsv", b"label\ttext\n1\tcaf\xe9\n");
    assert!(matches!(read_labelled(tsv, &ReadOptions::new()), Err(Error::DataFile { line: Some(2), .. })));
    let header = craft(b"{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &[0; 4]);
    assert!(matches!(io::load_tensors_from_bytes::<f32>(&header), Err(Error::Format { .. })));
}
