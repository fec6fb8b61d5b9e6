//! # Text generation with a Hugging Face GPT-2 checkpoint
//!
//! Loads a directory written by `GPT2LMHeadModel.save_pretrained` (`config.json` and
//! `model.safetensors`) and continues a prompt, greedily or by sampling, with a key/value cache.
//!
//! ```sh
//! cargo run --release --example gpt2_generate -- --model-dir tests/fixtures/hf/gpt2-tiny --prompt-ids 5,17,3,40 --max-new-tokens 8
//! cargo run --release --example gpt2_generate -- --model-dir tests/fixtures/hf/gpt2-tiny --prompt-ids 5,17 \
//!     --max-new-tokens 10 --temperature 0.8 --top-k 20 --top-p 0.9 --seed 3
//! # With a tokenizer.json in the directory:
//! cargo run --release --features tokenizers --example gpt2_generate -- --model-dir tests/fixtures/hf/gpt2-tiny --prompt "the film was"
//! ```
//!
//! Flags: `--model-dir DIR` (required), `--prompt-ids 1,2,3` or `--prompt TEXT` (needs the
//! `tokenizers` feature), `--max-new-tokens N` (default 20), `--temperature T`, `--top-k K`,
//! `--top-p P` (giving any of these three samples; otherwise greedy), `--seed S` (default 0),
//! `--no-cache` (recompute the whole sequence for each token). `--f64` runs in double precision.
//!
//! The last line is machine-readable: `generated_ids=5,17,3,40,...` (prompt included).

use std::process::ExitCode;
use std::time::Instant;

use tensorgrad::Element;
use tensorgrad::models::gpt2::{GenerateOptions, Gpt2LMHeadModel};

struct Args {
    model_dir: String,
    prompt_ids: Option<Vec<usize>>,
    prompt: Option<String>,
    options: GenerateOptions,
    f64: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model_dir: String::new(),
        prompt_ids: None,
        prompt: None,
        options: GenerateOptions::default(),
        f64: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number_error = |e: std::num::ParseIntError| format!("{flag}: {e}");
        let float_error = |e: std::num::ParseFloatError| format!("{flag}: {e}");
        match flag.as_str() {
            "--model-dir" => args.model_dir = value()?,
            "--prompt-ids" => {
                let ids = value()?.split(',').map(|s| s.trim().parse::<usize>()).collect::<Result<Vec<_>, _>>();
                args.prompt_ids = Some(ids.map_err(number_error)?);
            }
            "--prompt" => args.prompt = Some(value()?),
            "--max-new-tokens" => args.options.max_new_tokens = value()?.parse().map_err(number_error)?,
            "--temperature" => {
                args.options.temperature = value()?.parse().map_err(float_error)?;
                args.options.do_sample = true;
            }
            "--top-k" => {
                args.options.top_k = Some(value()?.parse().map_err(number_error)?);
                args.options.do_sample = true;
            }
            "--top-p" => {
                args.options.top_p = value()?.parse().map_err(float_error)?;
                args.options.do_sample = true;
            }
            "--seed" => args.options.seed = value()?.parse().map_err(number_error)?,
            "--no-cache" => args.options.use_cache = false,
            "--f64" => args.f64 = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.model_dir.is_empty() {
        return Err("--model-dir is required".to_string());
    }
    if args.prompt_ids.is_none() && args.prompt.is_none() {
        return Err("give --prompt-ids 1,2,3 or --prompt TEXT".to_string());
    }
    Ok(args)
}

#[cfg(feature = "tokenizers")]
fn tokenize(dir: &str, text: &str) -> Result<(Vec<usize>, Option<tokenizers::Tokenizer>), String> {
    let tokenizer = tensorgrad::models::load_tokenizer(dir).map_err(|e| e.to_string())?;
    let encoding = tokenizer.encode(text, false).map_err(|e| e.to_string())?;
    Ok((encoding.get_ids().iter().map(|&i| i as usize).collect(), Some(tokenizer)))
}

#[cfg(not(feature = "tokenizers"))]
fn tokenize(_dir: &str, _text: &str) -> Result<(Vec<usize>, Option<()>), String> {
    Err("--prompt needs the `tokenizers` feature (cargo run --features tokenizers ...); use --prompt-ids".to_string())
}

fn run<E: Element>(args: &Args) -> Result<(), String> {
    let start = Instant::now();
    let model: Gpt2LMHeadModel<E> = Gpt2LMHeadModel::from_pretrained(&args.model_dir).map_err(|e| e.to_string())?;
    let c = model.config();
    println!(
        "loaded {} ({} layers, {} heads, n_embd {}, vocab {}) in {:.3} s",
        args.model_dir,
        c.n_layer,
        c.n_head,
        c.n_embd,
        c.vocab_size,
        start.elapsed().as_secs_f64()
    );
    let (prompt, tokenizer) = match (&args.prompt_ids, &args.prompt) {
        (Some(ids), _) => (ids.clone(), None),
        (None, Some(text)) => tokenize(&args.model_dir, text)?,
        (None, None) => unreachable!("checked in parse_args"),
    };
    let o = &args.options;
    println!(
        "{} (max_new_tokens {}, seed {}, cache {})",
        if o.do_sample {
            format!("sampling: temperature {}, top_k {:?}, top_p {}", o.temperature, o.top_k, o.top_p)
        } else {
            "greedy".to_string()
        },
        o.max_new_tokens,
        o.seed,
        o.use_cache
    );
    let start = Instant::now();
    let ids = model.generate(&prompt, o).map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    let new = ids.len() - prompt.len();
    println!("generated {new} tokens in {secs:.3} s ({:.1} tokens/s)", new as f64 / secs.max(1e-9));
    #[cfg(feature = "tokenizers")]
    if let Some(tokenizer) = tokenizer {
        let ids32: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        println!("text: {}", tokenizer.decode(&ids32, true).map_err(|e| e.to_string())?);
    }
    #[cfg(not(feature = "tokenizers"))]
    let _ = tokenizer;
    let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    println!("generated_ids={}", list.join(","));
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
                "usage: gpt2_generate --model-dir DIR (--prompt-ids 1,2,3 | --prompt TEXT) [--max-new-tokens N] \
                 [--temperature T] [--top-k K] [--top-p P] [--seed S] [--no-cache] [--f64]"
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
