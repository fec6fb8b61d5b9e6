//! Explains the flagship sentiment model's predictions with gradients: gradient × input on the
//! embeddings, summed over the embedding dimensions, gives each token a score. A positive score
//! means the token pushes the prediction towards "positive", a negative one towards "negative".
//!
//! It loads what `text_classification` saved (`model.safetensors` and `vocab.txt`), rebuilds the
//! same `Sequential` (`embedding` → `lstm` → `dense`), and for each sentence:
//!
//! 1. tokenizes it with the saved tokenizer and pads it `post` to 100 ids;
//! 2. runs the `embedding` layer alone, giving the embeddings `e` `[1, 100, 16]` and the mask;
//! 3. makes `e` a leaf (`e.detach().requires_grad()`) and runs `lstm` and `dense` on it (eval
//!    mode: dropout off), giving the probability `p` of "positive";
//! 4. backpropagates from `p` and scores each token `t` as `Σ_d e[t, d] · ∂p/∂e[t, d]`.
//!
//! The scores are those of the probability, not of the logit: the logit's would be the same
//! scores divided by `p (1 − p)`, the same for every token of a sentence, so the ranking and the
//! colours (normalised per sentence) would not change.
//!
//! For the Transformer classifier (`text_classification --model transformer`, which writes
//! `architecture.txt` = `transformer` beside its weights) it shows an attention map instead: the
//! weight the attention-pooling query gives each token, averaged over the heads (how much of the
//! sentence's vector comes from that token; the weights of a sentence sum to 1). Attention says
//! where the model looks, not which way a token pushes the prediction.
//!
//! ```text
//! cargo run --release --example text_classification
//! cargo run --release --example explain
//! cargo run --release --example text_classification -- --model transformer --out target/tc_transformer
//! cargo run --release --example explain -- --model-dir target/tc_transformer
//! cargo run --release --example explain -- --model-dir /tmp/tc --text "A dull, lifeless remake."
//! ```
//!
//! Flags: `--model-dir DIR` (default `target/text_classification/`), `--text "…"` (repeatable;
//! without it a few example sentences), `--html FILE` (default `target/explain/explain.html`),
//! `--max-len N` (default 100, as the flagship), `--no-mask` (if the flagship was trained with
//! `--no-mask`: the files do not record it).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::data::{Padding, Tokenizer, Truncating, pad_sequences};
use tensorgrad::io;
use tensorgrad::nn::{Activation, Dense, Embedding, Lstm, LstmConfig, Module, Sequential};

#[path = "common/text_transformer.rs"]
mod text_transformer;
use text_transformer::TransformerClassifier;

/// The flagship's embedding size and LSTM width (fixed there).
const EMBEDDING_DIM: usize = 16;
const HIDDEN: usize = 128;

const DEFAULT_TEXTS: &[&str] = &[
    "A great film: warm, funny and beautifully acted, a genuine masterpiece.",
    "Dull, boring and far too long. The worst movie of the year.",
    "The cast is wonderful, but the script is a tedious, predictable mess.",
    "An utterly charming and moving story that never loses its heart.",
    "A lifeless, flibbertigibbet remake that nobody asked for.",
];

struct Args {
    model_dir: PathBuf,
    texts: Vec<String>,
    html: PathBuf,
    max_len: usize,
    mask: bool,
}

fn parse_args() -> Result<Args, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        model_dir: root.join("target/text_classification"),
        texts: Vec::new(),
        html: root.join("target/explain/explain.html"),
        max_len: 100,
        mask: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model-dir" => a.model_dir = value()?.into(),
            "--text" => a.texts.push(value()?),
            "--html" => a.html = value()?.into(),
            "--max-len" => {
                let v = value()?;
                a.max_len = v.parse().map_err(|e| format!("--max-len: {v:?} is not a count ({e})"))?;
            }
            "--no-mask" => a.mask = false,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.max_len == 0 {
        return Err("--max-len must be at least 1".into());
    }
    if a.texts.is_empty() {
        a.texts = DEFAULT_TEXTS.iter().map(|s| s.to_string()).collect();
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("usage: explain [--model-dir DIR] [--text \"...\"]... [--html FILE] [--max-len N] [--no-mask]");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What became of one word of a sentence.
enum Slot {
    /// Its id sits at this position of the padded sequence.
    Pos(usize),
    /// No id: unknown to the vocabulary, or beyond its `num_words` cap.
    Oov,
    /// An id, but past `max_len`: cut off by the truncation.
    Truncated,
}

/// One word with what the model made of it.
struct Token {
    word: String,
    /// The attribution, for a word the model saw.
    score: Option<f32>,
    /// Why there is no score, if there is none.
    note: &'static str,
}

/// One explained sentence.
struct Explanation {
    text: String,
    p: f32,
    tokens: Vec<Token>,
    /// Sum of the attributions of the padding positions (zero when padding is masked).
    padding: f32,
}

/// The id `tok.text_to_sequence` gives `word` (same rules: the `num_words` cap, the OOV token).
fn id_of(tok: &Tokenizer, word: &str) -> Option<usize> {
    let oov = tok.oov_token().map(|_| 1);
    match tok.word_index().get(word) {
        Some(&id) if tok.num_words().is_some_and(|n| id >= n) => oov,
        Some(&id) => Some(id),
        None => oov,
    }
}

fn build_model(vocab: usize, mask: bool) -> Sequential {
    // The flagship's constructor calls; the seeds do not matter, the weights are loaded over them.
    let mut rng = StdRng::seed_from_u64(42);
    let lstm = LstmConfig { dropout: 0.2, recurrent_dropout: 0.2, seed: 42, ..LstmConfig::new(EMBEDDING_DIM, HIDDEN) };
    Sequential::new()
        .add_named("embedding", Embedding::new(vocab, EMBEDDING_DIM, &mut rng).with_mask_zero(mask))
        .add_named("lstm", Lstm::new(lstm, &mut rng))
        .add_named("dense", Dense::new(HIDDEN, 1, Some(Activation::Sigmoid), &mut rng))
}

fn layer<'a>(model: &'a Sequential, name: &str) -> Result<&'a dyn Module, String> {
    model.get(name).ok_or_else(|| format!("the model has no layer called {name:?}"))
}

/// The words of a sentence, where each went, and the ids the model sees.
type Tokenized = (Vec<String>, Vec<Slot>, Vec<usize>);

/// The words of `text`, where each went, and the ids the model sees.
fn tokenize(tok: &Tokenizer, text: &str, max_len: usize) -> Result<Tokenized, String> {
    let words = tok.tokenize(text);
    let mut seq = Vec::new();
    let mut slots = Vec::with_capacity(words.len());
    for w in &words {
        match id_of(tok, w) {
            None => slots.push(Slot::Oov),
            Some(id) => {
                slots.push(if seq.len() < max_len { Slot::Pos(seq.len()) } else { Slot::Truncated });
                seq.push(id);
            }
        }
    }
    if seq != tok.text_to_sequence(text) {
        return Err(format!("word-by-word ids disagree with the tokenizer's for {text:?}"));
    }
    Ok((words, slots, seq))
}

/// The explanation of a sentence from one score per padded position.
fn explanation(text: &str, p: f32, words: Vec<String>, slots: Vec<Slot>, scores: &[f32], real: usize) -> Explanation {
    let tokens = words
        .into_iter()
        .zip(slots)
        .map(|(word, slot)| match slot {
            Slot::Pos(t) => Token { word, score: Some(scores[t]), note: "" },
            Slot::Oov => Token { word, score: None, note: "not in the vocabulary" },
            Slot::Truncated => Token { word, score: None, note: "truncated" },
        })
        .collect();
    Explanation { text: text.to_string(), p, tokens, padding: scores[real..].iter().sum() }
}

/// The Transformer's attention-pooling weights for `text`.
fn explain_attention(
    model: &TransformerClassifier,
    tok: &Tokenizer,
    text: &str,
    max_len: usize,
) -> Result<Explanation, String> {
    let (words, slots, seq) = tokenize(tok, text, max_len)?;
    let x = pad_sequences(&[&seq], Some(max_len), Padding::Post, Truncating::Post, 0.0);
    let (p, w) = tensorgrad::no_grad(|| model.run(&x, true));
    let w = w.ok_or("the pooling attention returned no weights")?.to_vec();
    Ok(explanation(text, p.item(), words, slots, &w, seq.len().min(max_len)))
}

/// Gradient × input on the LSTM model's embeddings for `text`.
fn explain(model: &Sequential, tok: &Tokenizer, text: &str, max_len: usize) -> Result<Explanation, String> {
    let (words, slots, seq) = tokenize(tok, text, max_len)?;
    let x = pad_sequences(&[&seq], Some(max_len), Padding::Post, Truncating::Post, 0.0);

    let (e, mask) = layer(model, "embedding")?.forward_masked(&x, None);
    let e = e.detach().requires_grad();
    let (h, mask) = layer(model, "lstm")?.forward_masked(&e, mask.as_ref());
    let (p, _) = layer(model, "dense")?.forward_masked(&h, mask.as_ref());
    // Running the layers one by one must give what the whole model gives.
    let whole = model.forward(&x).item();
    if (whole - p.item()).abs() > 1e-5 {
        return Err(format!("layer by layer p = {}, the whole model gives {whole}", p.item()));
    }
    let grads = p.backward();
    let g = grads.get(&e).ok_or("no gradient reached the embeddings")?;
    // [1, max_len, 16] → [max_len]: gradient × input, summed over the embedding dimensions.
    let scores = (&e * g).sum_dim(2, false).to_vec();

    Ok(explanation(text, p.item(), words, slots, &scores, seq.len().min(max_len)))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let weights = args.model_dir.join("model.safetensors");
    let vocab_file = args.model_dir.join("vocab.txt");
    for f in [&weights, &vocab_file] {
        if !f.is_file() {
            return Err(format!(
                "{} not found: train the model first with `cargo run --release --example text_classification` \
                 (or pass --model-dir with the --out directory of an earlier run)",
                f.display()
            )
            .into());
        }
    }
    let tok = Tokenizer::load(&vocab_file)?;
    // The table size is the flagship's --vocab: read it from the file rather than assume 10 000.
    let tensors = io::load_tensors::<f32>(&weights)?;
    let vocab = tensors
        .iter()
        .find(|(n, _)| n == "embedding.weight")
        .map(|(_, t)| t.shape()[0])
        .ok_or_else(|| format!("{} has no embedding.weight: not a text_classification model", weights.display()))?;
    drop(tensors);
    let architecture = std::fs::read_to_string(args.model_dir.join("architecture.txt")).unwrap_or_default();
    if architecture.trim() == "transformer" {
        let mut model = TransformerClassifier::new(vocab, args.max_len, 0, &mut StdRng::seed_from_u64(0));
        io::load_model(&model, &weights)?;
        model.eval();
        println!("model: {} ({})", weights.display(), model.describe());
        println!("weight = the attention-pooling query's attention to the token, averaged over the heads\n");
        let mut out = Vec::with_capacity(args.texts.len());
        for text in &args.texts {
            let ex = explain_attention(&model, &tok, text, args.max_len)?;
            print_explanation(&ex, false);
            out.push(ex);
        }
        return write_html(args, &out, &weights, true);
    }
    let mut model = build_model(vocab, args.mask);
    io::load_model(&model, &weights)?;
    model.eval();
    println!(
        "model: {} (Embedding({vocab}, {EMBEDDING_DIM}) → LSTM({HIDDEN}) → Dense(1, sigmoid)), padding {}; \
         vocabulary: {} words, ids below {}",
        weights.display(),
        if args.mask { "masked" } else { "not masked (--no-mask)" },
        tok.word_index().len(),
        tok.vocab_size()
    );
    println!("score = Σ_d e[t,d] · ∂p/∂e[t,d] (gradient × input on the embeddings, p = P(positive))\n");

    let mut out = Vec::with_capacity(args.texts.len());
    for text in &args.texts {
        let ex = explain(&model, &tok, text, args.max_len)?;
        print_explanation(&ex, !args.mask);
        out.push(ex);
    }
    write_html(args, &out, &weights, false)
}

fn write_html(
    args: &Args,
    out: &[Explanation],
    weights: &std::path::Path,
    attention: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = args.html.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.html, html_page(out, &weights.display().to_string(), args.mask, attention))?;
    println!("wrote {}", args.html.display());
    Ok(())
}

/// A score with four decimals, or in scientific notation when the sentence's scores are all tiny.
fn fmt_score(s: f32, max: f32) -> String {
    if max >= 1e-3 || max == 0.0 { format!("{s:+.4}") } else { format!("{s:+.2e}") }
}

fn label(p: f32) -> &'static str {
    if p >= 0.5 { "positive" } else { "negative" }
}

fn print_explanation(ex: &Explanation, show_padding: bool) {
    println!("{:?}", ex.text);
    println!("  p(positive) = {:.3} → {}", ex.p, label(ex.p));
    let max = ex.tokens.iter().filter_map(|t| t.score).fold(0.0f32, |m, s| m.max(s.abs()));
    let width = ex.tokens.iter().map(|t| t.word.chars().count()).max().unwrap_or(0).max(8);
    for t in &ex.tokens {
        match t.score {
            Some(s) => {
                let n = if max > 0.0 { (s.abs() / max * 20.0).round() as usize } else { 0 };
                let bar = if s >= 0.0 { "+".repeat(n) } else { "-".repeat(n) };
                println!("  {:<width$} {:>9}  {bar}", t.word, fmt_score(s, max));
            }
            None => println!("  {:<width$} {:>9}  ({}, skipped)", t.word, "—", t.note),
        }
    }
    if show_padding {
        println!("  {:<width$} {:>9}  (sum over the padding positions)", "<pad>", fmt_score(ex.padding, max));
    }
    println!();
}

/// Escapes text for HTML element content and attribute values.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Red (−1) … white (0) … green (+1).
fn colour(s: f32) -> (u8, u8, u8) {
    let s = s.clamp(-1.0, 1.0);
    let (r, g, b) = if s < 0.0 { (214.0, 39.0, 40.0) } else { (44.0, 160.0, 44.0) };
    let a = s.abs();
    let mix = |c: f32| (255.0 + (c - 255.0) * a).round() as u8;
    (mix(r), mix(g), mix(b))
}

fn html_page(exs: &[Explanation], model: &str, mask: bool, attention: bool) -> String {
    let mut h = String::new();
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Why the model thinks so: gradient × input</title>\n<style>\n\
         body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 920px; margin: 24px auto; \
         padding: 0 16px; color: #222; background: #fafafa; }\n\
         h1 { font-size: 22px; margin-bottom: 4px; }\n\
         .sub { color: #666; font-size: 13px; margin-top: 0; }\n\
         .card { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 12px 16px; margin: 14px 0; }\n\
         .orig { color: #777; font-size: 13px; font-style: italic; margin-bottom: 8px; }\n\
         .tokens { line-height: 2.2; font-size: 17px; }\n\
         .tok { padding: 3px 5px; border-radius: 4px; border: 1px solid #e4e4e4; margin-right: 2px; }\n\
         .skip { color: #999; text-decoration: line-through; border-style: dashed; }\n\
         .pred { font-size: 14px; margin-top: 6px; display: flex; align-items: center; gap: 10px; }\n\
         .meter { width: 160px; height: 10px; background: linear-gradient(to right, #d62728, #fff, #2ca02c); \
         border: 1px solid #ccc; border-radius: 5px; position: relative; }\n\
         .needle { position: absolute; top: -4px; width: 3px; height: 16px; background: #222; margin-left: -1px; }\n\
         .pos { color: #1f7a1f; font-weight: 600; } .neg { color: #b01f1f; font-weight: 600; }\n\
         .legend { display: flex; align-items: center; gap: 10px; font-size: 13px; color: #444; }\n\
         .scale { width: 260px; height: 14px; border: 1px solid #ccc; border-radius: 3px; \
         background: linear-gradient(to right, #d62728, #fff, #2ca02c); }\n\
         .note { font-size: 12px; color: #666; }\n\
         </style>\n</head>\n<body>\n",
    );
    h.push_str("<h1>Why the model thinks so</h1>\n");
    if attention {
        let _ = writeln!(
            h,
            "<p class=\"sub\">Model: <code>{}</code> (Transformer encoder → attention pooling → Dense). Each token \
             is coloured by the weight the pooling attention gives it, averaged over the heads: how much of the \
             sentence's vector comes from it (green = more; it does not say in which direction).</p>",
            escape_html(model)
        );
    } else {
        let _ = writeln!(
            h,
            "<p class=\"sub\">Model: <code>{}</code> (Embedding → LSTM → Dense, padding {}). Each token is scored \
         by gradient × input on its embedding, summed over the embedding dimensions, for the predicted \
         probability p(positive).</p>",
            escape_html(model),
            if mask { "masked" } else { "not masked" }
        );
    }
    if !attention {
        h.push_str(
            "<div class=\"legend\"><span>pushes towards <b class=\"neg\">negative</b></span>\
             <div class=\"scale\"></div><span>pushes towards <b class=\"pos\">positive</b></span></div>\n",
        );
    }
    h.push_str(
        "\
         <p class=\"note\">Colours are normalised per sentence: the token with the largest |score| gets the \
         full colour. Hover a token for its score. Struck-out tokens were not seen by the model \
         (not in the vocabulary, or past the maximum length).</p>\n",
    );
    for ex in exs {
        let max = ex.tokens.iter().filter_map(|t| t.score).fold(0.0f32, |m, s| m.max(s.abs()));
        h.push_str("<div class=\"card\">\n");
        let _ = writeln!(h, "<div class=\"orig\">{}</div>", escape_html(&ex.text));
        h.push_str("<div class=\"tokens\">");
        for t in &ex.tokens {
            let word = escape_html(&t.word);
            match t.score {
                Some(s) => {
                    let rel = if max > 0.0 { s / max } else { 0.0 };
                    let (r, g, b) = colour(rel);
                    let fg = if rel.abs() > 0.65 { "#fff" } else { "#222" };
                    let _ = write!(
                        h,
                        "<span class=\"tok\" style=\"background: rgb({r}, {g}, {b}); color: {fg}\" \
                         title=\"{word}: {} ({:+.0}% of the largest)\">{word}</span> ",
                        fmt_score(s, max),
                        rel * 100.0
                    );
                }
                None => {
                    let _ = write!(
                        h,
                        "<span class=\"tok skip\" title=\"{word}: {}, skipped\">{word}</span> ",
                        escape_html(t.note)
                    );
                }
            }
        }
        h.push_str("</div>\n");
        let class = if ex.p >= 0.5 { "pos" } else { "neg" };
        let _ = writeln!(
            h,
            "<div class=\"pred\">p(positive) = <b>{:.3}</b> <div class=\"meter\"><div class=\"needle\" \
             style=\"left: {:.1}%\"></div></div> predicted <span class=\"{class}\">{}</span></div>",
            ex.p,
            ex.p * 100.0,
            label(ex.p)
        );
        h.push_str("</div>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}
