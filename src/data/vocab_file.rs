//! The text file of [`Tokenizer::save`] and [`Tokenizer::load`], and a crash-safe file write.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs;
use std::path::Path;

use super::Tokenizer;
use crate::error::quoted;
use crate::{Error, Result};

/// The first line of every vocabulary file.
const MAGIC: &str = "tensorgrad tokenizer vocabulary v1";

/// `\`, tab, newline and carriage return as `\\`, `\t`, `\n`, `\r`.
fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['\\', '\t', '\n', '\r']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`escape`]; an unknown or dangling escape is an error.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => return Err(format!("unknown escape `\\{}` in {}", other.escape_debug(), quoted(s))),
            None => return Err(format!("dangling `\\` at the end of {}", quoted(s))),
        }
    }
    Ok(out)
}

/// The file's text for `t`.
fn encode(t: &Tokenizer) -> String {
    let mut out = String::new();
    out.push_str(MAGIC);
    out.push('\n');
    out.push_str(&format!("lower\t{}\n", t.lower()));
    out.push_str(&format!("filters\t{}\n", escape(t.filters())));
    match t.num_words() {
        Some(n) => out.push_str(&format!("num_words\t{n}\n")),
        None => out.push_str("num_words\tnone\n"),
    }
    if let Some(oov) = t.oov_token() {
        out.push_str(&format!("oov_token\t{}\n", escape(oov)));
    }
    out.push_str(&format!("document_count\t{}\n", t.document_count()));
    out.push_str(&format!("words\t{}\n", t.word_counts().len()));
    for (word, count) in t.word_counts() {
        let id = t.word_index()[word];
        out.push_str(&format!("{id}\t{count}\t{}\n", escape(word)));
    }
    out.push_str("end\n");
    out
}

pub(super) fn save(t: &Tokenizer, path: &Path) -> Result<()> {
    write_atomically(path, encode(t).as_bytes())
}

pub(super) fn load(path: &Path) -> Result<Tokenizer> {
    let bytes = fs::read(path).map_err(|source| Error::Io { op: "read", path: path.to_path_buf(), source })?;
    decode(&bytes, path)
}

/// Parses the bytes of a vocabulary file; `path` only names it in errors.
fn decode(bytes: &[u8], path: &Path) -> Result<Tokenizer> {
    let err = |line: Option<usize>, reason: String| Error::Vocabulary { path: path.to_path_buf(), line, reason };
    // Lines with their 1-based numbers; a final newline does not start a line.
    let mut raw: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if raw.last().is_some_and(|l| l.is_empty()) {
        raw.pop();
    }
    let total_lines = raw.len();
    let mut lines = raw.into_iter().enumerate().map(|(i, l)| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        match std::str::from_utf8(l) {
            Ok(s) => Ok((i + 1, s)),
            Err(e) => Err(err(Some(i + 1), format!("the line is not valid UTF-8 ({e})"))),
        }
    });
    let mut next_line = |what: &str| -> Result<(usize, &str)> {
        match lines.next() {
            Some(line) => line,
            None => Err(err(None, format!("the file is truncated: it ends before {what}"))),
        }
    };

    let (n, first) = next_line("the header line")?;
    if first.strip_prefix('\u{feff}').unwrap_or(first) != MAGIC {
        return Err(err(Some(n), format!("the first line is {}, expected {MAGIC:?}", quoted(first))));
    }

    let (mut lower, mut filters, mut num_words, mut oov_token, mut document_count) = (None, None, None, None, None);
    let word_total = loop {
        let (n, line) = next_line("the `words` line")?;
        let Some((key, value)) = line.split_once('\t') else {
            return Err(err(Some(n), format!("expected `key<TAB>value`, found {}", quoted(line))));
        };
        let duplicate = match key {
            "lower" => lower.replace(match value {
                "true" => true,
                "false" => false,
                _ => return Err(err(Some(n), format!("`lower` must be `true` or `false`, found {}", quoted(value)))),
            }),
            "filters" => filters.replace(unescape(value).map_err(|e| err(Some(n), e))?).map(|_| true),
            "num_words" => num_words
                .replace(match value {
                    "none" => None,
                    v => Some(parse_count(v).map_err(|e| err(Some(n), format!("`num_words`: {e}")))?),
                })
                .map(|_| true),
            "oov_token" => oov_token.replace(unescape(value).map_err(|e| err(Some(n), e))?).map(|_| true),
            "document_count" => document_count
                .replace(parse_count(value).map_err(|e| err(Some(n), format!("`document_count`: {e}")))?)
                .map(|_| true),
            "words" => {
                break parse_count(value).map_err(|e| err(Some(n), format!("`words`: {e}")))?;
            }
            _ => return Err(err(Some(n), format!("unknown key {}", quoted(key)))),
        };
        if duplicate.is_some() {
            return Err(err(Some(n), format!("`{key}` is given twice")));
        }
    };
    let missing = |key: &str| err(None, format!("the `{key}` line is missing"));
    let lower = lower.ok_or_else(|| missing("lower"))?;
    let filters = filters.ok_or_else(|| missing("filters"))?;
    let num_words = num_words.ok_or_else(|| missing("num_words"))?;
    let document_count = document_count.ok_or_else(|| missing("document_count"))?;

    // Never trust the declared count for an allocation: the lines are there or they are not.
    let mut word_counts: Vec<(String, usize)> = Vec::new();
    let mut stored_ids: Vec<(usize, usize)> = Vec::new(); // (id, line)
    let mut seen = HashSet::new();
    for k in 0..word_total {
        let (n, line) = next_line(&format!("word {} of {word_total}", k + 1))?;
        let fields: Vec<&str> = line.split('\t').collect();
        let [id, count, word] = fields[..] else {
            return Err(err(
                Some(n),
                format!("expected `id<TAB>count<TAB>word` (word {} of {word_total}), found {}", k + 1, quoted(line)),
            ));
        };
        let id = parse_count(id).map_err(|e| err(Some(n), format!("id: {e}")))?;
        let count = parse_count(count).map_err(|e| err(Some(n), format!("count: {e}")))?;
        let word = unescape(word).map_err(|e| err(Some(n), e))?;
        if count == 0 {
            return Err(err(Some(n), format!("word {} has a count of 0", quoted(&word))));
        }
        if word.is_empty() {
            return Err(err(Some(n), "empty word".to_owned()));
        }
        if !seen.insert(word.clone()) {
            return Err(err(Some(n), format!("word {} is listed twice", quoted(&word))));
        }
        word_counts.push((word, count));
        stored_ids.push((id, n));
    }
    let (n, last) = next_line("the `end` line")?;
    if last != "end" {
        return Err(err(Some(n), format!("expected `end` after {word_total} words, found {}", quoted(last))));
    }
    if n < total_lines {
        return Err(err(Some(n + 1), "unexpected content after `end`".to_owned()));
    }

    let t = Tokenizer::from_state(lower, filters, num_words, oov_token, document_count, word_counts);
    for ((word, _), (id, n)) in t.word_counts().iter().zip(stored_ids) {
        let expected = t.word_index()[word];
        if id != expected {
            return Err(err(
                Some(n),
                format!("word {} is stored with id {id}, but its count and position give id {expected}", quoted(word)),
            ));
        }
    }
    Ok(t)
}

/// A non-negative decimal integer.
fn parse_count(s: &str) -> Result<usize, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{} is not a non-negative integer", quoted(s)));
    }
    s.parse().map_err(|_| format!("{} is too large", quoted(s)))
}

/// Writes `bytes` atomically (temporary file, sync, rename), as every save in the crate does.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::io::write_atomically(path, bytes)
}
