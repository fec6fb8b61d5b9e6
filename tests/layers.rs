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
    &["tensor::element", "tensor::shape"],
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
    &["train"],
];

/// Where the crate root's re-exports are defined (`crate::Tensor` is `tensor::handle`'s).
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("Result", "error"),
    ("Element", "tensor::element"),
    ("Layout", "tensor::layout"),
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

/// Every `crate::…` path in `code`, with `use crate::{a, b::{c, d}}` groups expanded.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(pos) = rest.find("crate::") {
        let before = rest[..pos].chars().last();
        rest = &rest[pos + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in a macro, or a longer identifier
        }
        let mut chars = rest.chars().peekable();
        use_tree(&mut chars, Vec::new(), &mut out);
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
        // Code only: drop line comments (doc comments name modules in links).
        let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
        for path in crate_paths(&code) {
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
    let paths =
        crate_paths("use crate::{Element, tensor::handle::{Tensor, Grad}};\nlet x = crate::kernels::map::unary(a);");
    let flat: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(flat, vec!["Element", "tensor::handle::Tensor", "tensor::handle::Grad", "kernels::map::unary"]);
    assert_eq!(module_of(&["tensor", "handle", "Tensor"]), Some((7, "tensor::handle")));
    assert_eq!(module_of(&["Tensor"]), Some((7, "tensor::handle")));
    assert_eq!(module_of(&["ops"]).map(|m| m.1), Some("ops"));
}
