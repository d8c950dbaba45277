//! Writes the C header `chat.h` from `src/ffi/` with cbindgen: always to
//! `$OUT_DIR/include/chat.h`, and to the committed `include/chat.h` too when
//! this is the crate's own source tree (see [`is_source_tree`]). A copy of
//! the crate that cargo unpacked to build it as someone's dependency (from
//! crates.io, a git source or `cargo vendor`) is never written to.
//!
//! The header is committed and `tests/header.rs` fails when it differs from
//! what [`generate_header`] makes, so a failure here is only a warning: a
//! syntax error in a file being edited must not stop the crate from building.

use std::path::{Path, PathBuf};

/// `CHAT_WRITE_HEADER=1` makes the build refresh `include/chat.h` wherever
/// the crate is, `=0` never; unset, [`is_source_tree`] decides.
const WRITE_HEADER_VAR: &str = "CHAT_WRITE_HEADER";

/// Files that cargo puts into the copies of a crate it makes itself:
/// `cargo package` (so crates.io downloads too) keeps the original manifest
/// as `Cargo.toml.orig`, `cargo vendor` adds `.cargo-checksum.json`, and
/// the registry and git sources mark an unpacked crate with `.cargo-ok`.
const COPY_MARKERS: [&str; 3] = ["Cargo.toml.orig", ".cargo-checksum.json", ".cargo-ok"];

/// Whether `crate_dir` is the crate's own source tree, being developed,
/// rather than a copy cargo made to build it for someone: it holds none of
/// [`COPY_MARKERS`] and is not under `cargo_home` (where the registry and
/// git sources unpack crates). A path dependency on a checkout is the
/// checkout: it is written to, as a build inside it would.
pub(crate) fn is_source_tree(crate_dir: &Path, cargo_home: Option<&Path>) -> bool {
    if COPY_MARKERS.iter().any(|m| crate_dir.join(m).exists()) {
        return false;
    }
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    match cargo_home {
        Some(home) => !canonical(crate_dir).starts_with(canonical(home)),
        None => true,
    }
}

/// Where cargo keeps downloaded crates: `$CARGO_HOME`, else `~/.cargo`.
fn cargo_home() -> Option<PathBuf> {
    match std::env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => Some(PathBuf::from(home)),
        _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")),
    }
}

/// The header text for the crate in `crate_dir`, at package `version`
/// (`MAJOR.MINOR.PATCH`, maybe with a `-pre` suffix). Shared with
/// `tests/header.rs`, which includes this file.
pub(crate) fn generate_header(crate_dir: &Path, version: &str) -> Result<String, String> {
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))?;
    let core = version.split(['-', '+']).next().unwrap_or(version);
    let mut parts = core.split('.');
    let mut next = || parts.next().unwrap_or("0").to_string();
    let (major, minor, patch) = (next(), next(), next());
    let macros = format!(
        "\n#define CHAT_VERSION_MAJOR {major}\n#define CHAT_VERSION_MINOR {minor}\n\
         #define CHAT_VERSION_PATCH {patch}\n#define CHAT_VERSION \"{version}\"\n"
    );
    let src = crate_dir.join("src").join("ffi").join("mod.rs");
    // cbindgen panics on a few inputs it cannot handle; that too is only a
    // reason to keep the committed header.
    let bindings = std::panic::catch_unwind(|| {
        cbindgen::Builder::new()
            .with_config(config)
            .with_after_include(macros)
            .with_src(src)
            .generate()
    })
    .map_err(|_| "cbindgen panicked".to_string())?
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    let text = String::from_utf8(out).map_err(|e| e.to_string())?;
    Ok(parenthesize_negative_defines(&text))
}

/// `#define CHAT_ERR_NULL -1` becomes `#define CHAT_ERR_NULL (-1)`, so that
/// a macro is one operand wherever it is used (`x-CHAT_ERR_NULL`); cbindgen
/// drops the parentheses written in Rust.
fn parenthesize_negative_defines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let mut words = body.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("#define"), Some(name), Some(value))
                if value
                    .strip_prefix('-')
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) =>
            {
                out.push_str(&format!("#define {name} ({value})"));
                out.push_str(&line[body.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Replaces `path` with `text` unless it already holds exactly that, so
/// that an unchanged header does not look modified to anything watching it.
/// Writes a temporary file and renames it, so a concurrent build never
/// reads half a header.
fn write_if_changed(path: &Path, text: &str) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    let tmp = path.with_extension(format!("h.tmp{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={WRITE_HEADER_VAR}");
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let crate_dir = Path::new(&crate_dir);
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let in_source = match std::env::var(WRITE_HEADER_VAR).as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => is_source_tree(crate_dir, cargo_home().as_deref()),
    };
    let text = match generate_header(crate_dir, &version) {
        Ok(text) => text,
        Err(e) => {
            println!("cargo:warning=chat.h not regenerated (cbindgen: {e})");
            return;
        }
    };
    let mut targets = vec![out_dir.join("include")];
    if in_source {
        targets.push(crate_dir.join("include"));
    }
    for dir in targets {
        let written =
            std::fs::create_dir_all(&dir).and_then(|()| write_if_changed(&dir.join("chat.h"), &text));
        if let Err(e) = written {
            println!("cargo:warning=cannot write {}: {e}", dir.join("chat.h").display());
        }
    }
}
