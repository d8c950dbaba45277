//! The Python package as a user installs it: `pip install ./bindings/python`
//! into a fresh venv builds libchat and bundles it, `import chat` works from
//! any directory with no environment variable, the binding's own test
//! suite passes from outside the repository against the installed package,
//! and a library of another version is refused (bundled, or by CHAT_LIB).

mod common;
mod packaging;

use std::path::{Path, PathBuf};
use std::process::Command;

use packaging::{crate_dir, output, run, soname, target_dir, temp_dir, VERSION};

/// Variables that would point Python or the loader somewhere else.
const FOREIGN_ENV: [&str; 5] = [
    "CHAT_LIB",
    "CARGO_TARGET_DIR",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
];

/// `python3 -m venv DIR`; Debian's system python needs python3-venv for it.
fn make_venv(dir: &Path) -> PathBuf {
    packaging::ensure("`python3 -m venv`", "python3-venv", || {
        output(Command::new("python3").args(["-m", "venv", "--clear"]).arg(dir))
            .status
            .success()
    });
    dir.join("bin").join("python")
}

/// The venv's python, in `cwd`, with nothing pointing it at the repository.
fn python_in(python: &Path, cwd: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.current_dir(cwd).env("PYTHONDONTWRITEBYTECODE", "1");
    for name in FOREIGN_ENV {
        cmd.env_remove(name);
    }
    cmd
}

/// A C library that says it is libchat `version`, and nothing more.
fn fake_library(dir: &Path, version: &str) -> PathBuf {
    let src = dir.join("fake.c");
    std::fs::write(
        &src,
        format!("const char *chat_version(void) {{ return \"{version}\"; }}\n"),
    )
    .unwrap();
    let lib = dir.join("libchat.so");
    run(Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src));
    lib
}

/// Runs `code` and returns its stderr; panics unless it fails.
fn failure_of(mut cmd: Command, code: &str) -> String {
    let out = output(cmd.args(["-c", code]));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{code} should have failed:\n{stderr}");
    stderr
}

#[test]
fn pip_install_bundles_the_library_and_the_suite_passes_against_it() {
    let venv = temp_dir("venv");
    let python = make_venv(venv.path());
    // pip builds libchat with cargo, in the target dir `make` uses.
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .arg(crate_dir().join("bindings/python"))
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("CHAT_LIB"));
    for leftover in ["build", "chat.egg-info", "chat/_version.py"] {
        assert!(
            !crate_dir().join("bindings/python").join(leftover).exists(),
            "pip install wrote bindings/python/{leftover} into the source tree"
        );
    }

    // From an empty directory, no environment variable: the package and the
    // library it loads are the installed ones.
    let elsewhere = temp_dir("elsewhere");
    let said = run(python_in(&python, elsewhere.path()).args([
        "-c",
        "import chat; print(chat.__file__); print(chat.__version__); \
         print(chat.library_path()); print(chat.version())",
    ]));
    let lines: Vec<&str> = said.lines().collect();
    let site = venv.path().canonicalize().unwrap();
    assert!(
        Path::new(lines[0]).starts_with(&site),
        "chat imported from {}",
        lines[0]
    );
    assert_eq!(lines[1], VERSION, "chat.__version__");
    let bundled = PathBuf::from(lines[2]);
    assert!(bundled.starts_with(&site), "library loaded from {}", lines[2]);
    assert_eq!(lines[3], VERSION, "chat.version()");
    let soname_line = run(Command::new("readelf").arg("-d").arg(&bundled));
    assert!(soname_line.contains(&format!("[{}]", soname())), "{soname_line}");

    // The binding's suite, copied out of the repository with the header it
    // checks the structs against, as an installed include/chat.h would be.
    let tests = elsewhere.path().join("tests");
    std::fs::create_dir_all(&tests).unwrap();
    for entry in std::fs::read_dir(crate_dir().join("bindings/python/tests")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, tests.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(elsewhere.path().join("include")).unwrap();
    std::fs::copy(
        crate_dir().join("include/chat.h"),
        elsewhere.path().join("include/chat.h"),
    )
    .unwrap();
    let suite = output(
        python_in(&python, elsewhere.path()).args(["-m", "unittest", "discover", "-s", "tests", "-v"]),
    );
    let report = String::from_utf8_lossy(&suite.stderr).into_owned();
    assert!(
        suite.status.success(),
        "the Python suite failed against the installed package:\n{report}"
    );
    let summary = report.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    assert_eq!(summary, "OK", "every test ran, none skipped:\n{report}");

    // A bundled library of another version is refused, saying what to do.
    let fake_dir = temp_dir("fake");
    std::fs::copy(fake_library(fake_dir.path(), "0.0.0-other"), &bundled).unwrap();
    let err = failure_of(
        python_in(&python, elsewhere.path()),
        "import chat; chat.version()",
    );
    for needle in [
        "LibraryVersionError",
        "is libchat 0.0.0-other",
        &format!("this chat package is {VERSION}"),
        "pip install ./bindings/python",
    ] {
        assert!(err.contains(needle), "no {needle:?} in:\n{err}");
    }
}

#[test]
fn chat_lib_of_another_version_is_refused() {
    let dir = temp_dir("fake");
    let fake = fake_library(dir.path(), "9.9.9");
    let mut cmd = Command::new("python3");
    cmd.current_dir(crate_dir().join("bindings/python"))
        .env("CHAT_LIB", &fake)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let err = failure_of(cmd, "import chat; chat.version()");
    for needle in [
        "LibraryVersionError",
        &format!("{} (CHAT_LIB) is libchat 9.9.9", fake.display()),
        &format!("this chat package is {VERSION}"),
        "point CHAT_LIB at a build of this version",
    ] {
        assert!(err.contains(needle), "no {needle:?} in:\n{err}");
    }
}
