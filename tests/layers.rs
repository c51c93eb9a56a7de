//! Guards the direction of dependencies between the library's modules.
//!
//! Data flows one way: socket -> protocol -> http -> domain (accounts, delivery) -> store and
//! the shard rings. The per-shard state sits low, the server loop sits on top. A module may
//! use what sits below it, never what sits above it: once a store helper calls into http, or
//! two files call into each other, every layer depends on every other and none of them can be
//! read, tested or replaced on its own. This file checks two properties of `src/`:
//!
//! - `no_module_imports_a_higher_layer`: every crate path a file names (`crate::`, `super::`,
//!   `self::`, `use` trees and inline paths alike) lands in the file's own layer or a lower
//!   one, by the order in [`LAYERS`].
//! - `no_import_cycles_between_files`: the file -> file reference graph has no cycles, not
//!   even between two files of one layer.
//!
//! It reads the sources as text (std only, no dependency on the crate, so it also guards a
//! tree that does not build yet). Comments and string literals are blanked before parsing, so
//! doc links never count as dependencies. Binaries (`src/main.rs`, `src/bin/`) and the root
//! `src/lib.rs`, which only declares modules, are not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

#[path = "common/rust_source.rs"]
mod rust_source;
use rust_source::{is_ident, src_files, strip_comments_and_literals, tokenize, Token};

/// The library's layers, lowest first. A file belongs to the layer of its top-level module
/// (`src/http/websocket/session.rs` is in `http`) and may name paths in its own layer or a
/// lower one only. A new top-level module must be added here, at the height it belongs:
/// below everything that uses it, above everything it uses.
const LAYERS: &[&str] = &[
    "clock",
    "config",
    "tls",
    "ratelimit",
    "protocol",
    "metrics",
    "store",
    "accounts",
    "directory",
    "push",
    "shard",
    "delivery",
    "provisioning",
    "cluster",
    "calls",
    "discovery",
    "http",
    "server",
];

/// One library source file.
struct SourceFile {
    /// Path relative to the crate root, e.g. `src/http/conn.rs`.
    rel_path: String,
    /// Module path without the leading `crate`, e.g. `["http", "conn"]`.
    module: Vec<String>,
    /// The file's full text.
    text: String,
}

/// A crate path named by a file, resolved to an absolute module path (without `crate`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    /// Absolute path, e.g. `["http", "conn", "now_ms"]`; a glob import names its module.
    path: Vec<String>,
    /// 1-based line of the reference.
    line: usize,
    /// Reached through a name a `use` brought in (`routes::health::get` after
    /// `use crate::http::routes;`): the `use` itself was already checked for layering.
    via_alias: bool,
}

/// A path as written, before resolution.
struct RawPath {
    /// Segments as written, e.g. `["super", "x", "Y"]`.
    segments: Vec<String>,
    /// The module the path sits in: the file's module plus any inline `mod` blocks around it.
    scope: Vec<String>,
    /// Whether the path sits outside every inline `mod` block.
    at_file_level: bool,
    /// The name a `use` leaf brings into scope (`None` for globs, `as _` and inline paths).
    bound: Option<String>,
    /// 1-based line.
    line: usize,
}

#[test]
fn no_module_imports_a_higher_layer() {
    let files = library_sources();
    let mut problems = Vec::new();
    let unlayered = unlayered_modules(&files);
    if !unlayered.is_empty() {
        problems.push(format!(
            "top-level module(s) {unlayered:?} have no layer: add each to LAYERS in \
             tests/layers.rs, above every module it uses and below every module that uses it"
        ));
    }
    let violations = layer_violations(&files);
    if !violations.is_empty() {
        problems.push(format!(
            "{} reference(s) point up the layer order (lowest first: {}). Move the shared \
             piece down to the lower layer, or pass it in from above:\n{}",
            violations.len(),
            LAYERS.join(" < "),
            violations.join("\n")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn no_import_cycles_between_files() {
    let files = library_sources();
    let edges = file_edges(&files);
    let mut adjacency = vec![Vec::new(); files.len()];
    for &(from, to) in edges.keys() {
        adjacency[from].push(to);
    }
    let cycles: Vec<Vec<usize>> =
        strongly_connected_components(&adjacency).into_iter().filter(|c| c.len() > 1).collect();
    assert!(cycles.is_empty(), "{}", describe_cycles(&cycles, &files, &edges));
}

// ---------------------------------------------------------------------------------------------
// Source discovery

/// Every library `.rs` file under `src/`, sorted by path: not `lib.rs`, `main.rs` or `bin/`.
fn library_sources() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    src_files()
        .into_iter()
        .filter(|p| p != "src/lib.rs" && p != "src/main.rs" && !p.starts_with("src/bin/"))
        .map(|rel_path| {
            let text = fs::read_to_string(root.join(&rel_path))
                .unwrap_or_else(|e| panic!("reading {rel_path}: {e}"));
            SourceFile { module: module_path(&rel_path), rel_path, text }
        })
        .collect()
}

/// The module path of a source file: `src/a/b.rs` -> `a::b`, `src/a/mod.rs` -> `a`.
fn module_path(rel_path: &str) -> Vec<String> {
    let inner = rel_path.strip_prefix("src/").unwrap_or(rel_path);
    let inner = inner.strip_suffix(".rs").unwrap_or(inner);
    let mut module: Vec<String> = inner.split('/').map(str::to_string).collect();
    if module.last().is_some_and(|last| last == "mod") {
        module.pop();
    }
    module
}

/// Index of each file by module path.
fn module_index(files: &[SourceFile]) -> BTreeMap<Vec<String>, usize> {
    files.iter().enumerate().map(|(index, file)| (file.module.clone(), index)).collect()
}

/// The file that holds `path`: the longest prefix of it that is a file's module.
fn owning_file(path: &[String], modules: &BTreeMap<Vec<String>, usize>) -> Option<usize> {
    (1..=path.len()).rev().find_map(|len| modules.get(&path[..len]).copied())
}

// ---------------------------------------------------------------------------------------------
// Layer check

/// Position of a top-level module in [`LAYERS`], lowest 0.
fn layer_of(top_level_module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| *layer == top_level_module)
}

/// Top-level modules that have files but no entry in [`LAYERS`].
fn unlayered_modules(files: &[SourceFile]) -> BTreeSet<String> {
    files.iter().map(|f| f.module[0].clone()).filter(|m| layer_of(m).is_none()).collect()
}

/// One line per distinct (file, path) that names a higher layer, in file and line order.
fn layer_violations(files: &[SourceFile]) -> Vec<String> {
    let modules = module_index(files);
    let mut violations = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let from_module = &file.module[0];
        let Some(from_layer) = layer_of(from_module) else { continue };
        let mut seen = BTreeSet::new();
        for reference in references(&file.text, &file.module) {
            if reference.via_alias || owning_file(&reference.path, &modules) == Some(index) {
                continue;
            }
            // Paths to root items (macros, lib.rs re-exports) name no layer.
            let Some(to_module) = reference.path.first() else { continue };
            let Some(to_layer) = layer_of(to_module) else { continue };
            if to_layer > from_layer && seen.insert(reference.path.clone()) {
                violations.push(format!(
                    "{}:{} ({from_module}) -> crate::{} ({to_module})",
                    file.rel_path,
                    reference.line,
                    reference.path.join("::")
                ));
            }
        }
    }
    violations
}

// ---------------------------------------------------------------------------------------------
// Cycle check

/// Edges file -> file (self edges left out), each with the first reference that makes it.
fn file_edges(files: &[SourceFile]) -> BTreeMap<(usize, usize), Reference> {
    let modules = module_index(files);
    let mut edges = BTreeMap::new();
    for (from, file) in files.iter().enumerate() {
        for reference in references(&file.text, &file.module) {
            match owning_file(&reference.path, &modules) {
                Some(to) if to != from => {
                    edges.entry((from, to)).or_insert(reference);
                }
                _ => {}
            }
        }
    }
    edges
}

/// Tarjan's algorithm state over a graph given as adjacency lists.
struct Tarjan<'g> {
    adjacency: &'g [Vec<usize>],
    index_of: Vec<Option<usize>>,
    lowlink: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next_index: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    /// Visits `node` and everything reachable from it, emitting finished components.
    fn visit(&mut self, node: usize) {
        self.index_of[node] = Some(self.next_index);
        self.lowlink[node] = self.next_index;
        self.next_index += 1;
        self.stack.push(node);
        self.on_stack[node] = true;
        for &next in &self.adjacency[node] {
            match self.index_of[next] {
                None => {
                    self.visit(next);
                    self.lowlink[node] = self.lowlink[node].min(self.lowlink[next]);
                }
                Some(index) if self.on_stack[next] => {
                    self.lowlink[node] = self.lowlink[node].min(index);
                }
                Some(_) => {}
            }
        }
        if Some(self.lowlink[node]) == self.index_of[node] {
            let mut component = Vec::new();
            while let Some(member) = self.stack.pop() {
                self.on_stack[member] = false;
                component.push(member);
                if member == node {
                    break;
                }
            }
            component.sort_unstable();
            self.components.push(component);
        }
    }
}

/// Strongly connected components, each sorted, ordered by their smallest node.
fn strongly_connected_components(adjacency: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let count = adjacency.len();
    let mut tarjan = Tarjan {
        adjacency,
        index_of: vec![None; count],
        lowlink: vec![0; count],
        on_stack: vec![false; count],
        stack: Vec::new(),
        next_index: 0,
        components: Vec::new(),
    };
    for node in 0..count {
        if tarjan.index_of[node].is_none() {
            tarjan.visit(node);
        }
    }
    tarjan.components.sort();
    tarjan.components
}

/// The failure message: every cycle with its files and the edges that close it.
fn describe_cycles(
    cycles: &[Vec<usize>],
    files: &[SourceFile],
    edges: &BTreeMap<(usize, usize), Reference>,
) -> String {
    let mut message = format!(
        "{} import cycle(s) between files; break each by moving the shared piece down into \
         its own file or inverting one call:\n",
        cycles.len()
    );
    for (number, cycle) in cycles.iter().enumerate() {
        let names: Vec<&str> = cycle.iter().map(|&f| files[f].rel_path.as_str()).collect();
        let _ = writeln!(
            message,
            "\ncycle {} ({} files): {}",
            number + 1,
            cycle.len(),
            names.join(", ")
        );
        for (from, to, reference) in edges_within(cycle, edges) {
            let _ = writeln!(
                message,
                "  {}:{} -> {} (crate::{})",
                files[from].rel_path,
                reference.line,
                files[to].rel_path,
                reference.path.join("::")
            );
        }
    }
    message
}

/// The edges between members of `cycle`, by source file and then line.
fn edges_within<'e>(
    cycle: &[usize],
    edges: &'e BTreeMap<(usize, usize), Reference>,
) -> Vec<(usize, usize, &'e Reference)> {
    let mut within: Vec<(usize, usize, &Reference)> = edges
        .iter()
        .filter(|(&(from, to), _)| cycle.contains(&from) && cycle.contains(&to))
        .map(|(&(from, to), reference)| (from, to, reference))
        .collect();
    within.sort_by_key(|&(from, _, reference)| (from, reference.line));
    within
}

// ---------------------------------------------------------------------------------------------
// Reference extraction

/// Every crate path `source` names from code, resolved against `file_module` and in line
/// order: `use` trees (grouped and nested), inline `crate::`/`super::`/`self::` paths, paths
/// through a child module (`owner::owner` beside `mod owner;`), and paths through an imported
/// name (`routes::health::get` after `use crate::http::routes;`, marked `via_alias`).
fn references(source: &str, file_module: &[String]) -> Vec<Reference> {
    let tokens = tokenize(&strip_comments_and_literals(source));
    let (raw_paths, child_modules) = raw_paths(&tokens, file_module);
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut references = Vec::new();
    let mut unanchored = Vec::new();
    for raw in raw_paths {
        match anchored_path(&raw, &child_modules) {
            Some(path) => {
                if let Some(name) = &raw.bound {
                    aliases.insert(name.clone(), path.clone());
                }
                references.push(Reference { path, line: raw.line, via_alias: false });
            }
            None => unanchored.push(raw),
        }
    }
    for raw in unanchored {
        if let Some(target) = aliases.get(&raw.segments[0]) {
            let path = [target.as_slice(), &raw.segments[1..]].concat();
            references.push(Reference { path, line: raw.line, via_alias: true });
        }
    }
    references.sort_by_key(|reference| reference.line);
    references
}

/// Resolves a path that starts at `crate`, `self`, `super` or a child module of the file.
fn anchored_path(raw: &RawPath, child_modules: &BTreeSet<String>) -> Option<Vec<String>> {
    let (first, rest) = raw.segments.split_first()?;
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => Some([raw.scope.as_slice(), rest].concat()),
        "super" => {
            let mut base = raw.scope.clone();
            let mut rest = raw.segments.as_slice();
            while rest.first().is_some_and(|segment| segment == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            Some([base.as_slice(), rest].concat())
        }
        name if raw.at_file_level && child_modules.contains(name) => {
            Some([raw.scope.as_slice(), &raw.segments].concat())
        }
        _ => None,
    }
}

/// Every path in the token stream as written (use leaves and inline paths of two or more
/// segments), plus the names of the modules the file declares at its top level.
fn raw_paths(tokens: &[Token], file_module: &[String]) -> (Vec<RawPath>, BTreeSet<String>) {
    let mut scope = file_module.to_vec();
    let mut inline_mod_depths: Vec<usize> = Vec::new();
    let mut child_modules = BTreeSet::new();
    let mut brace_depth = 0;
    let mut paths = Vec::new();
    let mut pos = 0;
    while pos < tokens.len() {
        let at_file_level = inline_mod_depths.is_empty();
        match tokens[pos].text.as_str() {
            "use" => {
                pos = parse_use_declaration(tokens, pos + 1, &scope, at_file_level, &mut paths);
                continue;
            }
            "mod" if tokens.get(pos + 1).is_some_and(|t| is_ident(&t.text)) => {
                let name = tokens[pos + 1].text.clone();
                if at_file_level && brace_depth == 0 {
                    child_modules.insert(name.clone());
                }
                if tokens.get(pos + 2).is_some_and(|t| t.text == "{") {
                    scope.push(name);
                    inline_mod_depths.push(brace_depth);
                }
                pos += 2;
                continue;
            }
            "{" => brace_depth += 1,
            "}" => {
                brace_depth = brace_depth.saturating_sub(1);
                if inline_mod_depths.last() == Some(&brace_depth) {
                    inline_mod_depths.pop();
                    scope.pop();
                }
            }
            _ if starts_path(tokens, pos) => {
                let line = tokens[pos].line;
                let mut segments = Vec::new();
                while let Some(token) = tokens.get(pos).filter(|t| is_ident(&t.text)) {
                    segments.push(token.text.clone());
                    if tokens.get(pos + 1).is_none_or(|t| t.text != "::") {
                        break;
                    }
                    pos += 2;
                }
                let scope = scope.clone();
                paths.push(RawPath { segments, scope, at_file_level, bound: None, line });
            }
            _ => {}
        }
        pos += 1;
    }
    (paths, child_modules)
}

/// Whether a path of two or more segments starts at `pos` (an identifier followed by `::`,
/// not itself preceded by `::`).
fn starts_path(tokens: &[Token], pos: usize) -> bool {
    is_ident(&tokens[pos].text)
        && tokens.get(pos + 1).is_some_and(|t| t.text == "::")
        && (pos == 0 || tokens[pos - 1].text != "::")
}

/// A path a `use` tree brings in.
struct UseLeaf {
    segments: Vec<String>,
    bound: Option<String>,
    line: usize,
}

/// Parses the use tree starting at `start` (just past `use`), appends its leaves to `out`, and
/// returns the position just past the declaration.
fn parse_use_declaration(
    tokens: &[Token],
    start: usize,
    scope: &[String],
    at_file_level: bool,
    out: &mut Vec<RawPath>,
) -> usize {
    let mut pos = start;
    let mut leaves = Vec::new();
    parse_use_tree(tokens, &mut pos, &[], &mut leaves);
    for UseLeaf { segments, bound, line } in leaves {
        out.push(RawPath { segments, scope: scope.to_vec(), at_file_level, bound, line });
    }
    if tokens.get(pos).is_some_and(|t| t.text == ";") {
        pos += 1;
    }
    pos.max(start)
}

/// Parses one use tree below `prefix` (`a::b`, `a::*`, `a::{..}`, `a as b`, `self`), leaving
/// `pos` on the `,`, `}` or `;` that ends it.
fn parse_use_tree(tokens: &[Token], pos: &mut usize, prefix: &[String], out: &mut Vec<UseLeaf>) {
    let mut segments = prefix.to_vec();
    let mut line = tokens.get(*pos).map_or(0, |t| t.line);
    let mut names_prefix = false;
    let mut bound = None;
    while let Some(token) = tokens.get(*pos) {
        match token.text.as_str() {
            "::" => *pos += 1,
            "*" => {
                *pos += 1;
                out.push(UseLeaf { segments, bound: None, line: token.line });
                return;
            }
            "{" => {
                *pos += 1;
                parse_use_group(tokens, pos, &segments, out);
                return;
            }
            "self" if !prefix.is_empty() && segments.len() == prefix.len() => {
                names_prefix = true;
                line = token.line;
                *pos += 1;
            }
            "as" => {
                let alias = tokens.get(*pos + 1).map(|t| t.text.clone());
                bound = Some(alias.filter(|name| name != "_"));
                *pos += 2;
            }
            text if is_ident(text) && bound.is_none() => {
                segments.push(text.to_string());
                line = token.line;
                *pos += 1;
            }
            _ => break,
        }
    }
    if segments.len() > prefix.len() || names_prefix {
        let bound = bound.unwrap_or_else(|| segments.last().cloned());
        out.push(UseLeaf { segments, bound, line });
    }
}

/// Parses the trees of a `{..}` group (after its `{`) through its closing `}`.
fn parse_use_group(tokens: &[Token], pos: &mut usize, prefix: &[String], out: &mut Vec<UseLeaf>) {
    while let Some(token) = tokens.get(*pos) {
        match token.text.as_str() {
            "}" => {
                *pos += 1;
                return;
            }
            "," => *pos += 1,
            _ => {
                let before = *pos;
                parse_use_tree(tokens, pos, prefix, out);
                if *pos == before {
                    *pos += 1;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing

// ---------------------------------------------------------------------------------------------
// Tests of the parser itself

/// The resolved paths `source` names from module `module`, joined with `::`.
fn paths_in(source: &str, module: &[&str]) -> Vec<String> {
    let module: Vec<String> = module.iter().map(ToString::to_string).collect();
    references(source, &module).into_iter().map(|r| r.path.join("::")).collect()
}

#[test]
fn module_paths_follow_file_paths() {
    assert_eq!(module_path("src/a/b.rs"), ["a", "b"]);
    assert_eq!(module_path("src/a/mod.rs"), ["a"]);
    assert_eq!(module_path("src/config.rs"), ["config"]);
}

#[test]
fn grouped_use_with_nested_braces_yields_every_leaf() {
    let source = "use crate::{a::b, c::{d, e::{self, F as G}, h::*}, i};\nfn f() {}\n";
    assert_eq!(paths_in(source, &["x"]), ["a::b", "c::d", "c::e", "c::e::F", "c::h", "i"]);
    let leaves = "use crate::http::head::{self, Head};";
    assert_eq!(paths_in(leaves, &["x"]), ["http::head", "http::head::Head"]);
}

#[test]
fn inline_paths_are_found_anywhere_in_code() {
    let source =
        "fn f() {\n    let t = crate::clock::now_ms() + crate::a::b::C::<u8>::new(x);\n    \
                  r#match(crate::r#type::f(), Vec::<crate::d::E>::new())\n}\n";
    let expected = ["clock::now_ms", "a::b::C", "type::f", "d::E"];
    assert_eq!(paths_in(source, &["x"]), expected);
}

#[test]
fn comments_and_literals_are_blanked_with_lines_kept() {
    let source =
        "a // crate::x\nb /* c /* d */ e */ f\n\"s\\\"{\" 'g' '{' '\\'' r#\"h\"# b\"i\" 'l\n";
    let expected = format!("a{}\nb{}f\n{}'l\n", " ".repeat(12), " ".repeat(19), " ".repeat(32));
    assert_eq!(strip_comments_and_literals(source), expected);
}

#[test]
fn paths_in_comments_and_strings_are_not_references() {
    let source = r###"
//! crate::docs::a
/// See [`crate::docs::b`].
// crate::docs::c
/* crate::docs::d /* nested crate::docs::e */ crate::docs::f */
fn f<'a>(x: &'a str) -> char {
    let s = "crate::strings::a \" crate::strings::b";
    let r = r##"crate::strings::c "# still"##;
    let b = b"crate::strings::d";
    let _ = crate::real::used(s, r, b);
    '"'
}
fn g() { let _ = crate::real::after_char(); }
"###;
    assert_eq!(paths_in(source, &["x"]), ["real::used", "real::after_char"]);
}

#[test]
fn super_resolves_from_a_plain_file_and_from_mod_rs() {
    let source = "use super::sibling::Item;\nfn f() { super::helper(); }\n";
    assert_eq!(paths_in(source, &["a", "b"]), ["a::sibling::Item", "a::helper"]);
    assert_eq!(paths_in(source, &["a"]), ["sibling::Item", "helper"]);
}

#[test]
fn self_and_child_module_paths_resolve_to_the_file_module() {
    let source = "pub mod owner;\npub use owner::owner;\nuse self::ring::Ring;\n";
    assert_eq!(paths_in(source, &["shard"]), ["shard::owner::owner", "shard::ring::Ring"]);
}

#[test]
fn super_glob_in_a_test_module_is_a_self_reference() {
    let source = "fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n    \
                  use super::super::c::D;\n    fn g() { super::f(); self::h(); }\n}\n\
                  fn after() { super::z(); }\n";
    let expected = ["a::b", "a::c::D", "a::b::f", "a::b::tests::h", "a::z"];
    assert_eq!(paths_in(source, &["a", "b"]), expected);
    let files: Vec<SourceFile> = ["src/a/b.rs", "src/a/c.rs", "src/a/mod.rs"]
        .iter()
        .map(|p| SourceFile {
            rel_path: p.to_string(),
            module: module_path(p),
            text: String::new(),
        })
        .collect();
    let modules = module_index(&files);
    let targets: Vec<Option<usize>> = references(source, &files[0].module)
        .iter()
        .map(|r| owning_file(&r.path, &modules))
        .collect();
    assert_eq!(targets, [Some(0), Some(1), Some(0), Some(0), Some(2)]);
}

#[test]
fn imported_module_names_extend_to_the_files_below() {
    let source = "use crate::http::routes;\nfn f() { routes::health::get(); }\n";
    let references = references(source, &["http".to_string(), "router".to_string()]);
    let paths: Vec<(String, bool)> =
        references.iter().map(|r| (r.path.join("::"), r.via_alias)).collect();
    let expected =
        [("http::routes".to_string(), false), ("http::routes::health::get".into(), true)];
    assert_eq!(paths, expected);
}

#[test]
fn components_group_exactly_the_nodes_on_cycles() {
    let adjacency = vec![vec![1], vec![2], vec![0, 3], vec![], vec![4, 3]];
    assert_eq!(strongly_connected_components(&adjacency), [vec![0, 1, 2], vec![3], vec![4]]);
}
