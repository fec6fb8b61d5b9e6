//! # Sequence classification with a Hugging Face BERT checkpoint
//!
//! Loads a directory written by `BertForSequenceClassification.save_pretrained` and classifies
//! one input: token ids, or a text with the `tokenizers` feature and a `tokenizer.json` in the
//! directory.
//!
//! ```sh
//! cargo run --release --example bert_classify -- --model-dir tests/fixtures/hf/bert-tiny --input-ids 2,11,25,7,3
//! cargo run --release --example bert_classify -- --model-dir tests/fixtures/hf/bert-tiny --input-ids 2,11,3,19,3 --token-type-ids 0,0,0,1,1
//! cargo run --release --features tokenizers --example bert_classify -- --model-dir tests/fixtures/hf/bert-tiny --text "the film was funny"
//! ```
//!
//! Flags: `--model-dir DIR` (required), `--input-ids 1,2,3` or `--text TEXT` (needs the
//! `tokenizers` feature), `--token-type-ids 0,0,1` (optional, as many as the ids), `--f64`.
//!
//! The last line is machine-readable: `label=<id> probs=<p0>,<p1>,...` (softmax of the logits).

use std::process::ExitCode;
use std::time::Instant;

use tensorgrad::models::bert::BertForSequenceClassification;
use tensorgrad::{Element, Tensor, no_grad};

struct Args {
    model_dir: String,
    input_ids: Option<Vec<usize>>,
    token_type_ids: Option<Vec<usize>>,
    text: Option<String>,
    f64: bool,
}

fn ids(flag: &str, text: &str) -> Result<Vec<usize>, String> {
    text.split(',').map(|s| s.trim().parse::<usize>().map_err(|e| format!("{flag}: {e}"))).collect()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { model_dir: String::new(), input_ids: None, token_type_ids: None, text: None, f64: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model-dir" => args.model_dir = value()?,
            "--input-ids" => args.input_ids = Some(ids(&flag, &value()?)?),
            "--token-type-ids" => args.token_type_ids = Some(ids(&flag, &value()?)?),
            "--text" => args.text = Some(value()?),
            "--f64" => args.f64 = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.model_dir.is_empty() {
        return Err("--model-dir is required".to_string());
    }
    if args.input_ids.is_none() && args.text.is_none() {
        return Err("give --input-ids 2,11,3 or --text TEXT".to_string());
    }
    Ok(args)
}

#[cfg(feature = "tokenizers")]
fn tokenize(dir: &str, text: &str) -> Result<(Vec<usize>, Vec<usize>), String> {
    let tokenizer = tensorgrad::models::load_tokenizer(dir).map_err(|e| e.to_string())?;
    let encoding = tokenizer.encode(text, true).map_err(|e| e.to_string())?;
    let to_usize = |v: &[u32]| v.iter().map(|&i| i as usize).collect();
    Ok((to_usize(encoding.get_ids()), to_usize(encoding.get_type_ids())))
}

#[cfg(not(feature = "tokenizers"))]
fn tokenize(_dir: &str, _text: &str) -> Result<(Vec<usize>, Vec<usize>), String> {
    Err("--text needs the `tokenizers` feature (cargo run --features tokenizers ...); use --input-ids".to_string())
}

fn run<E: Element>(args: &Args) -> Result<(), String> {
    let start = Instant::now();
    let model: BertForSequenceClassification<E> =
        BertForSequenceClassification::from_pretrained(&args.model_dir).map_err(|e| e.to_string())?;
    let c = model.config();
    println!(
        "loaded {} ({} layers, {} heads, hidden {}, {} labels) in {:.3} s",
        args.model_dir,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.hidden_size,
        c.num_labels,
        start.elapsed().as_secs_f64()
    );
    let (input_ids, types) = match (&args.input_ids, &args.text) {
        (Some(ids), _) => (ids.clone(), args.token_type_ids.clone().unwrap_or_else(|| vec![0; ids.len()])),
        (None, Some(text)) => tokenize(&args.model_dir, text)?,
        (None, None) => unreachable!("checked in parse_args"),
    };
    if types.len() != input_ids.len() {
        return Err(format!("{} token type ids for {} input ids", types.len(), input_ids.len()));
    }
    let check = |what: &str, v: &[usize], limit: usize| match v.iter().find(|&&i| i >= limit) {
        Some(i) => Err(format!("{what} {i} is out of range (the model has {limit})")),
        None => Ok(()),
    };
    check("input id", &input_ids, c.vocab_size)?;
    check("token type id", &types, c.type_vocab_size)?;
    if input_ids.is_empty() || input_ids.len() > c.max_position_embeddings {
        return Err(format!("{} tokens; the model takes 1 to {}", input_ids.len(), c.max_position_embeddings));
    }
    println!("input_ids={input_ids:?}");
    let as_tensor = |v: &[usize]| Tensor::<E>::from_vec(v.iter().map(|&i| E::of(i as f64)).collect(), &[1, v.len()]);
    let start = Instant::now();
    let logits = no_grad(|| model.logits(&as_tensor(&input_ids), Some(&as_tensor(&types)), None));
    let probs: Vec<f64> = logits.softmax(1).to_vec().iter().map(|p| p.to_f64().unwrap_or(f64::NAN)).collect();
    println!("forward pass in {:.4} s", start.elapsed().as_secs_f64());
    let label = (0..probs.len()).fold(0, |best, i| if probs[i] > probs[best] { i } else { best });
    if let Some(name) = c.id2label.get(&label) {
        println!("predicted: {name}");
    }
    let shown: Vec<String> = probs.iter().map(|p| format!("{p:.6}")).collect();
    println!("label={label} probs={}", shown.join(","));
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!(
                "usage: bert_classify --model-dir DIR (--input-ids 2,11,3 | --text TEXT) [--token-type-ids 0,0,0] [--f64]"
            );
            return ExitCode::from(2);
        }
    };
    let result = if args.f64 { run::<f64>(&args) } else { run::<f32>(&args) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
