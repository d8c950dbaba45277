//! The committed include/chat.h: exactly what cbindgen makes of src/ffi/,
//! versioned like Cargo.toml, every function documented, and every function
//! and error code exercised by some test or host.

use std::path::{Path, PathBuf};

/// build.rs itself, so that the header is generated here by the very same
/// code (only `generate_header` is used).
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn committed_header() -> String {
    std::fs::read_to_string(crate_dir().join("include").join("chat.h")).expect("include/chat.h exists")
}

#[test]
fn committed_header_is_what_cbindgen_makes() {
    let fresh = build_script::generate_header(&crate_dir(), env!("CARGO_PKG_VERSION"))
        .unwrap_or_else(|e| panic!("cbindgen failed on src/ffi/: {e}"));
    let committed = committed_header();
    if fresh != committed {
        let line = fresh
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| fresh.lines().count().min(committed.lines().count()));
        panic!(
            "include/chat.h differs from what cbindgen makes of src/ffi/ (first at line {}):\n  \
             committed: {:?}\n  generated: {:?}\n`cargo build` rewrites it; commit the result",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            fresh.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

/// The value of `#define NAME VALUE` in the header.
fn define<'a>(header: &'a str, name: &str) -> &'a str {
    header
        .lines()
        .find_map(|l| l.strip_prefix("#define ")?.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no #define {name} in include/chat.h"))
        .trim()
}

#[test]
fn version_macros_match_cargo_toml() {
    let h = committed_header();
    assert_eq!(define(&h, "CHAT_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MAJOR"));
    assert_eq!(define(&h, "CHAT_VERSION_MINOR"), env!("CARGO_PKG_VERSION_MINOR"));
    assert_eq!(define(&h, "CHAT_VERSION_PATCH"), env!("CARGO_PKG_VERSION_PATCH"));
    assert_eq!(
        define(&h, "CHAT_VERSION"),
        format!("\"{}\"", env!("CARGO_PKG_VERSION"))
    );
}

/// A declaration of the header outside comments: (its name, whether the
/// nearest non-blank line above ends a comment).
struct Declared {
    name: String,
    documented: bool,
}

/// The functions the header declares, with whether each has a comment
/// right above it.
fn functions(header: &str) -> Vec<Declared> {
    let mut out = Vec::new();
    let mut in_comment = false;
    let mut previous = "";
    for line in header.lines() {
        let t = line.trim();
        if in_comment || t.starts_with("/*") {
            in_comment = !t.ends_with("*/");
        } else if !t.starts_with('#') && !t.starts_with("//") && !t.starts_with("typedef") {
            if let Some(name) = declared_function(t) {
                out.push(Declared {
                    name,
                    documented: previous.ends_with("*/"),
                });
            }
        }
        if !t.is_empty() {
            previous = t;
        }
    }
    out
}

/// `chat_x` from a line like `int chat_x(ChatServer *s);`.
fn declared_function(line: &str) -> Option<String> {
    let open = line.find('(')?;
    let name: String = line[..open]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    name.starts_with("chat_").then_some(name)
}

/// The names of `#define PREFIX...` constants in the header.
fn constants(header: &str, prefix: &str) -> Vec<String> {
    header
        .lines()
        .filter_map(|l| l.strip_prefix("#define ")?.split(' ').next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

#[test]
fn header_declares_the_functions_of_the_c_api() {
    let names: Vec<String> = functions(&committed_header())
        .into_iter()
        .map(|d| d.name)
        .collect();
    // The contract of /work/shared/C_API.md and notes/ABI.md; more may follow.
    for name in [
        "chat_config_default",
        "chat_server_new",
        "chat_server_port",
        "chat_server_poll_once",
        "chat_server_next_event",
        "chat_server_fds",
        "chat_server_timeout_ms",
        "chat_server_wakeup",
        "chat_send",
        "chat_broadcast",
        "chat_kick",
        "chat_server_shutdown",
        "chat_server_stats",
        "chat_server_free",
        "chat_last_error",
        "chat_last_error_code",
        "chat_strerror",
        "chat_version",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} is not declared in include/chat.h"
        );
    }
}

#[test]
fn every_function_and_constant_has_a_doc_comment() {
    let h = committed_header();
    let undocumented: Vec<String> = functions(&h)
        .into_iter()
        .filter(|d| !d.documented)
        .map(|d| d.name)
        .collect();
    assert!(
        undocumented.is_empty(),
        "functions without a doc comment: {undocumented:?}"
    );
    let lines: Vec<&str> = h.lines().collect();
    for name in constants(&h, "CHAT_")
        .into_iter()
        .filter(|n| !n.starts_with("CHAT_VERSION") && n != "CHAT_H")
    {
        let at = lines
            .iter()
            .position(|l| l.strip_prefix("#define ").and_then(|r| r.split(' ').next()) == Some(&name))
            .unwrap();
        assert!(
            at > 0 && lines[at - 1].trim().ends_with("*/"),
            "#define {name} has no doc comment"
        );
    }
}

/// Every text file under `dir` (recursively) that a test or host may be
/// written in.
fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "__pycache__" && name != "target" {
                sources(&path, out);
            }
        } else if path
            .extension()
            .is_some_and(|e| ["rs", "c", "h", "cpp", "hpp", "cc", "py"].iter().any(|x| e == *x))
        {
            if let Ok(text) = std::fs::read_to_string(&path) {
                out.push((path, text));
            }
        }
    }
}

/// Whether `text` has `word` as a whole identifier.
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[test]
fn every_function_is_called_by_a_test_or_host() {
    let mut files = Vec::new();
    for dir in ["tests", "examples", "bindings"] {
        sources(&crate_dir().join(dir), &mut files);
    }
    // This file must not count: it names functions only to check them.
    let this = crate_dir().join("tests").join("header.rs");
    files.retain(|(path, _)| *path != this);
    let unused: Vec<String> = functions(&committed_header())
        .into_iter()
        .map(|d| d.name)
        .filter(|name| !files.iter().any(|(_, text)| mentions(text, name)))
        .collect();
    assert!(
        unused.is_empty(),
        "functions of include/chat.h that nothing in tests/, examples/ or bindings/ calls: {unused:?}"
    );
}

#[test]
fn every_error_code_is_checked_by_misuse_c() {
    let misuse = std::fs::read_to_string(crate_dir().join("tests").join("c").join("misuse.c")).unwrap();
    let missing: Vec<String> = constants(&committed_header(), "CHAT_ERR_")
        .into_iter()
        .filter(|name| !mentions(&misuse, name))
        .collect();
    assert!(
        missing.is_empty(),
        "error codes missing from tests/c/misuse.c's table: {missing:?}"
    );
}
