//! Golden files in `tests/golden/`, one [`check`] per file:
//!
//! - `*.call.xml` → `*.call.json`: a `methodCall` body (as Python's
//!   `xmlrpc.client` or another client wrote it) and the method, positional
//!   and keyword arguments we read from it.
//! - `*.response.json` → `*.response.xml`: a method's outcome (`{"result":
//!   ...}` or `{"error": {"code", "message", "data"}}`) and the exact
//!   `methodResponse` body we answer.
//! - `*.bad.xml` → `*.bad.txt`: a malformed body and the error message.
//!
//! `UPDATE_GOLDEN=1 cargo test -p api --test golden` rewrites the
//! expectations; review the diff before committing it.

use std::path::{Path, PathBuf};

use api::xmlrpc::{self, Limits};
use rpc::RpcError;
use serde_json::{Value, json};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the expectation file, or writes it when
/// `UPDATE_GOLDEN` is set.
fn expect(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).expect("write expectation");
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    assert_eq!(actual, expected, "{} differs (UPDATE_GOLDEN=1 rewrites it)", path.display());
}

fn check(input: &Path) {
    let name = input.file_name().and_then(|n| n.to_str()).expect("file name");
    let with = |suffix: &str, new: &str| input.with_file_name(name.replace(suffix, new));
    let bytes = std::fs::read(input).expect("read input");
    if name.ends_with(".call.xml") {
        let call = xmlrpc::parse_call(&bytes, &Limits::DEFAULT).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (args, kwargs) = call.args_kwargs();
        let read = json!({"method": call.method, "args": args, "kwargs": kwargs});
        let text = serde_json::to_string_pretty(&read).expect("json") + "\n";
        expect(&with(".call.xml", ".call.json"), &text);
    } else if name.ends_with(".response.json") {
        let outcome: Value = serde_json::from_slice(&bytes).expect("json input");
        let outcome = match (outcome.get("result"), outcome.get("error")) {
            (Some(result), None) => Ok(result.clone()),
            (None, Some(error)) => Err(RpcError::from_wire(error).expect("an error object with code and message")),
            _ => panic!("{name}: needs exactly one of result and error"),
        };
        expect(&with(".response.json", ".response.xml"), &xmlrpc::write_response(&outcome));
    } else if name.ends_with(".bad.xml") {
        let error = xmlrpc::parse_call(&bytes, &Limits::DEFAULT).expect_err("a bad body must not parse");
        expect(&with(".bad.xml", ".bad.txt"), &format!("{error}\n"));
    }
}

#[test]
fn golden_files() {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".call.xml") || name.ends_with(".response.json") || name.ends_with(".bad.xml")
        })
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "golden inputs went missing: {inputs:?}");
    for input in &inputs {
        check(input);
    }
}
