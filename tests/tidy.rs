//! Guards the size limits of the style guide: source files stay under 400 lines and functions
//! stay under 70.
//!
//! Size is where layering rots first: a long file collects unrelated jobs and reaches into
//! every layer to do them, and a long function hides the steps that deserve names (and their
//! own doc comments). Keeping both small keeps dependencies visible and one-way: socket ->
//! protocol -> http -> domain (accounts, delivery) -> store and the shard rings, with the
//! per-shard state low and the server loop on top (see `tests/layers.rs`).
//!
//! Checks every `.rs` file under `src/`, binaries included, reading the sources as text (std
//! only, no dependency on the crate). Comments, strings and char literals are blanked before
//! braces are matched, so a `'{'` or a `"}"` cannot end a function early. Functions inside
//! `#[cfg(test)]` modules are not measured. A function that is long only because it is one
//! flat `match` (a dispatch table, say) can be allowed in [`FLAT_MATCH_ALLOWED`], with the
//! reason.

use std::fs;
use std::path::Path;

#[path = "common/rust_source.rs"]
mod rust_source;
use rust_source::{is_ident, src_files, strip_comments_and_literals, tokenize, Token};

/// Functions allowed past [`FN_LEN_MAX_LINES`] because they are a single flat `match` whose
/// arms read best side by side: `(file, fn name, reason)`, e.g.
/// `("src/http/router.rs", "dispatch", "one arm per route; splitting hides the table")`.
const FLAT_MATCH_ALLOWED: &[(&str, &str, &str)] = &[];

/// A source file must have fewer lines than this.
const FILE_LEN_LIMIT_LINES: usize = 400;

/// A function may span at most this many lines, from its `fn` line to its closing brace.
const FN_LEN_MAX_LINES: usize = 70;

/// One source file under `src/`.
struct SourceFile {
    /// Path relative to the crate root, e.g. `src/http/conn.rs`.
    rel_path: String,
    /// The file's full text.
    text: String,
}

/// A function item and its extent.
#[derive(Debug, PartialEq, Eq)]
struct FnSpan {
    /// The function's name.
    name: String,
    /// 1-based line of the `fn` keyword.
    start_line: usize,
    /// Lines from the `fn` line to the closing brace, both included.
    len_lines: usize,
}

#[test]
fn source_files_stay_under_400_lines() {
    let offenders: Vec<String> = all_sources()
        .iter()
        .map(|file| (file, file.text.lines().count()))
        .filter(|&(_, len_lines)| len_lines >= FILE_LEN_LIMIT_LINES)
        .map(|(file, len_lines)| format!("{}: {len_lines} lines", file.rel_path))
        .collect();
    assert!(
        offenders.is_empty(),
        "{} file(s) have {FILE_LEN_LIMIT_LINES} lines or more; split each along a seam \
         (a type and its impls, one protocol step, the tests of one part):\n{}",
        offenders.len(),
        offenders.join("\n")
    );
}

#[test]
fn functions_stay_under_70_lines() {
    let mut offenders = Vec::new();
    for file in all_sources() {
        let tokens = tokenize(&strip_comments_and_literals(&file.text));
        for span in fn_spans(&tokens) {
            if span.len_lines > FN_LEN_MAX_LINES && !is_allowed(&file.rel_path, &span.name) {
                offenders.push(format!(
                    "{}:{} fn {}: {} lines",
                    file.rel_path, span.start_line, span.name, span.len_lines
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "{} function(s) are longer than {FN_LEN_MAX_LINES} lines; extract named steps, or, \
         for one flat match, add (file, name, reason) to FLAT_MATCH_ALLOWED in tests/tidy.rs:\n{}",
        offenders.len(),
        offenders.join("\n")
    );
}

/// Whether `FLAT_MATCH_ALLOWED` lets function `name` in `rel_path` run long.
fn is_allowed(rel_path: &str, name: &str) -> bool {
    FLAT_MATCH_ALLOWED.iter().any(|&(file, fn_name, _)| file == rel_path && fn_name == name)
}

// ---------------------------------------------------------------------------------------------
// Source discovery

/// Every `.rs` file under `src/` (binaries included), sorted by path.
fn all_sources() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    src_files()
        .into_iter()
        .map(|rel_path| {
            let text = fs::read_to_string(root.join(&rel_path))
                .unwrap_or_else(|e| panic!("reading {rel_path}: {e}"));
            SourceFile { rel_path, text }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Function extents

/// Every `fn` item with a body (free functions, methods, async fns, nested fns), except those
/// inside `#[cfg(test)]` modules. Bodiless trait methods and `fn(..)` pointer types are skipped.
fn fn_spans(tokens: &[Token]) -> Vec<FnSpan> {
    let test_bodies = cfg_test_module_bodies(tokens);
    let in_test_body =
        |pos: usize| test_bodies.iter().any(|&(open, close)| open < pos && pos < close);
    let mut spans = Vec::new();
    for (pos, token) in tokens.iter().enumerate() {
        if token.text != "fn" || in_test_body(pos) {
            continue;
        }
        let Some(name) = tokens.get(pos + 1).filter(|t| is_ident(&t.text)) else { continue };
        let Some(open) = body_open(tokens, pos + 2) else { continue };
        let close = matching_close(tokens, open);
        let len_lines = tokens[close].line - token.line + 1;
        spans.push(FnSpan { name: name.text.clone(), start_line: token.line, len_lines });
    }
    spans
}

/// The `{` opening a function body, scanning its signature from `pos`; `None` when the
/// signature ends in `;` (a trait method or foreign function without a body).
fn body_open(tokens: &[Token], pos: usize) -> Option<usize> {
    let mut nesting = 0usize;
    for (offset, token) in tokens[pos.min(tokens.len())..].iter().enumerate() {
        match token.text.as_str() {
            "(" | "[" => nesting += 1,
            ")" | "]" => nesting = nesting.saturating_sub(1),
            "{" if nesting == 0 => return Some(pos + offset),
            ";" | "}" if nesting == 0 => return None,
            _ => {}
        }
    }
    None
}

/// Index of the `}` matching the `{` at `open` (the last token if it is never closed).
fn matching_close(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (pos, token) in tokens.iter().enumerate().skip(open) {
        match token.text.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth == 0 {
                    return pos;
                }
            }
            _ => {}
        }
    }
    tokens.len() - 1
}

/// `(open, close)` token indexes of the body of every `#[cfg(test)] mod name { .. }`.
fn cfg_test_module_bodies(tokens: &[Token]) -> Vec<(usize, usize)> {
    let mut bodies = Vec::new();
    for pos in 0..tokens.len() {
        if !is_cfg_test_attribute(tokens, pos) {
            continue;
        }
        let item = skip_attributes_and_visibility(tokens, pos);
        let texts: Vec<&str> = tokens[item..].iter().take(3).map(|t| t.text.as_str()).collect();
        if let ["mod", name, "{"] = texts[..] {
            if is_ident(name) {
                bodies.push((item + 2, matching_close(tokens, item + 2)));
            }
        }
    }
    bodies
}

/// Whether the tokens at `pos` spell `#[cfg(test)]`.
fn is_cfg_test_attribute(tokens: &[Token], pos: usize) -> bool {
    let spelled = ["#", "[", "cfg", "(", "test", ")", "]"];
    tokens.len() >= pos + spelled.len()
        && spelled.iter().zip(&tokens[pos..]).all(|(want, token)| token.text == *want)
}

/// Position of the item keyword after the attributes and visibility starting at `pos`.
fn skip_attributes_and_visibility(tokens: &[Token], mut pos: usize) -> usize {
    loop {
        match (tokens.get(pos).map(|t| t.text.as_str()), tokens.get(pos + 1)) {
            (Some("#"), Some(next)) if next.text == "[" => {
                pos = matching_bracket(tokens, pos + 1) + 1;
            }
            (Some("pub"), Some(next)) if next.text == "(" => {
                pos = matching_bracket(tokens, pos + 1) + 1;
            }
            (Some("pub"), _) => pos += 1,
            _ => return pos,
        }
    }
}

/// Index of the `]` or `)` matching the `[` or `(` at `open`.
fn matching_bracket(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (pos, token) in tokens.iter().enumerate().skip(open) {
        match token.text.as_str() {
            "[" | "(" => depth += 1,
            "]" | ")" => {
                depth -= 1;
                if depth == 0 {
                    return pos;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

// ---------------------------------------------------------------------------------------------
// Lexing (the same blanking as tests/layers.rs)

// ---------------------------------------------------------------------------------------------
// Tests of the measuring itself

/// `(name, start line, length)` of every function measured in `source`.
fn spans_in(source: &str) -> Vec<(String, usize, usize)> {
    let spans = fn_spans(&tokenize(&strip_comments_and_literals(source)));
    spans.into_iter().map(|s| (s.name, s.start_line, s.len_lines)).collect()
}

#[test]
fn braces_in_comments_strings_and_chars_do_not_end_a_function() {
    let source = r##"fn a() {
    let c = '{';
    let s = "}}";
    // }
    /* } */
    let r = r#"}"#;
    let e = '\'';
}

async fn b<'x>(v: &'x [u8; 4]) -> u8 {
    v[0]
}
"##;
    assert_eq!(spans_in(source), [("a".to_string(), 1, 8), ("b".to_string(), 10, 3)]);
}

#[test]
fn bodiless_methods_pointers_and_test_modules_are_not_measured() {
    let source = "trait T {\n    fn required(&self);\n    fn provided(&self) {}\n}\n\
                  fn takes(f: fn(u8) -> u8) -> u8 { f(1) }\n\
                  #[cfg(test)]\n#[allow(dead_code)]\nmod tests {\n    fn helper() {\n    }\n}\n\
                  impl S {\n    pub(crate) fn method(&self) {\n    }\n}\n";
    let expected = [
        ("provided".to_string(), 3, 1),
        ("takes".to_string(), 5, 1),
        ("method".to_string(), 13, 2),
    ];
    assert_eq!(spans_in(source), expected);
}
