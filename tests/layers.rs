//! The crate's modules form layers (docs/ARCHITECTURE.md): each module may use only modules on
//! lower layers, or its own. This test reads every `crate::` path in `src/` (outside comments)
//! and fails on an arrow that points up the table or sideways into another module of the same
//! rank, which is also what rules out import circles.

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, lowest first. A module is named by its path under `src/` (a folder counts as one
/// module unless it is split here, as `tensor` is).
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["tensor::element", "tensor::shape", "tensor::rng"],
    &["tensor::layout"],
    &["tensor::memory"],
    &["tensor::storage"],
    &["kernels"],
    &["tensor::mode"],
    &["tensor::handle"],
    &["ops"],
    &["tensor::autograd"],
    &["tensor::gradcheck"],
    &["nn"],
    &["loss"],
    &["optim"],
    &["io"],
    &["data"],
    &["distributed"],
    &["train"],
    &["models"],
];

/// Where the crate root's re-exports are defined (`crate::Tensor` is `tensor::handle`'s).
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("CpuInfo", "kernels"),
    ("GemmPlan", "kernels"),
    ("cpu_info", "kernels"),
    ("PackedMatrix", "ops"),
    ("BatchNormOptions", "ops"),
    ("AttnMask", "ops"),
    ("SdpaOptions", "ops"),
    ("MaxPool1dConfig", "ops"),
    ("MaxPool2dConfig", "ops"),
    ("AvgPool1dConfig", "ops"),
    ("AvgPool2dConfig", "ops"),
    ("PadMode", "ops"),
    ("ConvOptions", "ops"),
    ("ConvPadding", "ops"),
    ("Conv1dOptions", "ops"),
    ("Conv2dOptions", "ops"),
    ("ConvTranspose1dOptions", "ops"),
    ("ConvTranspose2dOptions", "ops"),
    ("ConvTransposeOptions", "ops"),
    ("FoldOptions", "ops"),
    ("BatchNormOptions", "ops"),
    ("Result", "error"),
    ("Element", "tensor::element"),
    ("Layout", "tensor::layout"),
    ("RngSource", "tensor::rng"),
    ("shape", "tensor::shape"),
    ("memory", "tensor::memory"),
    ("Tensor", "tensor::handle"),
    ("TensorId", "tensor::handle"),
    ("no_grad", "tensor::mode"),
    ("is_grad_enabled", "tensor::mode"),
    ("is_anomaly_enabled", "tensor::mode"),
    ("set_detect_anomaly", "tensor::mode"),
    ("detect_anomaly", "tensor::mode"),
    ("Gradients", "tensor::autograd"),
    ("gradcheck", "tensor::gradcheck"),
    ("gradcheck_with", "tensor::gradcheck"),
    ("GradcheckOptions", "tensor::gradcheck"),
    ("GradcheckError", "tensor::gradcheck"),
];

/// The rank of the module that `path` (segments after `crate::`) names, and its name.
fn module_of(path: &[&str]) -> Option<(usize, &'static str)> {
    let first = *path.first()?;
    let name = if first == "tensor" {
        format!("tensor::{}", path.get(1)?)
    } else {
        ROOT_ITEMS.iter().find(|(item, _)| *item == first).map_or(first, |&(_, m)| m).to_string()
    };
    LAYERS.iter().enumerate().find_map(|(rank, mods)| mods.iter().find(|&&m| m == name).map(|&m| (rank, m)))
}

/// The module a source file belongs to, from its path under `src/`.
fn module_of_file(rel: &Path) -> Option<(usize, &'static str)> {
    let parts: Vec<String> = rel.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let segs: Vec<&str> = parts.iter().map(String::as_str).filter(|s| *s != "mod").collect();
    if segs.first() == Some(&"tensor") && segs.len() == 1 {
        return None; // tensor/mod.rs only declares the core's modules
    }
    module_of(&segs)
}

/// Every module path in `code` (a file of module `file_mod`): `crate::…` and `$crate::…` paths,
/// and `super::…` / `self::…` paths resolved against the file's module, with
/// `use crate::{a, b::{c, d}}` groups expanded.
fn crate_paths(code: &str, file_mod: &[&str]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // The module path here: the file's, plus any inline `mod name { … }` we are inside, with the
    // brace depth at which each inline module opened.
    let mut module: Vec<String> = file_mod.iter().map(|s| s.to_string()).collect();
    let mut inline: Vec<usize> = Vec::new();
    let mut pending_mod: Option<String> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let before = code[..i].chars().last();
        let at_start = !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        let (skip, prefix) = if at_start && rest.starts_with("crate::") {
            ("crate::".len(), Some(Vec::new()))
        } else if at_start && (rest.starts_with("super::") || rest.starts_with("self::")) {
            // `super::super::x` from module a::b::c is a::x; `self::x` is a::b::c::x.
            let (mut n, mut supers) = (0, 0);
            while code[i + n..].starts_with("super::") {
                n += "super::".len();
                supers += 1;
            }
            if supers == 0 {
                n = "self::".len();
            }
            (n, Some(module[..module.len().saturating_sub(supers)].to_vec()))
        } else if at_start && rest.starts_with("mod ") {
            let name: String = rest["mod ".len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let after = rest["mod ".len() + name.len()..].trim_start();
            if after.starts_with('{') {
                pending_mod = Some(name);
            }
            ("mod ".len(), None)
        } else {
            match rest.chars().next() {
                Some('{') => {
                    depth += 1;
                    if let Some(name) = pending_mod.take() {
                        module.push(name);
                        inline.push(depth);
                    }
                }
                Some('}') => {
                    if inline.last() == Some(&depth) {
                        inline.pop();
                        module.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
            (rest.chars().next().map_or(1, char::len_utf8), None)
        };
        if let Some(prefix) = prefix {
            let mut chars = code[i + skip..].chars().peekable();
            use_tree(&mut chars, prefix, &mut out);
        }
        i += skip;
    }
    out
}

/// `text` without comments and without the contents of string and character literals (doc
/// links and messages name modules without using them).
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied()) {
            ('/', Some('/')) => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
                out.push(' ');
            }
            ('"', _) => {
                i += 1;
                while i < b.len() && b[i] != '"' {
                    i += if b[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            ('\'', Some(next)) if next == '\\' || b.get(i + 2) == Some(&'\'') => {
                // A character literal ('x' or '\n'), not a lifetime.
                let mut j = i + if next == '\\' { 3 } else { 2 };
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Parses one use tree (`a::b`, `a::{…}`, `{…}`), pushing each full path under `prefix`.
fn use_tree(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            loop {
                use_tree(chars, prefix.clone(), out);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                match chars.next() {
                    Some(',') => {
                        while chars.peek().is_some_and(|c| c.is_whitespace()) {
                            chars.next();
                        }
                        if chars.peek() == Some(&'}') {
                            chars.next();
                            return;
                        }
                    }
                    _ => return,
                }
            }
        }
        let mut seg = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_alphanumeric() || c == '_' {
                seg.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if !seg.is_empty() {
            prefix.push(seg);
        }
        let mut ahead = chars.clone();
        if ahead.next() == Some(':') && ahead.next() == Some(':') {
            chars.next();
            chars.next();
            continue;
        }
        // ` as name`, `;`, `,`, `}` or anything else ends the path.
        let mut ahead = chars.clone();
        while ahead.peek().is_some_and(|c| c.is_whitespace()) {
            ahead.next();
        }
        if ahead.clone().take(3).collect::<String>() == "as " {
            for _ in 0..3 {
                ahead.next();
            }
            while ahead.peek().is_some_and(|c| c.is_alphanumeric() || *c == '_' || c.is_whitespace()) {
                ahead.next();
            }
            *chars = ahead;
        }
        if !prefix.is_empty() {
            out.push(prefix);
        }
        return;
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_uses_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = BTreeSet::new();
    let mut checked = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        if rel == Path::new("lib.rs") {
            continue; // the root declares and re-exports everything
        }
        let (rank, module) = module_of_file(rel)
            .or_else(|| (rel == Path::new("tensor/mod.rs")).then_some((0, "tensor")))
            .unwrap_or_else(|| panic!("{}: not in the layer table of tests/layers.rs", rel.display()));
        if module == "tensor" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let parts: Vec<String> = rel.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let file_mod: Vec<&str> = parts.iter().map(String::as_str).filter(|s| *s != "mod").collect();
        for path in crate_paths(&code_only(&text), &file_mod) {
            let segs: Vec<&str> = path.iter().map(String::as_str).collect();
            let Some((to_rank, to)) = module_of(&segs) else {
                violations.insert(format!("{}: `crate::{}` is not in the layer table", rel.display(), path.join("::")));
                continue;
            };
            checked += 1;
            if to != module && to_rank >= rank {
                violations.insert(format!(
                    "{} (layer {rank}, {module}) uses `crate::{}` (layer {to_rank}, {to})",
                    rel.display(),
                    path.join("::")
                ));
            }
        }
    }
    assert!(checked > 100, "only {checked} crate paths found: is the parser broken?");
    assert!(
        violations.is_empty(),
        "imports that point up the layers:\n{}",
        violations.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_parser_reads_groups_and_paths() {
    let flat = |code: &str, file_mod: &[&str]| -> Vec<String> {
        crate_paths(&code_only(code), file_mod).iter().map(|p| p.join("::")).collect()
    };
    assert_eq!(
        flat("use crate::{Element, tensor::handle::{Tensor, Grad}};\nlet x = crate::kernels::map::unary(a);", &[]),
        vec!["Element", "tensor::handle::Tensor", "tensor::handle::Grad", "kernels::map::unary"]
    );
    // `super::` and `self::` resolve against the file's module; `$crate::` counts as `crate::`.
    assert_eq!(flat("use super::autograd::Gradients;", &["tensor", "handle"]), vec!["tensor::autograd::Gradients"]);
    assert_eq!(flat("use super::super::train::Trainer;", &["nn", "rnn"]), vec!["train::Trainer"]);
    assert_eq!(flat("use self::inner::X;", &["ops", "view"]), vec!["ops::view::inner::X"]);
    // Inside an inline module, `super` is the file's module.
    assert_eq!(
        flat(
            "mod tests { use super::*; fn f() { use super::super::io::g; } }
use super::h;",
            &["tensor", "memory"]
        ),
        vec!["tensor::memory", "tensor::io::g", "tensor::h"]
    );
    assert_eq!(flat("$crate::kernels::has_avx512()", &[]), vec!["kernels::has_avx512"]);
    // Comments and string contents are not code; code after a string on the same line is.
    assert_eq!(flat("let u = \"http://x\"; crate::train::f(); // crate::io::g", &[]), vec!["train::f"]);
    assert_eq!(flat("/* crate::io::g */ let c = '\"'; crate::nn::h()", &[]), vec!["nn::h"]);
    assert_eq!(module_of(&["tensor", "handle", "Tensor"]), Some((7, "tensor::handle")));
    assert_eq!(module_of(&["Tensor"]), Some((7, "tensor::handle")));
    assert_eq!(module_of(&["ops"]).map(|m| m.1), Some("ops"));
}
