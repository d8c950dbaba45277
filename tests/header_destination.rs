//! Where build.rs writes the header: the committed include/chat.h only in
//! the crate's own source tree; in the copies cargo makes to build the
//! crate as someone's dependency (packaged, vendored, registry or git
//! checkouts, anything under CARGO_HOME), only $OUT_DIR/include/chat.h.

/// build.rs itself: the decision is its `is_source_tree`.
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

use std::path::Path;

use build_script::is_source_tree;

/// A directory laid out like the crate (a manifest and a build script),
/// with the given extra files.
fn crate_copy(parent: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    for file in ["Cargo.toml", "build.rs"].iter().chain(extra) {
        std::fs::write(dir.join(file), "").unwrap();
    }
    dir
}

#[test]
fn a_checkout_is_the_source_tree() {
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path().join("cargo-home");
    std::fs::create_dir_all(&home).unwrap();
    let checkout = crate_copy(scratch.path(), "chat", &[]);
    assert!(is_source_tree(&checkout, Some(&home)));
    assert!(is_source_tree(&checkout, None));
    // This very checkout, as `cargo test` builds it.
    assert!(is_source_tree(Path::new(env!("CARGO_MANIFEST_DIR")), Some(&home)));
}

#[test]
fn copies_cargo_made_are_not() {
    let scratch = tempfile::tempdir().unwrap();
    for (name, marker) in [
        ("packaged", "Cargo.toml.orig"),
        ("vendored", ".cargo-checksum.json"),
        ("unpacked", ".cargo-ok"),
    ] {
        let copy = crate_copy(scratch.path(), name, &[marker]);
        assert!(!is_source_tree(&copy, None), "a copy with {marker}");
    }
}

#[test]
fn anything_under_cargo_home_is_not() {
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path().join("cargo-home");
    let checkout = crate_copy(
        &home.join("git").join("checkouts").join("chat-1234"),
        "abcdef",
        &[],
    );
    assert!(!is_source_tree(&checkout, Some(&home)));
    // Through a symbolic link to the home too.
    let link = scratch.path().join("home-link");
    std::os::unix::fs::symlink(&home, &link).unwrap();
    assert!(!is_source_tree(&checkout, Some(&link)));
}
