//! safetensors weight files: round trips, loading into models (all-or-nothing, with a listing of
//! every mismatch), hostile and corrupt files (errors, never panics), and crash-safe saving.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::nn::{Linear, Lstm, LstmConfig, Module, Sequential};
use tensorgrad::{Element, Error, Tensor, io};

/// A fresh directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tensorgrad-io-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names of the entries in the directory, sorted.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The temporary file `save_tensors` writes next to `target`.
fn temp_path_of(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap().to_string_lossy();
    target.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn named<E: Element>(pairs: &[(&str, Tensor<E>)]) -> Vec<(String, Tensor<E>)> {
    pairs.iter().map(|(n, t)| (n.to_string(), t.clone())).collect()
}

fn randn<E: Element>(shape: &[usize], seed: u64) -> Tensor<E>
where
    rand_distr::StandardNormal: rand_distr::Distribution<E>,
{
    Tensor::randn(shape, E::zero(), E::one(), &mut StdRng::seed_from_u64(seed))
}

/// Asserts two tensor lists have the same names, shapes and bit-identical values.
fn assert_same<E: Element>(a: &[(String, Tensor<E>)], b: &[(String, Tensor<E>)]) {
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        assert_eq!(ta.shape(), tb.shape(), "{na}");
        let bits = |t: &Tensor<E>| t.to_vec().iter().map(|v| v.to_f64().unwrap().to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(ta), bits(tb), "{na}");
    }
}

/// Sorted by name, the order in which the safetensors writer stores tensors.
fn sorted<E: Element>(mut v: Vec<(String, Tensor<E>)>) -> Vec<(String, Tensor<E>)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A valid file's bytes with two f32 tensors.
fn sample_bytes() -> Vec<u8> {
    let tensors = named(&[("a", randn::<f32>(&[2, 3], 1)), ("b.weight", randn::<f32>(&[4], 2))]);
    io::save_tensors_to_bytes(&tensors, &[("k".to_string(), "v".to_string())]).unwrap()
}

/// The header length of a safetensors file.
fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// A file from a hand-written JSON header and data section.
fn craft(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

fn assert_format_error(r: Result<Vec<(String, Tensor<f32>)>, Error>, what: &str) {
    match r {
        Err(Error::Format { .. }) => {}
        other => panic!("{what}: expected Error::Format, got {other:?}"),
    }
}

fn seq_model<E: Element>(input: usize, hidden: usize, seed: u64) -> Sequential<E>
where
    rand_distr::StandardNormal: rand_distr::Distribution<E>,
{
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .add_named("lstm", Lstm::new(LstmConfig::new(input, hidden), &mut rng))
        .add_named("fc", Linear::new(hidden, 1, &mut rng))
}

fn snapshot<E: Element>(m: &impl Module<E>) -> Vec<(String, Vec<E>)> {
    m.named_parameters().into_iter().map(|(n, t)| (n, t.to_vec())).collect()
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn round_trip_f32_with_special_values_views_and_metadata() {
    let dir = Scratch::new("round_trip_f32");
    let path = dir.path("t.safetensors");
    let special =
        Tensor::from_vec(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, f32::MIN_POSITIVE / 8.0, 1.5], &[6]);
    let base = randn::<f32>(&[3, 4], 3);
    let tensors = named(&[
        ("matrix", randn::<f32>(&[2, 3], 1)),
        ("scalar", Tensor::scalar(2.5f32)),
        ("empty", Tensor::<f32>::zeros(&[0, 3])),
        ("special", special),
        ("transposed", base.t()),
        ("narrowed", base.narrow(1, 1, 2)),
        ("lstm.weight_ih_l0", randn::<f32>(&[28, 5], 4)),
    ]);
    let metadata = vec![("format".to_string(), "pt".to_string()), ("epoch".to_string(), "12".to_string())];
    io::save_tensors(&path, &tensors, &metadata).unwrap();
    let back = io::load_tensors::<f32>(&path).unwrap();
    assert_same(&back, &sorted(tensors.clone()));
    let mut meta_sorted = metadata.clone();
    meta_sorted.sort();
    assert_eq!(io::load_metadata(&path).unwrap(), meta_sorted);
    // The in-memory serialization is the file (with one metadata entry: the order of several is
    // not fixed, as safetensors keeps them in a hash map).
    let one = dir.path("one.safetensors");
    io::save_tensors(&one, &tensors, &metadata[..1]).unwrap();
    assert_eq!(io::save_tensors_to_bytes(&tensors, &metadata[..1]).unwrap(), fs::read(&one).unwrap());
    assert_eq!(dir.entries(), ["one.safetensors", "t.safetensors"]);
}

#[test]
fn round_trip_f64() {
    let dir = Scratch::new("round_trip_f64");
    let path = dir.path("t.safetensors");
    let tensors = named(&[
        ("x", randn::<f64>(&[4, 2, 3], 5)),
        ("tiny", Tensor::from_vec(vec![f64::MIN_POSITIVE / 3.0, -f64::MAX, 1e-300], &[3])),
    ]);
    io::save_tensors(&path, &tensors, &[]).unwrap();
    assert_same(&io::load_tensors::<f64>(&path).unwrap(), &sorted(tensors));
    assert_eq!(io::load_metadata(&path).unwrap(), []);
}

#[test]
fn round_trip_empty_list() {
    let dir = Scratch::new("round_trip_empty");
    let path = dir.path("none.safetensors");
    io::save_tensors::<f32>(&path, &[], &[]).unwrap();
    assert!(io::load_tensors::<f32>(&path).unwrap().is_empty());
}

#[test]
fn saving_again_replaces_the_file() {
    let dir = Scratch::new("save_again");
    let path = dir.path("t.safetensors");
    io::save_tensors(&path, &named(&[("a", randn::<f32>(&[100], 1))]), &[]).unwrap();
    let second = named(&[("b", randn::<f32>(&[2], 2))]);
    io::save_tensors(&path, &second, &[]).unwrap();
    assert_same(&io::load_tensors::<f32>(&path).unwrap(), &second);
    assert_eq!(dir.entries(), ["t.safetensors"]);
}

fn check_model_round_trip<E: Element>(test: &str)
where
    rand_distr::StandardNormal: rand_distr::Distribution<E>,
{
    let dir = Scratch::new(test);
    let path = dir.path("model.safetensors");
    let trained = seq_model::<E>(5, 7, 1);
    io::save_model(&trained, &path).unwrap();
    assert_eq!(io::load_metadata(&path).unwrap(), [("format".to_string(), "pt".to_string())]);

    let fresh = seq_model::<E>(5, 7, 2);
    let x = randn::<E>(&[3, 6, 5], 9);
    let bits = |t: Tensor<E>| t.to_vec().iter().map(|v| v.to_f64().unwrap().to_bits()).collect::<Vec<_>>();
    assert_ne!(bits(fresh.forward(&x)), bits(trained.forward(&x)));
    io::load_model(&fresh, &path).unwrap();
    assert_eq!(bits(fresh.forward(&x)), bits(trained.forward(&x)));
    assert_same(&fresh.named_parameters(), &trained.named_parameters());
}

#[test]
fn model_round_trip_f32() {
    check_model_round_trip::<f32>("model_round_trip_f32");
}

#[test]
fn model_round_trip_f64() {
    check_model_round_trip::<f64>("model_round_trip_f64");
}

#[test]
fn load_model_writes_into_the_existing_parameter_tensors() {
    let dir = Scratch::new("in_place");
    let path = dir.path("model.safetensors");
    io::save_model(&seq_model::<f32>(5, 7, 1), &path).unwrap();
    let model = seq_model::<f32>(5, 7, 2);
    // What an optimizer would hold.
    let handles = model.parameters();
    io::load_model(&model, &path).unwrap();
    let file = sorted(io::load_tensors::<f32>(&path).unwrap());
    for (h, (name, t)) in handles.iter().zip(model.named_parameters()) {
        assert_eq!(h.id(), t.id(), "{name}: the parameter was replaced, not updated");
        let stored = &file.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(h.to_vec(), stored.to_vec(), "{name}");
    }
    // Gradients still reach the same leaves.
    let grads = model.forward(&randn::<f32>(&[2, 3, 5], 3)).sum().backward();
    assert!(handles.iter().all(|h| grads.get(h).is_some()));
}

// ---------------------------------------------------------------------------------------------
// Loading into a model that does not match
// ---------------------------------------------------------------------------------------------

#[test]
fn load_model_lists_missing_unexpected_and_mis_shaped_and_changes_nothing() {
    let dir = Scratch::new("mismatch");
    let path = dir.path("model.safetensors");
    io::save_model(&seq_model::<f32>(5, 7, 1), &path).unwrap();

    let mut rng = StdRng::seed_from_u64(3);
    let a = 1.0 / 8f64.sqrt();
    let target: Sequential<f32> = Sequential::new()
        .add_named("lstm", Lstm::new(LstmConfig::new(5, 8), &mut rng))
        .add_named("fc", Linear::with_init(7, 1, tensorgrad::nn::init::Init::Uniform(-a, a), None, &mut rng))
        .add_named("extra", Linear::new(1, 1, &mut rng));
    let before = snapshot(&target);
    let err = io::load_model(&target, &path).unwrap_err();
    let Error::StateMismatch { path: p, missing, unexpected, mismatched, wrong_dtype } = &err else {
        panic!("expected StateMismatch, got {err:?}");
    };
    assert_eq!(p.as_deref(), Some(path.as_path()));
    assert_eq!(missing, &["extra.weight", "extra.bias"]);
    assert_eq!(unexpected, &["fc.bias"]);
    let expected_shapes = [
        ("lstm.weight_ih_l0", vec![32, 5], vec![28, 5]),
        ("lstm.weight_hh_l0", vec![32, 8], vec![28, 7]),
        ("lstm.bias_ih_l0", vec![32], vec![28]),
        ("lstm.bias_hh_l0", vec![32], vec![28]),
        ("fc.weight", vec![1, 7], vec![1, 7]),
    ];
    let expected: Vec<(String, Vec<usize>, Vec<usize>)> =
        expected_shapes.into_iter().filter(|(_, m, f)| m != f).map(|(n, m, f)| (n.to_string(), m, f)).collect();
    assert_eq!(mismatched, &expected);
    assert!(wrong_dtype.is_empty());

    let msg = err.to_string();
    for needle in ["extra.weight", "extra.bias", "fc.bias", "lstm.weight_hh_l0: model [32, 8], file [28, 7]", "nothing"]
    {
        assert!(msg.contains(needle), "message lacks {needle:?}:\n{msg}");
    }
    assert_eq!(snapshot(&target), before, "a failed load changed the model");
}

#[test]
fn load_model_only_one_missing_parameter_loads_nothing() {
    let dir = Scratch::new("one_missing");
    let path = dir.path("model.safetensors");
    let saved = seq_model::<f32>(5, 7, 1);
    // Everything but fc.bias.
    let mut params = saved.named_parameters();
    params.retain(|(n, _)| n != "fc.bias");
    io::save_tensors(&path, &params, &[]).unwrap();
    let target = seq_model::<f32>(5, 7, 2);
    let before = snapshot(&target);
    match io::load_model(&target, &path) {
        Err(Error::StateMismatch { missing, unexpected, mismatched, wrong_dtype, .. }) => {
            assert_eq!(missing, ["fc.bias"]);
            assert!(unexpected.is_empty() && mismatched.is_empty() && wrong_dtype.is_empty());
        }
        other => panic!("expected StateMismatch, got {other:?}"),
    }
    assert_eq!(snapshot(&target), before);
}

#[test]
fn load_model_with_the_wrong_dtype_lists_every_tensor_and_changes_nothing() {
    let dir = Scratch::new("model_dtype");
    let path = dir.path("model.safetensors");
    io::save_model(&seq_model::<f64>(5, 7, 1), &path).unwrap();
    let target = seq_model::<f32>(5, 7, 2);
    let before = snapshot(&target);
    let err = io::load_model(&target, &path).unwrap_err();
    match &err {
        Error::StateMismatch { missing, unexpected, mismatched, wrong_dtype, .. } => {
            assert!(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty());
            assert_eq!(wrong_dtype.len(), 6);
            assert!(wrong_dtype.iter().all(|(_, model, file)| model == "F32" && file == "F64"));
        }
        other => panic!("expected StateMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("fc.weight: model F32, file F64"), "{err}");
    assert_eq!(snapshot(&target), before);
}

#[test]
fn model_round_trip_through_bytes_equals_the_one_through_a_file() {
    let dir = Scratch::new("model_bytes");
    let path = dir.path("model.safetensors");
    let trained = seq_model::<f64>(5, 7, 1);
    io::save_model(&trained, &path).unwrap();
    let bytes = io::save_model_to_bytes(&trained).unwrap();
    assert_eq!(bytes, fs::read(&path).unwrap());
    assert_eq!(io::load_metadata_from_bytes(&bytes).unwrap(), io::load_metadata(&path).unwrap());

    let (from_file, from_bytes) = (seq_model::<f64>(5, 7, 2), seq_model::<f64>(5, 7, 3));
    io::load_model(&from_file, &path).unwrap();
    io::load_model_from_bytes(&from_bytes, &bytes).unwrap();
    assert_eq!(snapshot(&from_bytes), snapshot(&from_file));
    assert_eq!(snapshot(&from_bytes), snapshot(&trained));
}

#[test]
fn load_model_from_bad_bytes_is_a_typed_error_and_changes_nothing() {
    let bytes = io::save_model_to_bytes(&seq_model::<f32>(5, 7, 1)).unwrap();
    let model = seq_model::<f32>(5, 7, 2);
    let before = snapshot(&model);
    // Every truncation, including the empty buffer.
    for len in 0..bytes.len() {
        match io::load_model_from_bytes(&model, &bytes[..len]) {
            Err(Error::Format { path: None, .. }) => {}
            other => panic!("{len} of {} bytes: expected a format error, got {other:?}", bytes.len()),
        }
    }
    assert_eq!(snapshot(&model), before);
    // Bytes of another model: the mismatch names no file.
    let other = io::save_model_to_bytes(&seq_model::<f32>(5, 6, 1)).unwrap();
    let err = io::load_model_from_bytes(&model, &other).unwrap_err();
    assert!(matches!(&err, Error::StateMismatch { path: None, mismatched, .. } if mismatched.len() == 5), "{err}");
    assert!(err.to_string().starts_with("the tensors in the safetensors bytes do not match"), "{err}");
    // The wrong element type.
    let err = io::load_model_from_bytes(&model, &io::save_model_to_bytes(&seq_model::<f64>(5, 7, 1)).unwrap());
    assert!(matches!(err, Err(Error::StateMismatch { ref wrong_dtype, .. }) if wrong_dtype.len() == 6), "{err:?}");
    assert_eq!(snapshot(&model), before);
}

#[test]
fn load_model_errors_list_names_from_the_file_short_and_escaped() {
    // Issue 12: names from a (possibly hostile) file are quoted cut and escaped, and a long list
    // stops after twenty entries with the count of all.
    let dir = Scratch::new("model_many_names");
    let path = dir.path("model.safetensors");
    let mut tensors = seq_model::<f32>(5, 7, 1).named_parameters();
    tensors.extend((0..1000).map(|i| (format!("extra{i:04}"), Tensor::<f32>::zeros(&[1]))));
    tensors.push((format!("\u{1b}[2J{}", "n".repeat(100_000)), Tensor::zeros(&[1])));
    io::save_tensors(&path, &tensors, &[]).unwrap();
    let err = io::load_model(&seq_model::<f32>(5, 7, 2), &path).unwrap_err();
    let Error::StateMismatch { unexpected, .. } = &err else { panic!("expected StateMismatch, got {err:?}") };
    assert_eq!(unexpected.len(), 1001);
    let msg = err.to_string();
    assert!(msg.len() < 1000, "{} bytes: {}", msg.len(), &msg[..msg.len().min(2000)]);
    assert!(msg.contains("not in the model (1001): \\u{1b}[2Jnnn"), "{msg}");
    assert!(msg.contains("(100004 bytes in all), extra0000, extra0001"), "{msg}");
    assert!(msg.ends_with("extra0018, … (1001 in all)"), "{msg}");
}

#[test]
fn load_model_into_a_non_contiguous_parameter_is_an_error() {
    let dir = Scratch::new("non_contiguous");
    let path = dir.path("model.safetensors");
    io::save_model(&Linear::<f32>::from_tensors(randn(&[2, 3], 1), None), &path).unwrap();
    let view = Linear::<f32>::from_tensors(randn::<f32>(&[3, 2], 2).t(), None);
    let before = snapshot(&view);
    match io::load_model(&view, &path) {
        Err(Error::NotContiguous { name, shape }) => {
            assert_eq!(name, "weight");
            assert_eq!(shape, [2, 3]);
        }
        other => panic!("expected NotContiguous, got {other:?}"),
    }
    assert_eq!(snapshot(&view), before);
}

// ---------------------------------------------------------------------------------------------
// Wrong element types
// ---------------------------------------------------------------------------------------------

#[test]
fn load_tensors_with_the_wrong_dtype_names_the_tensor() {
    let dir = Scratch::new("dtype");
    let path = dir.path("t.safetensors");
    io::save_tensors(&path, &named(&[("w", randn::<f64>(&[2, 2], 1))]), &[]).unwrap();
    let err = io::load_tensors::<f32>(&path).unwrap_err();
    match &err {
        Error::DType { path: p, name, found, expected } => {
            assert_eq!(p.as_deref(), Some(path.as_path()));
            assert_eq!((name.as_str(), found.as_str(), expected.as_str()), ("w", "F64", "F32"));
        }
        other => panic!("expected DType, got {other:?}"),
    }
    assert!(err.to_string().contains("`w` is stored as F64, expected F32"), "{err}");

    // An F16 tensor (written by hand) loads into neither.
    let bytes = craft(br#"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, &[0, 60, 0, 188]);
    assert!(matches!(io::load_tensors_from_bytes::<f32>(&bytes), Err(Error::DType { found, .. }) if found == "F16"));
    assert!(matches!(io::load_tensors_from_bytes::<f64>(&bytes), Err(Error::DType { found, .. }) if found == "F16"));
}

// ---------------------------------------------------------------------------------------------
// Corrupt and hostile files
// ---------------------------------------------------------------------------------------------

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample_bytes();
    for len in 0..bytes.len() {
        assert_format_error(io::load_tensors_from_bytes(&bytes[..len]), &format!("truncated to {len} bytes"));
    }
    // The same through a file, with the path in the error.
    let dir = Scratch::new("truncated");
    let path = dir.path("cut.safetensors");
    fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let err = io::load_tensors::<f32>(&path).unwrap_err();
    assert!(matches!(&err, Error::Format { path: Some(p), .. } if *p == path), "{err:?}");
    assert!(err.to_string().contains("cut.safetensors"), "{err}");
    // A trailing extra byte is as wrong as a missing one.
    let mut longer = bytes.clone();
    longer.push(0);
    assert_format_error(io::load_tensors_from_bytes(&longer), "one byte too long");
}

#[test]
fn a_flipped_bit_in_the_header_is_an_error() {
    let bytes = sample_bytes();
    assert_eq!(bytes[8], b'{');
    // '{' ^ 1 = 'z': not JSON.
    let mut flipped = bytes.clone();
    flipped[8] ^= 1;
    assert_format_error(io::load_tensors_from_bytes(&flipped), "flipped '{'");
    // A digit of a data offset: the sizes no longer add up.
    let header = std::str::from_utf8(&bytes[8..8 + header_len(&bytes)]).unwrap();
    let at = 8 + header.find("\"data_offsets\":[0,").unwrap() + "\"data_offsets\":[0,".len();
    assert!(bytes[at].is_ascii_digit());
    let mut flipped = bytes.clone();
    flipped[at] ^= 1;
    assert_format_error(io::load_tensors_from_bytes(&flipped), "flipped offset digit");
    // Every bit of the length prefix.
    for bit in 0..64 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert_format_error(io::load_tensors_from_bytes(&flipped), &format!("flipped length bit {bit}"));
    }
}

#[test]
fn any_flipped_bit_in_the_header_never_panics() {
    let bytes = sample_bytes();
    let values = |ts: Vec<(String, Tensor<f32>)>| {
        let mut v: Vec<Vec<u32>> = ts.iter().map(|(_, t)| t.to_vec().iter().map(|x| x.to_bits()).collect()).collect();
        v.sort();
        v
    };
    let original = values(io::load_tensors_from_bytes(&bytes).unwrap());
    let end = 8 + header_len(&bytes);
    let mut accepted = 0;
    for i in 8..end {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[i] ^= 1 << bit;
            if let Ok(tensors) = io::load_tensors_from_bytes::<f32>(&flipped) {
                // Only a change that keeps the header valid (a letter of a name, say) can load,
                // and then with the same values.
                accepted += 1;
                assert_eq!(values(tensors), original, "byte {i} bit {bit}");
            }
        }
    }
    assert!(accepted < (end - 8) * 8 / 2, "{accepted} of {} flips were accepted", (end - 8) * 8);
}

#[test]
fn a_header_length_beyond_the_file_is_an_error() {
    let bytes = sample_bytes();
    for declared in [bytes.len() as u64 - 7, bytes.len() as u64, 1 << 40, u64::MAX] {
        let mut b = bytes.clone();
        b[..8].copy_from_slice(&declared.to_le_bytes());
        let err = io::load_tensors_from_bytes::<f32>(&b).unwrap_err();
        assert!(err.to_string().contains("header length"), "{declared}: {err}");
    }
}

#[test]
fn huge_declared_tensors_are_rejected_without_allocating() {
    let cases: Vec<(String, Vec<u8>)> = vec![
        // 2^40 elements, offsets to match, no data.
        (r#"{"x":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}"#.into(), vec![]),
        // 2^40 elements over 16 bytes that are present.
        (r#"{"x":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,16]}}"#.into(), vec![0; 16]),
        // Element count overflowing usize.
        (
            r#"{"x":{"dtype":"F32","shape":[1099511627776,1099511627776,1099511627776],"data_offsets":[0,16]}}"#.into(),
            vec![0; 16],
        ),
        // Offsets beyond u64.
        (r#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,99999999999999999999999]}}"#.into(), vec![0; 16]),
    ];
    for (header, data) in cases {
        assert_format_error(io::load_tensors_from_bytes(&craft(header.as_bytes(), &data)), &header);
    }
    // Eight byte tensors of 2^61 − 1 elements: their offsets sum to just under 2^64. safetensors
    // 0.8 itself panics on this (an unchecked addition) in debug builds; the loader must not.
    let big = (1u64 << 61) - 1;
    let entries: Vec<String> = (0..8u64)
        .map(|i| format!(r#""t{i}":{{"dtype":"U8","shape":[{big}],"data_offsets":[{},{}]}}"#, i * big, (i + 1) * big))
        .collect();
    let header = format!("{{{}}}", entries.join(","));
    assert_format_error(io::load_tensors_from_bytes(&craft(header.as_bytes(), &[])), "offsets near 2^64");
}

#[test]
fn a_non_utf8_header_is_an_error() {
    let mut header = br#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.to_vec();
    header[2] = 0xff; // inside the name "x"
    let err = io::load_tensors_from_bytes::<f32>(&craft(&header, &[0; 4])).unwrap_err();
    assert!(matches!(err, Error::Format { path: None, .. }), "{err:?}");
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn headers_that_are_not_safetensors_are_errors() {
    let cases: [&[u8]; 8] = [
        b"",
        b"[]",
        b"{",
        b"{}}",
        br#"{"x":{"dtype":"F32","shape":[1]}}"#,
        br#"{"x":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}"#,
        br#"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
        br#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
    ];
    for header in cases {
        assert_format_error(io::load_tensors_from_bytes(&craft(header, &[0; 8])), &String::from_utf8_lossy(header));
    }
    // Zero-sized tensors, on the other hand, are fine.
    let ok = craft(br#"{"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}}"#, &[]);
    assert_eq!(io::load_tensors_from_bytes::<f32>(&ok).unwrap()[0].1.shape(), &[0, 4]);
}

#[test]
fn a_missing_file_is_an_io_error() {
    let dir = Scratch::new("missing_file");
    let path = dir.path("nope.safetensors");
    let err = io::load_tensors::<f32>(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path: p, source, .. } if *p == path && source.kind() == std::io::ErrorKind::NotFound)
    );
    assert!(matches!(
        io::load_model(&Linear::<f32>::new(1, 1, &mut StdRng::seed_from_u64(0)), &path),
        Err(Error::Io { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = io::load_tensors_from_bytes::<f32>(&bytes);
    }

    #[test]
    fn corrupted_files_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = sample_bytes();
        for (i, v) in edits {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        if let Ok(tensors) = io::load_tensors_from_bytes::<f32>(&bytes) {
            prop_assert_eq!(tensors.len(), 2);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Saving: invalid names and failures
// ---------------------------------------------------------------------------------------------

#[test]
fn duplicate_and_reserved_names_are_rejected_and_nothing_is_written() {
    let dir = Scratch::new("names");
    let path = dir.path("t.safetensors");
    let t = randn::<f32>(&[2], 1);
    let dup = named(&[("a", t.clone()), ("b", t.clone()), ("a", t.clone())]);
    assert!(matches!(io::save_tensors(&path, &dup, &[]), Err(Error::InvalidName { name, .. }) if name == "a"));
    let reserved = named(&[("__metadata__", t.clone())]);
    assert!(matches!(io::save_tensors(&path, &reserved, &[]), Err(Error::InvalidName { .. })));
    let meta = [("k".to_string(), "1".to_string()), ("k".to_string(), "2".to_string())];
    assert!(matches!(
        io::save_tensors(&path, &named(&[("a", t)]), &meta),
        Err(Error::InvalidName { kind: "metadata key", .. })
    ));
    assert!(dir.entries().is_empty());
}

#[test]
fn saving_into_a_missing_directory_is_an_io_error() {
    let dir = Scratch::new("missing_dir");
    let path = dir.path("no/such/dir/t.safetensors");
    let err = io::save_tensors(&path, &named(&[("a", randn::<f32>(&[2], 1))]), &[]).unwrap_err();
    assert!(matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound), "{err:?}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    assert!(dir.entries().is_empty());
}

#[test]
fn a_failed_save_keeps_the_previous_file() {
    let dir = Scratch::new("failed_save");
    let path = dir.path("model.safetensors");
    let old = named(&[("w", randn::<f32>(&[3, 3], 1))]);
    io::save_tensors(&path, &old, &[]).unwrap();
    let new = named(&[("w", randn::<f32>(&[3, 3], 2))]);

    // The temporary file cannot be created: a directory is in its way.
    let tmp = temp_path_of(&path);
    fs::create_dir(&tmp).unwrap();
    let err = io::save_tensors(&path, &new, &[]).unwrap_err();
    assert!(matches!(&err, Error::Io { path: p, .. } if *p == tmp), "{err:?}");
    assert_same(&io::load_tensors::<f32>(&path).unwrap(), &old);
    assert!(tmp.is_dir(), "the save removed a directory it did not create");
    fs::remove_dir(&tmp).unwrap();

    // The rename fails (the target is a non-empty directory): the temporary file is removed.
    let blocked = dir.path("blocked.safetensors");
    fs::create_dir(&blocked).unwrap();
    fs::write(blocked.join("keep"), b"x").unwrap();
    let err = io::save_tensors(&blocked, &new, &[]).unwrap_err();
    assert!(matches!(&err, Error::Io { path: p, .. } if *p == blocked), "{err:?}");
    assert_eq!(dir.entries(), ["blocked.safetensors", "model.safetensors"]);
    assert_eq!(fs::read(blocked.join("keep")).unwrap(), b"x");

    // Once the way is clear the save goes through and leaves nothing behind.
    io::save_tensors(&path, &new, &[]).unwrap();
    assert_same(&io::load_tensors::<f32>(&path).unwrap(), &new);
    assert_eq!(dir.entries(), ["blocked.safetensors", "model.safetensors"]);
}

#[test]
fn a_stale_temporary_file_from_an_interrupted_save_is_replaced() {
    let dir = Scratch::new("stale_tmp");
    let path = dir.path("t.safetensors");
    fs::write(temp_path_of(&path), b"half a file").unwrap();
    let tensors = named(&[("w", randn::<f32>(&[4], 1))]);
    io::save_tensors(&path, &tensors, &[]).unwrap();
    assert_same(&io::load_tensors::<f32>(&path).unwrap(), &tensors);
    assert_eq!(dir.entries(), ["t.safetensors"]);
}

#[test]
fn concurrent_saves_to_one_path_leave_a_valid_file() {
    let dir = Scratch::new("concurrent");
    let path = dir.path("t.safetensors");
    let versions: Vec<_> = (0..8).map(|i| named(&[("w", randn::<f32>(&[64, 64], i))])).collect();
    std::thread::scope(|s| {
        for v in &versions {
            let path = &path;
            s.spawn(move || io::save_tensors(path, v, &[]).unwrap());
        }
    });
    let back = io::load_tensors::<f32>(&path).unwrap();
    assert!(versions.iter().any(|v| v[0].1.to_vec() == back[0].1.to_vec()));
    assert_eq!(dir.entries(), ["t.safetensors"]);
}
