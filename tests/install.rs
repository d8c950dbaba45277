//! `make install` as a packager and a C or C++ developer use it: the files
//! it lays out (the SONAME, the exported symbols, the links), a C program
//! built with nothing but `pkg-config` (shared, and static), a CMake
//! project using `find_package(chat)`, `DESTDIR` staging with Debian's
//! multiarch libdir, and `make uninstall`. Each test installs into its own
//! temporary prefix; the cargo builds behind `make` are shared (see
//! packaging::target_dir), so only the first one builds.

mod common;
mod packaging;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{start_listening, TestClient};
use packaging::{crate_dir, ensure_tool, files_under, make, realname, run, soname, temp_dir, VERSION};
use serde_json::json;

/// Every file `make install` writes, relative to the prefix (LIBDIR=lib).
fn expected_files() -> Vec<String> {
    let mut files = vec![
        "bin/chat_client".to_string(),
        "bin/chat_server".to_string(),
        "include/chat.h".to_string(),
        "include/chat.hpp".to_string(),
        "lib/cmake/chat/chatConfig.cmake".to_string(),
        "lib/cmake/chat/chatConfigVersion.cmake".to_string(),
        "lib/libchat.a".to_string(),
        "lib/libchat.so".to_string(),
        format!("lib/{}", realname()),
        format!("lib/{}", soname()),
        "lib/pkgconfig/chat-static.pc".to_string(),
        "lib/pkgconfig/chat.pc".to_string(),
    ];
    files.sort();
    files
}

/// `make install PREFIX=<a fresh temporary directory>`.
fn install() -> tempfile::TempDir {
    let prefix = temp_dir("prefix");
    make("install", &[("PREFIX", prefix.path())]);
    prefix
}

/// `pkg-config ARGS` seeing only the modules under `prefix`.
fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    ensure_tool("pkg-config", "pkg-config");
    let out = run(Command::new("pkg-config")
        .args(args)
        .env("PKG_CONFIG_LIBDIR", prefix.join("lib/pkgconfig"))
        .env_remove("PKG_CONFIG_PATH"));
    out.split_whitespace().map(str::to_string).collect()
}

/// The dynamic section's entries of a given tag (`NEEDED`, `SONAME`).
fn dynamic_entries(file: &Path, tag: &str) -> Vec<String> {
    let out = run(Command::new("readelf").arg("-d").arg(file));
    out.lines()
        .filter(|l| l.contains(&format!("({tag})")))
        .filter_map(|l| Some(l.split_once('[')?.1.trim_end_matches(']').to_string()))
        .collect()
}

/// Compiles examples/c_host.c into `out` with `flags` (what pkg-config
/// said), nothing else.
fn compile_c_host(out: &Path, flags: &[String]) {
    run(Command::new("cc")
        .current_dir(crate_dir())
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg("examples/c_host.c")
        .arg("-o")
        .arg(out)
        .args(flags));
}

/// Runs a host program (C or C++: both print `listening on ADDR`, greet
/// each user with a banner and stop at `/quit`) with `env`, and checks one
/// user's whole visit.
fn serve_one_user(program: &Path, env: &[(&str, &Path)]) {
    let mut cmd = Command::new(program);
    cmd.arg("127.0.0.1:0").env_remove("LD_LIBRARY_PATH");
    for (name, value) in env {
        cmd.env(name, value);
    }
    let (mut host, addr): (_, SocketAddr) = start_listening(cmd);
    let mut alice = TestClient::hello(addr, "alice");
    assert_eq!(alice.recv(), json!({"type":"banner","text":"welcome, alice"}));
    host.command("/quit");
    let last = alice.expect_closed().pop().expect("a goodbye before the close");
    assert_eq!(last["code"], "shutdown", "{last}");
    assert!(host.wait().success(), "{} exits 0", program.display());
}

#[test]
fn make_install_lays_out_every_file() {
    let prefix = install();
    let root = prefix.path();
    assert_eq!(files_under(root), expected_files());

    let lib = root.join("lib");
    let link = |name: &str| std::fs::read_link(lib.join(name)).unwrap();
    assert_eq!(link("libchat.so"), PathBuf::from(soname()));
    assert_eq!(link(&soname()), PathBuf::from(realname()));

    let shared = lib.join(realname());
    assert_eq!(dynamic_entries(&shared, "SONAME"), [soname()]);
    let symbols = run(Command::new("nm").args(["-D", "--defined-only"]).arg(&shared));
    let exported: Vec<&str> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(exported.len() > 20, "too few exports:\n{symbols}");
    let foreign: Vec<&&str> = exported.iter().filter(|s| !s.starts_with("chat_")).collect();
    assert!(
        foreign.is_empty(),
        "libchat.so exports more than chat_*: {foreign:?}"
    );

    let header = std::fs::read_to_string(root.join("include/chat.h")).unwrap();
    let committed = std::fs::read_to_string(crate_dir().join("include/chat.h")).unwrap();
    assert_eq!(header, committed, "the installed chat.h is the committed one");

    assert_eq!(pkg_config(root, &["--modversion", "chat"]), [VERSION]);
    for program in ["chat_server", "chat_client"] {
        let out = run(Command::new(root.join("bin").join(program)).arg("--version"));
        assert!(out.contains(VERSION), "{program} --version: {out}");
    }
}

#[test]
fn c_program_links_with_pkg_config_and_runs_with_ld_library_path() {
    let prefix = install();
    let root = prefix.path();
    let flags = pkg_config(root, &["--cflags", "--libs", "chat"]);
    let lib = root.join("lib");
    assert_eq!(
        flags,
        [
            format!("-I{}", root.join("include").display()),
            format!("-L{}", lib.display()),
            "-lchat".into()
        ]
    );
    let program = root.join("c_host");
    compile_c_host(&program, &flags);
    assert!(dynamic_entries(&program, "NEEDED").contains(&soname()));
    assert!(dynamic_entries(&program, "RUNPATH").is_empty() && dynamic_entries(&program, "RPATH").is_empty());
    serve_one_user(&program, &[("LD_LIBRARY_PATH", &lib)]);
}

#[test]
fn c_program_links_statically_with_pkg_config() {
    let prefix = install();
    let root = prefix.path();
    // The system libraries libchat.a needs, as rustc lists them for a
    // static library: chat.pc's Libs.private.
    let static_libs = pkg_config(root, &["--static", "--libs-only-l", "chat"]);
    assert_eq!(static_libs.first().map(String::as_str), Some("-lchat"));
    for needed in ["-lpthread", "-ldl", "-lm", "-lc"] {
        assert!(
            static_libs.iter().any(|l| l == needed),
            "{needed} not in {static_libs:?}"
        );
    }

    // chat-static.pc: the one-line way.
    let one_line = root.join("c_host-static");
    compile_c_host(
        &one_line,
        &pkg_config(root, &["--cflags", "--libs", "chat-static"]),
    );
    // chat.pc --static, keeping the linker from taking libchat.so as -lchat.
    let mut flags = pkg_config(root, &["--cflags", "--static", "--libs", "chat"]);
    let at = flags.iter().position(|f| f == "-lchat").unwrap();
    flags.splice(
        at..=at,
        ["-Wl,-Bstatic".into(), "-lchat".into(), "-Wl,-Bdynamic".into()],
    );
    let private = root.join("c_host-private");
    compile_c_host(&private, &flags);

    for program in [one_line, private] {
        let needed = dynamic_entries(&program, "NEEDED");
        assert!(
            !needed.iter().any(|n| n.starts_with("libchat")),
            "{} links libchat dynamically: {needed:?}",
            program.display()
        );
        serve_one_user(&program, &[]);
    }
}

#[test]
fn cmake_project_builds_with_find_package() {
    ensure_tool("cmake", "cmake");
    let prefix = install();
    let root = prefix.path();
    let build = temp_dir("cmake-build");
    run(Command::new("cmake")
        .arg("-S")
        .arg(crate_dir().join("examples/cmake"))
        .arg("-B")
        .arg(build.path())
        .arg(format!("-DCMAKE_PREFIX_PATH={}", root.display())));
    run(Command::new("cmake").arg("--build").arg(build.path()));

    let shared = build.path().join("c_host");
    assert!(dynamic_entries(&shared, "NEEDED").contains(&soname()));
    let static_host = build.path().join("c_host_static");
    assert!(!dynamic_entries(&static_host, "NEEDED")
        .iter()
        .any(|n| n.starts_with("libchat")));
    // CMake gives the programs of its build tree a RUNPATH to the
    // imported library: no LD_LIBRARY_PATH.
    for program in [shared, static_host, build.path().join("cpp_host")] {
        serve_one_user(&program, &[]);
    }
}

/// chatConfigVersion.cmake's answer for `find_package(chat WANTED)`.
fn cmake_accepts(prefix: &Path, wanted: &str) -> bool {
    let script = prefix.join("check-version.cmake");
    let parts: Vec<&str> = wanted.split('.').collect();
    let mut text = format!(
        "set(PACKAGE_FIND_VERSION \"{wanted}\")\nset(PACKAGE_FIND_VERSION_COUNT {})\n",
        parts.len()
    );
    for (name, value) in ["MAJOR", "MINOR", "PATCH"]
        .iter()
        .zip(parts.iter().chain(["0", "0", "0"].iter()))
    {
        text.push_str(&format!("set(PACKAGE_FIND_VERSION_{name} \"{value}\")\n"));
    }
    text.push_str(&format!(
        "include(\"{}\")\nmessage(\"compatible=${{PACKAGE_VERSION_COMPATIBLE}}\")\n",
        prefix.join("lib/cmake/chat/chatConfigVersion.cmake").display()
    ));
    std::fs::write(&script, text).unwrap();
    let out = packaging::output(Command::new("cmake").arg("-P").arg(&script));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    match said.trim() {
        "compatible=TRUE" => true,
        "compatible=FALSE" => false,
        other => panic!("cmake -P {}: {other}", script.display()),
    }
}

#[test]
fn cmake_version_check_follows_cargo_rules() {
    ensure_tool("cmake", "cmake");
    let prefix = install();
    let major: u64 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap();
    let minor: u64 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap();
    let root = prefix.path();
    assert!(cmake_accepts(root, VERSION));
    assert!(cmake_accepts(root, &format!("{major}.{minor}")));
    assert!(cmake_accepts(root, &format!("{major}")));
    assert!(!cmake_accepts(root, &format!("{}", major + 1)));
    assert!(!cmake_accepts(root, &format!("{major}.{}", minor + 1)));
    if major == 0 && minor > 0 {
        assert!(
            !cmake_accepts(root, &format!("0.{}", minor - 1)),
            "0.x: another minor breaks"
        );
    }
}

#[test]
fn destdir_stages_a_multiarch_install_and_uninstall_empties_it() {
    let stage = temp_dir("destdir");
    let vars = [
        ("DESTDIR", stage.path()),
        ("PREFIX", Path::new("/usr")),
        ("LIBDIR", Path::new("/usr/lib/x86_64-linux-gnu")),
    ];
    make("install", &vars);

    let staged = files_under(stage.path());
    let want: Vec<String> = expected_files()
        .iter()
        .map(|f| match f.strip_prefix("lib/") {
            Some(rest) => format!("usr/lib/x86_64-linux-gnu/{rest}"),
            None => format!("usr/{f}"),
        })
        .collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(staged, want_sorted);

    // The files name where they will be, never the staging directory.
    let libdir = stage.path().join("usr/lib/x86_64-linux-gnu");
    let pc = std::fs::read_to_string(libdir.join("pkgconfig/chat.pc")).unwrap();
    assert!(pc.contains("prefix=/usr\n"), "{pc}");
    assert!(pc.contains("libdir=${prefix}/lib/x86_64-linux-gnu\n"), "{pc}");
    let cmake = std::fs::read_to_string(libdir.join("cmake/chat/chatConfig.cmake")).unwrap();
    assert!(cmake.contains("\"/usr/lib/x86_64-linux-gnu\""), "{cmake}");
    let stage_path = stage.path().display().to_string();
    for (name, text) in [("chat.pc", &pc), ("chatConfig.cmake", &cmake)] {
        assert!(
            !text.contains(&stage_path),
            "{name} names the staging directory:\n{text}"
        );
    }

    make("uninstall", &vars);
    assert_eq!(
        files_under(stage.path()),
        Vec::<String>::new(),
        "make uninstall left files"
    );
}

#[test]
fn uninstall_removes_what_install_wrote() {
    let prefix = install();
    let keep = prefix.path().join("lib/pkgconfig/other.pc");
    std::fs::write(&keep, "Name: other\n").unwrap();
    make("uninstall", &[("PREFIX", prefix.path())]);
    assert_eq!(files_under(prefix.path()), ["lib/pkgconfig/other.pc"]);
}

#[test]
fn cargo_install_installs_both_programs() {
    let root = temp_dir("cargo-install");
    // --locked: the versions of Cargo.lock, so the build `make` left in
    // the target dir is reused.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .args(["install", "--locked", "--quiet", "--path"])
        .arg(crate_dir().join("cli"))
        .arg("--root")
        .arg(root.path())
        .arg("--target-dir")
        .arg(packaging::target_dir()));
    for program in ["chat_server", "chat_client"] {
        let out = run(Command::new(root.path().join("bin").join(program)).arg("--help"));
        assert!(
            out.contains("--nick") || out.contains("--listen"),
            "{program} --help:\n{out}"
        );
    }
}
