//! Conformance of the WebSocket codec: the Autobahn|Testsuite cases (run by
//! the pinned PyPI `kosoku` runner, installed here if missing) against the
//! echo example built on the same codec and handshake, every case but the
//! compression ones (12.*, 13.*). The results must equal the committed
//! `tests/autobahn/expected.json` case by case, and that file may hold only
//! OK and INFORMATIONAL verdicts (the cases where the RFC leaves the
//! behaviour open).
//!
//! `CHAT_AUTOBAHN_BLESS=1` rewrites the expected file from this run;
//! `CHAT_AUTOBAHN_REPORTS=DIR` also writes kosoku's full reports to DIR.

mod common;
mod ws_support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use ws_support::{arg, ensure_python_packages, pinned, python, run_with_deadline, ws_echo_bin};

const REQUIREMENTS: &str = "tests/autobahn/requirements.txt";
const EXPECTED: &str = "tests/autobahn/expected.json";
/// 301 cases took 17 s with a debug build here; the deadline allows for a
/// loaded machine.
const RUN_DEADLINE: Duration = Duration::from_secs(20 * 60);

fn load(path: &std::path::Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn acceptable(entry: &Value) -> bool {
    ["behavior", "behaviorClose"]
        .iter()
        .all(|k| matches!(entry[k].as_str(), Some("OK" | "INFORMATIONAL")))
}

#[test]
fn autobahn_cases_match_the_expected_results() {
    let version = pinned(REQUIREMENTS, "kosoku");
    ensure_python_packages(
        REQUIREMENTS,
        &format!("import importlib.metadata as m, kosoku; assert m.version('kosoku') == '{version}'"),
    );
    let mut echo = Command::new(ws_echo_bin());
    echo.args(["--autobahn", "--listen", "127.0.0.1:0"]);
    let (_echo, addr) = common::spawn_listening(echo);

    let out = std::env::temp_dir().join(format!("chat-autobahn-{}.json", std::process::id()));
    let mut run = python();
    run.arg(arg("tests/autobahn/run.py"))
        .arg(format!("ws://{addr}"))
        .arg(&out);
    if let Ok(dir) = std::env::var("CHAT_AUTOBAHN_REPORTS") {
        run.arg(dir);
    }
    let output = run_with_deadline(run, RUN_DEADLINE, "the kosoku run");
    assert!(
        output.status.success(),
        "the kosoku run failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let got = load(&out);
    let _ = std::fs::remove_file(&out);

    let expected_path = ws_support::root().join(EXPECTED);
    if std::env::var_os("CHAT_AUTOBAHN_BLESS").is_some() {
        std::fs::write(&expected_path, expected_text(&got)).expect("write the expected file");
    }
    let expected = load(&expected_path);
    let bad_expectations: Vec<&String> = expected
        .iter()
        .filter(|(_, v)| !acceptable(v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        bad_expectations.is_empty(),
        "{EXPECTED} may hold only OK and INFORMATIONAL verdicts; not: {bad_expectations:?}"
    );
    assert_eq!(expected.len(), 301, "every non-compression case is expected");

    let mut differences = Vec::new();
    for (case, want) in &expected {
        match got.get(case) {
            None => differences.push(format!("{case}: not run")),
            Some(have) if have != want => differences.push(format!("{case}: got {have}, expected {want}")),
            Some(_) => {}
        }
    }
    for case in got.keys().filter(|c| !expected.contains_key(*c)) {
        differences.push(format!("{case}: run but not expected"));
    }
    assert!(
        differences.is_empty(),
        "{} of {} cases differ from {EXPECTED}:\n{}",
        differences.len(),
        expected.len(),
        differences.join("\n")
    );
}

/// Results in the expected file's layout: one case per line, in case order.
fn expected_text(got: &BTreeMap<String, Value>) -> String {
    let key = |c: &str| {
        c.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    let mut cases: Vec<&String> = got.keys().collect();
    cases.sort_by_key(|c| key(c));
    let lines: Vec<String> = cases
        .iter()
        .map(|c| format!("  {}: {}", Value::from(c.as_str()), got[*c]))
        .collect();
    format!("{{\n{}\n}}\n", lines.join(",\n"))
}
