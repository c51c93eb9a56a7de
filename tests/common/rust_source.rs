//! Reading Rust sources as text for the style tests (`tests/layers.rs`,
//! `tests/tidy.rs`): listing `.rs` files, blanking comments and literals
//! (keeping line numbers) and splitting code into tokens. Std only, so the
//! tests also read a tree that does not build.
#![allow(dead_code)]

use std::fs;
use std::path::Path;

/// One code token: an identifier, keyword or number, `::`, or a single punctuation char.
#[derive(Debug)]
pub struct Token {
    pub text: String,
    pub line: usize,
}

/// The crate-relative path of every `.rs` file under `src/`, sorted.
pub fn src_files() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rel_paths = Vec::new();
    collect_rs_files(root, Path::new("src"), &mut rel_paths);
    rel_paths.sort();
    rel_paths
}

/// Appends the crate-relative path of every `.rs` file under `root/dir` to `out`.
pub fn collect_rs_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries = fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.join(dir).display()));
    for entry in entries {
        let name = entry.expect("directory entry").file_name();
        let rel = dir.join(&name);
        if root.join(&rel).is_dir() {
            collect_rs_files(root, &rel, out);
        } else if rel.extension().is_some_and(|ext| ext == "rs") {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// `source` with every comment (line, doc, nested block) and every string, raw string, byte
/// string and char literal replaced by spaces. Newlines are kept, so line numbers still hold.
pub fn strip_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut code = String::with_capacity(source.len());
    let mut pos = 0;
    while pos < chars.len() {
        if let Some(end) = skipped_span_end(&chars, pos) {
            code.extend(chars[pos..end].iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
            pos = end;
        } else {
            code.push(chars[pos]);
            pos += 1;
        }
    }
    code
}

/// If a comment or literal starts at `pos`, the index just past its end.
fn skipped_span_end(chars: &[char], pos: usize) -> Option<usize> {
    let after_ident = pos > 0 && is_ident_char(chars[pos - 1]);
    match (chars[pos], chars.get(pos + 1)) {
        ('/', Some('/')) => Some(line_end(chars, pos)),
        ('/', Some('*')) => Some(block_comment_end(chars, pos)),
        ('"', _) => Some(quoted_end(chars, pos + 1, '"')),
        ('\'', _) => char_literal_end(chars, pos),
        ('b' | 'c' | 'r', _) if !after_ident => prefixed_literal_end(chars, pos),
        _ => None,
    }
}

/// End of a `b"..."`, `c"..."`, `b'x'`, `r#"..."#`, `br"..."` or `cr"..."` literal at `pos`.
fn prefixed_literal_end(chars: &[char], pos: usize) -> Option<usize> {
    let quote_at = if chars[pos] == 'r' { pos } else { pos + 1 };
    match chars.get(quote_at) {
        Some('"') if quote_at > pos => Some(quoted_end(chars, quote_at + 1, '"')),
        Some('\'') if chars[pos] == 'b' => char_literal_end(chars, quote_at),
        Some('r') => raw_string_end(chars, quote_at + 1),
        _ => None,
    }
}

/// End of a raw string whose hashes start at `start` (just past the `r`), if it is one.
fn raw_string_end(chars: &[char], start: usize) -> Option<usize> {
    let hashes = chars[start..].iter().take_while(|&&c| c == '#').count();
    if chars.get(start + hashes) != Some(&'"') {
        return None;
    }
    let mut pos = start + hashes + 1;
    while pos < chars.len() {
        let closes = chars[pos] == '"'
            && chars[pos + 1..].iter().take(hashes).filter(|&&c| c == '#').count() == hashes;
        if closes {
            return Some(pos + 1 + hashes);
        }
        pos += 1;
    }
    Some(chars.len())
}

/// End of a literal whose body starts at `start` and runs to an unescaped `quote`.
fn quoted_end(chars: &[char], start: usize, quote: char) -> usize {
    let mut pos = start;
    while pos < chars.len() {
        match chars[pos] {
            '\\' => pos += 2,
            c if c == quote => return pos + 1,
            _ => pos += 1,
        }
    }
    chars.len()
}

/// End of the char literal at `pos` (a `'`), or `None` for a lifetime or loop label.
fn char_literal_end(chars: &[char], pos: usize) -> Option<usize> {
    match (chars.get(pos + 1), chars.get(pos + 2)) {
        (Some('\\'), _) => Some(quoted_end(chars, pos + 1, '\'')),
        (Some(_), Some('\'')) => Some(pos + 3),
        _ => None,
    }
}

/// End of the (possibly nested) block comment starting at `pos`.
fn block_comment_end(chars: &[char], pos: usize) -> usize {
    let mut depth = 0;
    let mut pos = pos;
    while pos + 1 < chars.len() {
        match (chars[pos], chars[pos + 1]) {
            ('/', '*') => {
                depth += 1;
                pos += 2;
            }
            ('*', '/') => {
                depth -= 1;
                pos += 2;
                if depth == 0 {
                    return pos;
                }
            }
            _ => pos += 1,
        }
    }
    chars.len()
}

/// Index of the newline ending the line that `pos` is on (or the end of input).
fn line_end(chars: &[char], pos: usize) -> usize {
    chars[pos..].iter().position(|&c| c == '\n').map_or(chars.len(), |offset| pos + offset)
}

/// Splits stripped code into identifier/number tokens, `::`, and single punctuation chars. A
/// raw identifier `r#name` becomes `name`.
pub fn tokenize(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let (mut pos, mut line) = (0, 1);
    while pos < chars.len() {
        let c = chars[pos];
        if c == '\n' {
            line += 1;
            pos += 1;
        } else if c.is_whitespace() {
            pos += 1;
        } else if is_ident_char(c) {
            let start = if is_raw_ident(&chars, pos) { pos + 2 } else { pos };
            pos = start;
            while pos < chars.len() && is_ident_char(chars[pos]) {
                pos += 1;
            }
            tokens.push(Token { text: chars[start..pos].iter().collect(), line });
        } else if c == ':' && chars.get(pos + 1) == Some(&':') {
            tokens.push(Token { text: "::".to_string(), line });
            pos += 2;
        } else {
            tokens.push(Token { text: c.to_string(), line });
            pos += 1;
        }
    }
    tokens
}

/// Whether a raw identifier (`r#` then an identifier) starts at `pos`.
fn is_raw_ident(chars: &[char], pos: usize) -> bool {
    chars[pos] == 'r'
        && chars.get(pos + 1) == Some(&'#')
        && chars.get(pos + 2).is_some_and(|&c| is_ident_char(c))
}

/// Whether `c` can be part of an identifier or number.
fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether a token is an identifier or keyword (not a number or punctuation).
pub fn is_ident(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}
