//! `models::gpt2` and `models::bert` against Hugging Face `transformers`: tiny random models
//! saved with `save_pretrained` and their outputs, made by tests/fixtures/hf/make_fixtures.py
//! (no Python runs here).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tensorgrad::models::bert::{BertConfig, BertForSequenceClassification, BertModel};
use tensorgrad::models::gpt2::{GenerateOptions, Gpt2Config, Gpt2LMHeadModel, Gpt2Model, KvCache};
use tensorgrad::nn::Module;
use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
use tensorgrad::train::{FitOptions, Trainer};
use tensorgrad::{Element, Error, Tensor, io, loss, no_grad};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf")
}

fn gpt2_dir() -> PathBuf {
    fixtures().join("gpt2-tiny")
}

fn bert_dir() -> PathBuf {
    fixtures().join("bert-tiny")
}

/// reference.txt: `name [shape] [values]` per line.
struct Reference(HashMap<String, (Vec<usize>, Vec<f64>)>);

impl Reference {
    fn load() -> Self {
        let text = std::fs::read_to_string(fixtures().join("reference.txt")).unwrap();
        let mut map = HashMap::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (name, rest) = line.split_once(' ').unwrap();
            let (shape, values) = rest.split_at(rest.find(']').unwrap() + 1);
            if name == "versions" {
                continue;
            }
            let shape: Vec<usize> = serde_json::from_str(shape).unwrap();
            let values: Vec<f64> = serde_json::from_str(values.trim()).unwrap();
            let name = name.to_string();
            map.insert(name, (shape, values));
        }
        Reference(map)
    }

    fn tensor<E: Element>(&self, name: &str) -> Tensor<E> {
        let (shape, values) = &self.0[name];
        Tensor::from_vec(values.iter().map(|&v| E::of(v)).collect(), shape)
    }

    fn ids(&self, name: &str) -> Vec<usize> {
        self.0[name].1.iter().map(|&v| v as usize).collect()
    }
}

#[track_caller]
fn assert_close<E: Element>(got: &Tensor<E>, want: &Tensor<E>, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let worst = got
        .to_vec()
        .iter()
        .zip(want.to_vec())
        .map(|(a, b)| (a.to_f64().unwrap() - b.to_f64().unwrap()).abs())
        .fold(0.0, f64::max);
    assert!(worst <= tol, "{what}: largest difference {worst:e} > {tol:e}");
}

fn gpt2_outputs_match<E: Element>(tag: &str, tol: f64) {
    let r = Reference::load();
    let model: Gpt2LMHeadModel<E> = Gpt2LMHeadModel::from_pretrained(gpt2_dir()).unwrap();
    let (ids, mask) = (r.tensor::<E>("gpt2_ids"), r.tensor::<E>("gpt2_mask"));
    no_grad(|| {
        assert_close(&model.logits(&ids, Some(&mask)), &r.tensor(&format!("gpt2_logits_{tag}")), tol, "logits");
        let first = ids.narrow(0, 0, 1);
        assert_close(&model.forward(&first), &r.tensor(&format!("gpt2_logits_nomask_{tag}")), tol, "logits, no mask");
        let hidden = model.transformer().forward_many(&[&ids, &mask]);
        assert_close(&hidden, &r.tensor(&format!("gpt2_hidden_{tag}")), tol, "hidden states");
    });
    // With gradients recorded (the unpacked path) the values are the same.
    assert_close(&model.logits(&ids, Some(&mask)), &r.tensor(&format!("gpt2_logits_{tag}")), tol, "logits, graph");

    let greedy = GenerateOptions { max_new_tokens: 8, ..Default::default() };
    let prompt = r.ids("gpt2_prompt");
    assert_eq!(model.generate(&prompt, &greedy).unwrap(), r.ids(&format!("gpt2_greedy_{tag}")), "greedy ids");
}

#[test]
fn gpt2_matches_transformers_f32() {
    gpt2_outputs_match::<f32>("f32", 1e-4);
}

#[test]
fn gpt2_matches_transformers_f64() {
    gpt2_outputs_match::<f64>("f64", 1e-10);
}

#[test]
fn gpt2_cached_generation_equals_recomputing() {
    let model: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(gpt2_dir()).unwrap();
    let prompt = [5, 17, 3, 40, 22];
    let greedy = GenerateOptions { max_new_tokens: 12, ..Default::default() };
    let cached = model.generate(&prompt, &greedy).unwrap();
    let full = model.generate(&prompt, &GenerateOptions { use_cache: false, ..greedy.clone() }).unwrap();
    assert_eq!(cached, full);
    assert_eq!(cached.len(), prompt.len() + 12);
    assert_eq!(&cached[..prompt.len()], prompt);

    // Step by step through the cache: each step's logits equal the full sequence's.
    let as_ids = |ids: &[usize]| Tensor::from_vec(ids.iter().map(|&i| i as f32).collect(), &[1, ids.len()]);
    let all = model.logits(&as_ids(&cached), None);
    let mut cache = KvCache::new();
    let first = model.logits_with_cache(&as_ids(&cached[..3]), None, &mut cache);
    assert_close(&first, &all.narrow(1, 0, 3), 1e-5, "prompt through the cache");
    for t in 3..cached.len() {
        let step = model.logits_with_cache(&as_ids(&cached[t..t + 1]), None, &mut cache);
        assert_eq!(cache.len(), t + 1);
        assert_close(&step, &all.narrow(1, t, 1), 1e-5, "one cached step");
    }
    // A padding mask over cached and new positions: padding never changes the real tokens.
    let mut cache = KvCache::new();
    let ids = as_ids(&[5, 17, 0]);
    let mask = Tensor::from_vec(vec![1.0, 1.0, 0.0], &[1, 3]);
    model.logits_with_cache(&ids, Some(&mask), &mut cache);
    let next =
        model.logits_with_cache(&as_ids(&[3]), Some(&Tensor::from_vec(vec![1.0, 1.0, 0.0, 1.0], &[1, 4])), &mut cache);
    // Positions differ from [5, 17, 3] (3 sits at position 3), so compare with an explicit run.
    let explicit = model.logits(&as_ids(&[5, 17, 0, 3]), Some(&Tensor::from_vec(vec![1.0, 1.0, 0.0, 1.0], &[1, 4])));
    assert_close(&next, &explicit.narrow(1, 3, 1), 1e-5, "masked cached step");
}

#[test]
fn gpt2_sampling_is_seeded() {
    let model: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(gpt2_dir()).unwrap();
    let prompt = [5, 17, 3];
    let options = |seed| GenerateOptions {
        max_new_tokens: 10,
        do_sample: true,
        temperature: 1.5,
        top_k: Some(20),
        top_p: 0.95,
        seed,
        ..Default::default()
    };
    let a = model.generate(&prompt, &options(1)).unwrap();
    assert_eq!(a, model.generate(&prompt, &options(1)).unwrap());
    let runs: Vec<Vec<usize>> = (2..6).map(|s| model.generate(&prompt, &options(s)).unwrap()).collect();
    assert!(runs.iter().any(|r| *r != a), "different seeds should draw different tokens");
    // Cached and uncached sampling draw the same tokens for a seed.
    let uncached = GenerateOptions { use_cache: false, ..options(1) };
    assert_eq!(model.generate(&prompt, &uncached).unwrap(), a);
    // top_k = 1 is greedy.
    let greedy = model.generate(&prompt, &GenerateOptions { max_new_tokens: 10, ..Default::default() }).unwrap();
    assert_eq!(model.generate(&prompt, &GenerateOptions { top_k: Some(1), ..options(9) }).unwrap(), greedy);
    // eos stops early.
    let eos = greedy[4];
    let stopped =
        model.generate(&prompt, &GenerateOptions { max_new_tokens: 10, eos_token_id: Some(eos), ..Default::default() });
    assert_eq!(stopped.unwrap(), greedy[..5]);
}

#[test]
fn gpt2_generate_rejects_bad_arguments() {
    let model: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(gpt2_dir()).unwrap();
    let bad =
        |prompt: &[usize], o: GenerateOptions| matches!(model.generate(prompt, &o), Err(Error::InvalidArgument { .. }));
    assert!(bad(&[], GenerateOptions::default()));
    assert!(bad(&[64], GenerateOptions::default()));
    assert!(bad(&[1, 2], GenerateOptions { max_new_tokens: 31, ..Default::default() }));
    assert!(bad(&[1], GenerateOptions { do_sample: true, temperature: 0.0, ..Default::default() }));
    assert!(bad(&[1], GenerateOptions { do_sample: true, top_p: 0.0, ..Default::default() }));
    assert!(bad(&[1], GenerateOptions { do_sample: true, top_k: Some(0), ..Default::default() }));
}

#[test]
fn gpt2_names_are_the_checkpoints_and_round_trip() {
    let model: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(gpt2_dir()).unwrap();
    let mut names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
    let mut file: Vec<String> =
        io::load_tensors::<f32>(gpt2_dir().join("model.safetensors")).unwrap().into_iter().map(|(n, _)| n).collect();
    names.sort();
    file.sort();
    assert_eq!(names, file);
    assert!(!names.iter().any(|n| n.starts_with("lm_head")));
    let shapes: HashMap<String, Vec<usize>> =
        model.named_parameters().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
    assert_eq!(shapes["transformer.h.0.attn.c_attn.weight"], [32, 96]); // Conv1D: [in, out]

    // save_model writes a checkpoint from_pretrained reads back (as Python's would).
    let dir = std::env::temp_dir().join(format!("tensorgrad-models-gpt2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(gpt2_dir().join("config.json"), dir.join("config.json")).unwrap();
    io::save_model(&model, dir.join("model.safetensors")).unwrap();
    let back: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(&dir).unwrap();
    let ids = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]);
    assert_eq!(back.forward(&ids).to_vec(), model.forward(&ids).to_vec());
    // A GPT2Model checkpoint (no `transformer.` prefix) loads into both.
    let base: Gpt2Model = Gpt2Model::from_pretrained(gpt2_dir()).unwrap();
    assert_eq!(base.named_parameters()[0].0, "wte.weight");
    io::save_model(&base, dir.join("model.safetensors")).unwrap();
    let from_base: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(&dir).unwrap();
    assert_eq!(from_base.forward(&ids).to_vec(), model.forward(&ids).to_vec());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn gpt2_adam_step_reduces_the_loss_and_moves_the_tied_head() {
    let mut model: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(gpt2_dir()).unwrap();
    model.train();
    let seq = [5usize, 17, 3, 40, 22, 9, 12, 7];
    let input = Tensor::from_vec(seq[..7].iter().map(|&i| i as f32).collect(), &[1, 7]);
    let targets: Vec<usize> = seq[1..].to_vec();
    let lm_loss = |m: &Gpt2LMHeadModel| {
        let logits = m.forward(&input).reshape(&[7, 64]);
        loss::cross_entropy(&logits, &targets, 0.0, loss::Reduction::Mean)
    };
    let wte = model.transformer().wte().weight().value();
    let before_wte = wte.to_vec();
    model.eval();
    let before = lm_loss(&model).item();
    model.train();
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 1e-2, ..Default::default() });
    for _ in 0..3 {
        let l = lm_loss(&model);
        let grads = l.backward();
        // The embedding gets the gradient of both uses (lookup and head).
        assert!(grads.get(&wte).is_some());
        opt.step(&grads);
    }
    model.eval();
    let after = lm_loss(&model).item();
    assert!(after < before, "loss {before} → {after}");
    assert_ne!(wte.to_vec(), before_wte, "the tied embedding moved");
    // The head reads the updated embedding (no stale packed copy): eval logits use the new wte.
    let graph = model.forward(&input).to_vec();
    let packed = no_grad(|| model.forward(&input)).to_vec();
    assert!(graph.iter().zip(&packed).all(|(a, b)| (a - b).abs() < 1e-5));
}

fn bert_outputs_match<E: Element>(tag: &str, tol: f64) {
    let r = Reference::load();
    let model: BertForSequenceClassification<E> = BertForSequenceClassification::from_pretrained(bert_dir()).unwrap();
    let (ids, types, mask) =
        (r.tensor::<E>("bert_ids"), r.tensor::<E>("bert_token_type_ids"), r.tensor::<E>("bert_mask"));
    let (hidden, pooled) = model.bert().forward_full(&ids, Some(&types), Some(&mask));
    assert_close(&hidden, &r.tensor(&format!("bert_last_hidden_{tag}")), tol, "last hidden state");
    assert_close(&pooled, &r.tensor(&format!("bert_pooled_{tag}")), tol, "pooled output");
    let logits = no_grad(|| model.forward_many(&[&ids, &mask, &types]));
    assert_close(&logits, &r.tensor(&format!("bert_logits_{tag}")), tol, "classifier logits");
    let text = r.tensor::<E>("bert_tokenized");
    let text = text.reshape(&[1, text.numel()]);
    assert_close(&model.forward(&text), &r.tensor(&format!("bert_logits_text_{tag}")), tol, "logits, no mask");
    // BertModel alone loads the same checkpoint (the `bert.` prefix and the head dropped).
    let base: BertModel<E> = BertModel::from_pretrained(bert_dir()).unwrap();
    assert_eq!(base.named_parameters()[0].0, "embeddings.word_embeddings.weight");
    assert_close(&base.forward_many(&[&ids, &mask, &types]), &hidden, 0.0, "BertModel");
}

#[test]
fn bert_matches_transformers_f32() {
    bert_outputs_match::<f32>("f32", 1e-4);
}

#[test]
fn bert_matches_transformers_f64() {
    bert_outputs_match::<f64>("f64", 1e-10);
}

#[test]
fn bert_names_are_the_checkpoints() {
    let model: BertForSequenceClassification = BertForSequenceClassification::from_pretrained(bert_dir()).unwrap();
    let mut names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
    let mut file: Vec<String> =
        io::load_tensors::<f32>(bert_dir().join("model.safetensors")).unwrap().into_iter().map(|(n, _)| n).collect();
    names.sort();
    file.sort();
    assert_eq!(names, file);
    assert_eq!(model.config().num_labels, 3);
    assert_eq!(model.config().id2label[&0], "negative");
}

#[test]
fn bert_trains_with_trainer_and_dropout_acts_in_train_mode() {
    let mut model: BertForSequenceClassification = BertForSequenceClassification::from_pretrained(bert_dir()).unwrap();
    let x = Tensor::from_vec(
        [[2, 11, 25, 7, 3], [2, 40, 6, 19, 3], [2, 8, 9, 10, 3], [2, 30, 31, 32, 3]]
            .concat()
            .iter()
            .map(|&i| i as f32)
            .collect(),
        &[4, 5],
    );
    let y = Tensor::from_vec(vec![0.0f32, 2.0, 1.0, 2.0], &[4]);
    let ce = |p: &Tensor, t: &Tensor| loss::cross_entropy(p, t, 0.0, loss::Reduction::Mean);
    let before = no_grad(|| ce(&model.forward(&x), &y)).item();

    model.train();
    let a = model.forward(&x).to_vec();
    let b = model.forward(&x).to_vec();
    assert_ne!(a, b, "dropout draws new masks in train mode");
    model.eval();
    assert_eq!(model.forward(&x).to_vec(), model.forward(&x).to_vec());

    let opt = Adam::new(model.named_parameters(), AdamConfig { lr: 1e-3, ..Default::default() });
    let mut trainer = Trainer::new(&mut model, opt, ce);
    let options = FitOptions { epochs: 5, batch_size: 4, verbose: false, ..Default::default() };
    let history = trainer.fit(&x, &y, &options).unwrap();
    let losses = history.get("loss").unwrap().to_vec();
    drop(trainer);
    model.eval();
    let after = no_grad(|| ce(&model.forward(&x), &y)).item();
    assert!(after < before, "loss {before} → {after} (epochs {losses:?})");
}

#[test]
fn configs_parse_and_reject_unsupported_values() {
    let g = Gpt2Config::from_file(gpt2_dir()).unwrap();
    assert_eq!((g.vocab_size, g.n_positions, g.n_embd, g.n_layer, g.n_head), (64, 32, 32, 2, 2));
    assert_eq!(g.activation_function, "gelu_new");
    let b = BertConfig::from_file(bert_dir().join("config.json")).unwrap();
    assert_eq!((b.hidden_size, b.num_hidden_layers, b.intermediate_size, b.num_labels), (32, 2, 64, 3));
    let config_err = |r: Result<Gpt2Config, Error>| matches!(r, Err(Error::Config { .. }));
    assert!(config_err(Gpt2Config::from_json_str("{")));
    assert!(config_err(Gpt2Config::from_json_str(r#"{"n_embd": "wide"}"#)));
    assert!(config_err(Gpt2Config::from_json_str(r#"{"n_embd": 30, "n_head": 4}"#)));
    assert!(config_err(Gpt2Config::from_json_str(r#"{"model_type": "llama"}"#)));
    assert!(config_err(Gpt2Config::from_json_str(r#"{"tie_word_embeddings": false}"#)));
    assert!(config_err(Gpt2Config::from_json_str(r#"{"attn_pdrop": 1.5}"#)));
    let bert_err = |r: Result<BertConfig, Error>| matches!(r, Err(Error::Config { .. }));
    assert!(bert_err(BertConfig::from_json_str(r#"{"hidden_act": "mish"}"#)));
    assert!(bert_err(BertConfig::from_json_str(r#"{"is_decoder": true}"#)));
    assert!(bert_err(BertConfig::from_json_str(r#"{"id2label": {"0": "a", "2": "c"}}"#)));
    assert!(bert_err(BertConfig::from_json_str(r#"{"num_hidden_layers": -1}"#)));
    let msg = Gpt2Config::from_json_str(r#"{"activation_function": "mish"}"#).unwrap_err().to_string();
    assert!(msg.contains("mish") && msg.contains("gelu_new"), "{msg}");
}

/// A temporary copy of a fixture directory, removed on drop.
struct TempModel(PathBuf);

impl TempModel {
    fn copy(from: &Path, tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tensorgrad-models-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["config.json", "model.safetensors"] {
            std::fs::copy(from.join(name), dir.join(name)).unwrap();
        }
        TempModel(dir)
    }
}

impl Drop for TempModel {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

#[test]
fn bad_model_directories_give_typed_errors() {
    // No directory, no weights, no config.
    let missing = fixtures().join("no-such-model");
    assert!(matches!(Gpt2LMHeadModel::<f32>::from_pretrained(&missing), Err(Error::Io { .. })));
    let dir = TempModel::copy(&gpt2_dir(), "bad-gpt2");
    std::fs::remove_file(dir.0.join("model.safetensors")).unwrap();
    let err = Gpt2LMHeadModel::<f32>::from_pretrained(&dir.0).unwrap_err();
    assert!(matches!(&err, Error::Io { path, .. } if path.ends_with("model.safetensors")), "{err}");

    // Corrupt config.
    std::fs::write(dir.0.join("config.json"), "{\"n_embd\": 32,").unwrap();
    assert!(matches!(Gpt2LMHeadModel::<f32>::from_pretrained(&dir.0), Err(Error::Config { path: Some(_), .. })));

    // Weights of another shape: the config says n_embd 16; every mis-shaped tensor is named.
    let dir = TempModel::copy(&gpt2_dir(), "shape-gpt2");
    let config =
        std::fs::read_to_string(dir.0.join("config.json")).unwrap().replace("\"n_embd\": 32", "\"n_embd\": 16");
    std::fs::write(dir.0.join("config.json"), config).unwrap();
    match Gpt2LMHeadModel::<f32>::from_pretrained(&dir.0).unwrap_err() {
        Error::StateMismatch { mismatched, missing, unexpected, .. } => {
            assert!(missing.is_empty() && unexpected.is_empty());
            assert!(
                mismatched
                    .iter()
                    .any(|(n, model, file)| n == "transformer.wte.weight" && model == &[64, 16] && file == &[64, 32])
            );
        }
        other => panic!("expected StateMismatch, got {other}"),
    }
    // One layer more than the file has: its tensors are named as missing.
    let dir = TempModel::copy(&bert_dir(), "layers-bert");
    let config = std::fs::read_to_string(dir.0.join("config.json"))
        .unwrap()
        .replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    std::fs::write(dir.0.join("config.json"), config).unwrap();
    let err = BertForSequenceClassification::<f32>::from_pretrained(&dir.0).unwrap_err();
    assert!(
        matches!(&err, Error::StateMismatch { missing, .. } if missing.contains(&"bert.encoder.layer.2.output.dense.weight".to_string())),
        "{err}"
    );
    assert!(err.to_string().contains("bert.encoder.layer.2.attention.self.query.weight"), "{err}");

    // Truncated weights.
    let dir = TempModel::copy(&bert_dir(), "trunc-bert");
    let bytes = std::fs::read(dir.0.join("model.safetensors")).unwrap();
    std::fs::write(dir.0.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(BertModel::<f32>::from_pretrained(&dir.0), Err(Error::Format { .. })));

    // A classifier checkpoint without its head (an encoder alone) names the head as missing.
    let dir = TempModel::copy(&bert_dir(), "base-bert");
    let encoder: BertModel = BertModel::from_pretrained(bert_dir()).unwrap();
    io::save_model(&encoder, dir.0.join("model.safetensors")).unwrap();
    let err = BertForSequenceClassification::<f32>::from_pretrained(&dir.0).unwrap_err();
    assert!(
        matches!(&err, Error::StateMismatch { missing, .. } if missing == &["classifier.weight", "classifier.bias"]),
        "{err}"
    );
    assert!(BertModel::<f32>::from_pretrained(&dir.0).is_ok());
}

#[cfg(feature = "tokenizers")]
#[test]
fn tokenizers_feature_reads_the_fixture_tokenizers() {
    let r = Reference::load();
    let gpt2 = tensorgrad::models::load_tokenizer(gpt2_dir()).unwrap();
    let ids: Vec<usize> =
        gpt2.encode("the film was funny", false).unwrap().get_ids().iter().map(|&i| i as usize).collect();
    assert_eq!(ids, r.ids("gpt2_tokenized"));
    let bert = tensorgrad::models::load_tokenizer(bert_dir().join("tokenizer.json")).unwrap();
    let ids: Vec<usize> =
        bert.encode("the film was funny", true).unwrap().get_ids().iter().map(|&i| i as usize).collect();
    assert_eq!(ids, r.ids("bert_tokenized"));
    assert!(matches!(tensorgrad::models::load_tokenizer(fixtures()), Err(Error::Io { .. })));
    let bad = std::env::temp_dir().join(format!("tensorgrad-bad-tokenizer-{}.json", std::process::id()));
    std::fs::write(&bad, "{\"model\": 3}").unwrap();
    assert!(matches!(tensorgrad::models::load_tokenizer(&bad), Err(Error::Tokenizer { .. })));
    std::fs::remove_file(&bad).ok();
}

#[test]
fn sharded_and_double_precision_checkpoints_load() {
    let model: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(gpt2_dir()).unwrap();
    let ids = Tensor::from_vec(vec![5.0, 17.0, 3.0, 40.0], &[1, 4]);
    let want = model.forward(&ids).to_vec();

    // Two shards and an index, as save_pretrained writes large models.
    let dir = TempModel::copy(&gpt2_dir(), "sharded-gpt2");
    std::fs::remove_file(dir.0.join("model.safetensors")).unwrap();
    let params = model.named_parameters();
    let (a, b) = params.split_at(params.len() / 2);
    io::save_tensors(dir.0.join("model-00001-of-00002.safetensors"), a, &[]).unwrap();
    io::save_tensors(dir.0.join("model-00002-of-00002.safetensors"), b, &[]).unwrap();
    let map: Vec<String> = params
        .iter()
        .enumerate()
        .map(|(i, (n, _))| format!("\"{n}\": \"model-0000{}-of-00002.safetensors\"", if i < a.len() { 1 } else { 2 }))
        .collect();
    let index = format!("{{\"metadata\": {{}}, \"weight_map\": {{{}}}}}", map.join(", "));
    std::fs::write(dir.0.join("model.safetensors.index.json"), index).unwrap();
    let sharded: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(&dir.0).unwrap();
    assert_eq!(sharded.forward(&ids).to_vec(), want);

    // An F64 checkpoint (`model.double().save_pretrained`) loads into f32 and f64 models.
    let dir = TempModel::copy(&gpt2_dir(), "double-gpt2");
    let double: Gpt2LMHeadModel<f64> = Gpt2LMHeadModel::from_pretrained(gpt2_dir()).unwrap();
    io::save_model(&double, dir.0.join("model.safetensors")).unwrap();
    let back: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(&dir.0).unwrap();
    assert_eq!(back.forward(&ids).to_vec(), want);
    let back64: Gpt2LMHeadModel<f64> = Gpt2LMHeadModel::from_pretrained(&dir.0).unwrap();
    let ids64 = Tensor::from_vec(vec![5.0, 17.0, 3.0, 40.0], &[1, 4]);
    assert_close(&back64.forward(&ids64), &double.forward(&ids64), 0.0, "f64 round trip");
}
