//! Writes the seed inputs of every fuzz target to `fuzz/seeds/<target>/`: small valid files of
//! each kind, made with the crate's own writers.
//!
//! ```text
//! cd fuzz && cargo run --example make_seeds
//! ```

use std::fs;
use std::path::Path;

use tensorgrad::data::Tokenizer;
use tensorgrad::train::History;
use tensorgrad::{Tensor, io};
use tensorgrad_fuzz::{adam, scratch, sgd, small_model, trained_state};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    // Weight files.
    let named = |pairs: Vec<(&str, Tensor<f32>)>| -> Vec<(String, Tensor<f32>)> {
        pairs.into_iter().map(|(n, t)| (n.to_string(), t)).collect()
    };
    let small = named(vec![
        ("a", Tensor::from_vec(vec![1.0, -2.5, 0.0, f32::NAN, f32::INFINITY, -0.0], &[2, 3])),
        ("b.weight", Tensor::from_vec(vec![0.25, 0.5, 0.75, 1.0], &[4])),
        ("empty", Tensor::zeros(&[0, 3])),
        ("scalar", Tensor::scalar(3.0)),
    ]);
    let meta = [("format".to_string(), "pt".to_string())];
    write("load_tensors", "f32_with_metadata", &io::save_tensors_to_bytes(&small, &meta).unwrap());
    write("load_tensors", "no_tensors", &io::save_tensors_to_bytes::<f32>(&[], &[]).unwrap());
    let f64s = vec![("x".to_string(), Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3, 1]))];
    write("load_tensors", "f64", &io::save_tensors_to_bytes(&f64s, &[]).unwrap());

    // A model file for the fixed model of the `load_model` target.
    let model = small_model(1);
    let model_bytes = io::save_tensors_to_bytes(&tensorgrad::nn::Module::named_parameters(&model), &meta).unwrap();
    write("load_model", "small_model", &model_bytes);
    write("load_tensors", "small_model", &model_bytes);

    // Optimizer states.
    write("optimizer_state", "adam_2_steps", &io::save_tensors_to_bytes(&trained_state(adam, 2), &[]).unwrap());
    write("optimizer_state", "sgd_1_step", &io::save_tensors_to_bytes(&trained_state(sgd, 1), &[]).unwrap());
    let mut partial = trained_state(adam, 1);
    partial.retain(|(n, _)| n.starts_with("0."));
    write("optimizer_state", "adam_param_0_only", &io::save_tensors_to_bytes(&partial, &[]).unwrap());

    // Vocabularies.
    let vocab = |t: &Tokenizer, name: &str| {
        let path = scratch(name);
        t.save(&path).unwrap();
        write("tokenizer", name, &fs::read(&path).unwrap());
        fs::remove_file(&path).unwrap();
    };
    let texts = ["The cat sat on the mat.", "The dog ate my homework!", "Tab\tand back\\slash"];
    let mut plain = Tokenizer::new();
    plain.fit_on_texts(texts);
    vocab(&plain, "plain.txt");
    let mut capped = Tokenizer::new().with_oov_token("<OOV>").with_num_words(5).with_filters("").with_lower(false);
    capped.fit_on_texts(texts);
    vocab(&capped, "oov_capped.txt");

    // Labelled datasets (each target reads the bytes both as TSV and as CSV).
    write("labelled", "data.tsv", b"label\ttext\n1\tA \"great\" film.\n0\tDull.\n\n1\tFine\r\n");
    write("labelled", "data.csv", b"id,text,label\n1,\"Commas, and\nnewlines\",1\n2,\"She said \"\"no\"\"\",0.5\n");

    // Histories.
    let mut h = History::new();
    h.push_epoch(&[("loss".into(), 0.9), ("accuracy".into(), 0.5)], 1.5);
    h.push_epoch(&[("loss".into(), 0.5), ("val_loss".into(), f64::INFINITY)], 1e-7);
    h.push_epoch(&[("loss".into(), f64::NAN), ("val_loss".into(), -0.0)], 2e17);
    write("history", "history.json", h.to_json().as_bytes());
    let path = scratch("history.csv");
    h.save_csv(&path).unwrap();
    write("history", "history.csv", &fs::read(&path).unwrap());
    fs::remove_file(&path).unwrap();
}
