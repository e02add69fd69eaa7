//! The shell examples of the README and of `docs/`, run as written against a real keygate, so a
//! change that breaks one fails here.
//!
//! Each document gets a fresh keygate (the default SQLite database in a fresh home directory,
//! as a newcomer has it) and one `bash` that runs its `sh` blocks in order, so the variables
//! one block sets reach the next, as in a reader's terminal; `python` and `js` blocks are
//! given to `python3` and `node` (as an ES module) in that shell, so they see what it
//! exported. There, `cargo run --release -- ARGS` and `keygate ARGS` run the binary under
//! test; a bare `cargo run --release` (starting the server) finds it running already;
//! `127.0.0.1:8080` anywhere in the code reaches the test's server; and
//! `https://hooks.example.com/keygate` reaches a webhook receiver the test runs (keygate may
//! deliver to it on the loopback interface), where what a document sends must arrive. A block
//! runs under `set -euo pipefail`: any failing command fails the test. A block that cannot run
//! here (it needs Docker, another host, or runs the test suite) is preceded by
//! `<!-- not run: why -->`.
//!
//! When a `json` block or a plain block follows an `sh` block with nothing between them, it is
//! the answer the reader should see, and is checked: a JSON answer must have the same fields,
//! with the same strings and types (`…` stands for any text); in a plain answer, every line
//! must be one of the output's (`…` again standing for any text).

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::{ServerProcess, keygate_command};
use crate::webhooks::{Receiver, receiver, until_delivered};

/// The documents whose examples a reader runs against a running keygate.
const DOCUMENTS: [&str; 8] = [
    "README.md",
    "docs/http.md",
    "docs/cli.md",
    "docs/console.md",
    "docs/configuration.md",
    "docs/webhooks.md",
    "docs/clients.md",
    "docs/operations.md",
];

const NOT_RUN: &str = "<!-- not run:";

/// Ends a Python or JavaScript example given to its interpreter on standard input.
const END_OF_CODE: &str = "KEYGATE_EXAMPLE_ENDS";

#[derive(Debug)]
struct Example {
    /// Where its code begins, 1-based.
    line: usize,
    code: String,
    expected: Option<Expected>,
}

#[derive(Debug)]
enum Expected {
    Json(String),
    Text(String),
}

struct Fence {
    info: String,
    line: usize,
    body: String,
    /// Whether the document says this block is not run.
    not_run: bool,
    /// Whether only blank lines separate it from the previous fenced block.
    follows_directly: bool,
}

fn fences(markdown: &str) -> Vec<Fence> {
    let mut found = Vec::new();
    let mut open: Option<Fence> = None;
    let mut previous_text = String::new();
    let mut since_last_fence_only_blank = false;
    for (index, line) in markdown.lines().enumerate() {
        if let Some(fence) = &mut open {
            if line.trim_start().starts_with("```") {
                found.push(open.take().expect("open"));
                since_last_fence_only_blank = true;
                previous_text.clear();
            } else {
                fence.body.push_str(line);
                fence.body.push('\n');
            }
        } else if let Some(info) = line.trim_start().strip_prefix("```") {
            open = Some(Fence {
                info: info.trim().to_owned(),
                line: index + 2,
                body: String::new(),
                not_run: previous_text.trim_start().starts_with(NOT_RUN),
                follows_directly: since_last_fence_only_blank,
            });
        } else if !line.trim().is_empty() {
            previous_text = line.to_owned();
            since_last_fence_only_blank = false;
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    found
}

fn examples(markdown: &str) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    let mut last_was_run = false;
    for fence in fences(markdown) {
        match fence.info.as_str() {
            "sh" | "python" | "js" if !fence.not_run => {
                let code = match fence.info.as_str() {
                    "python" => {
                        format!("python3 - <<'{END_OF_CODE}'\n{}{END_OF_CODE}\n", fence.body)
                    }
                    "js" => format!(
                        "node --input-type=module - <<'{END_OF_CODE}'\n{}{END_OF_CODE}\n",
                        fence.body
                    ),
                    _ => fence.body,
                };
                examples.push(Example {
                    line: fence.line,
                    code,
                    expected: None,
                });
                last_was_run = true;
                continue;
            }
            "json" if last_was_run && fence.follows_directly => {
                examples.last_mut().expect("an example").expected =
                    Some(Expected::Json(fence.body));
            }
            "" if last_was_run && fence.follows_directly => {
                examples.last_mut().expect("an example").expected =
                    Some(Expected::Text(fence.body));
            }
            _ => {}
        }
        last_was_run = false;
    }
    examples
}

/// Where one example's output ends in the shell's standard output.
fn marker(index: usize) -> String {
    format!("@@ end of example {index} @@")
}

/// The shell that stands in for a reader's terminal.
const PRELUDE: &str = r#"set -euo pipefail
cargo() {
    if [ "$*" = "run --release" ] || [ "$*" = "run -q --release" ]; then
        echo "(keygate is serving already)"
        return 0
    fi
    [ "${1:-}" = run ] || { echo "the examples run keygate only, not cargo $*" >&2; return 1; }
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
    shift
    keygate "$@"
}
keygate() { "$KEYGATE_BIN" "$@"; }
"#;

/// The examples as one script, where the addresses a reader uses (`from`) lead to the test's
/// own (`to`).
fn script(examples: &[Example], addresses: &[(&str, &str)]) -> String {
    let mut script = PRELUDE.to_owned();
    for (index, example) in examples.iter().enumerate() {
        let code = addresses
            .iter()
            .fold(example.code.clone(), |code, (from, to)| {
                code.replace(from, to)
            });
        script.push_str(&code);
        script.push_str(&format!("\nprintf '\\n%s\\n' '{}'\n", marker(index)));
    }
    script
}

/// `expected`, where `…` stands for any text, matches `actual`.
fn text_matches(expected: &str, actual: &str) -> bool {
    let mut parts = expected.split('…');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Same fields, same strings (up to `…`), same kinds of values.
fn json_matches(expected: &Value, actual: &Value) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            let mut want_keys: Vec<_> = want.keys().collect();
            let mut got_keys: Vec<_> = got.keys().collect();
            want_keys.sort();
            got_keys.sort();
            if want_keys != got_keys {
                return Err(format!(
                    "fields {want_keys:?} documented, {got_keys:?} answered"
                ));
            }
            want.iter()
                .try_for_each(|(k, v)| json_matches(v, &got[k]).map_err(|e| format!("{k}: {e}")))
        }
        (Value::Array(want), Value::Array(got)) if want.len() == got.len() => want
            .iter()
            .zip(got)
            .try_for_each(|(w, g)| json_matches(w, g)),
        (Value::String(want), Value::String(got)) if text_matches(want, got) => Ok(()),
        (Value::Number(_), Value::Number(_)) => Ok(()),
        (want, got) if want == got => Ok(()),
        (want, got) => Err(format!("{want} documented, {got} answered")),
    }
}

fn check_output(document: &str, example: &Example, output: &str) {
    let place = format!("{document}:{}", example.line);
    match &example.expected {
        None => {}
        Some(Expected::Json(expected)) => {
            let expected: Value = serde_json::from_str(expected)
                .unwrap_or_else(|e| panic!("{place}: the documented answer is not JSON: {e}"));
            // curl ends no answer with a newline: several answers may share a line.
            let actual = output
                .lines()
                .rev()
                .find_map(|line| {
                    let values: Result<Vec<Value>, _> = serde_json::Deserializer::from_str(line)
                        .into_iter()
                        .collect();
                    values.ok().and_then(|mut values| values.pop())
                })
                .unwrap_or_else(|| panic!("{place}: no JSON answer in:\n{output}"));
            if let Err(difference) = json_matches(&expected, &actual) {
                panic!(
                    "{place}: the answer differs from the documented one: {difference}\n{actual}"
                );
            }
        }
        Some(Expected::Text(expected)) => {
            let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
            for want in expected.lines().filter(|l| !l.trim().is_empty()) {
                assert!(
                    lines.iter().any(|got| text_matches(want, got)),
                    "{place}: the documented line `{want}` is not in the output:\n{output}"
                );
            }
        }
    }
}

/// The stand-in for `https://hooks.example.com/keygate`, served on its own thread.
fn hooks_receiver() -> Receiver {
    let (sender, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let _ = sender.send(receiver(0, std::time::Duration::ZERO).await);
            std::future::pending::<()>().await;
        });
    });
    started.recv().expect("the receiver starts")
}

/// Where a document sends webhooks.
const HOOKS: &str = "https://hooks.example.com/keygate";

fn run_document(document: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(document);
    let markdown = std::fs::read_to_string(&path).expect("the document");
    let examples = examples(&markdown);
    if examples.is_empty() {
        return;
    }
    let hooks = hooks_receiver();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut serve = keygate_command();
    serve
        .current_dir(work.path())
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .env("KEYGATE_WEBHOOKS__ALLOWED_NETWORKS", "127.0.0.1/32")
        .args(["serve", "--bind", "127.0.0.1:0"]);
    let server = ServerProcess::start(&mut serve);
    let address = server.address.trim_start_matches("http://").to_owned();

    let mut shell = Command::new("bash");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("KEYGATE_") || name == "DATABASE_URL" || name == "RUST_LOG" {
            shell.env_remove(name);
        }
    }
    let output = shell
        .current_dir(work.path())
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .env("KEYGATE_BIN", env!("CARGO_BIN_EXE_keygate"))
        .args([
            "-c",
            &script(
                &examples,
                &[
                    (HOOKS, hooks.url.as_str()),
                    ("127.0.0.1:8080", address.as_str()),
                ],
            ),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    let mut rest: &str = &stdout;
    for (index, example) in examples.iter().enumerate() {
        let Some((own, after)) = rest.split_once(&marker(index)) else {
            panic!(
                "{document}:{}: this example failed ({}):\n{}\nits output:\n{rest}\nstderr:\n{stderr}\nkeygate's log:\n{}",
                example.line,
                output.status,
                example.code,
                server.log()
            );
        };
        check_output(document, example, own);
        rest = after;
    }
    assert!(output.status.success(), "{document}: {stderr}");
    let sends_webhooks = examples.iter().any(|example| example.code.contains(HOOKS));
    if sends_webhooks {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let delivered = runtime.block_on(until_delivered(&hooks, 1, 10));
        assert!(
            delivered
                .iter()
                .all(|received| received.json()["type"].is_string()),
            "{document}: {delivered:?}"
        );
    }
}

#[test]
fn the_readme_examples_run_as_written() {
    run_document(DOCUMENTS[0]);
}

#[test]
fn the_http_api_examples_run_as_written() {
    run_document(DOCUMENTS[1]);
}

#[test]
fn the_cli_examples_run_as_written() {
    run_document(DOCUMENTS[2]);
}

#[test]
fn the_console_examples_run_as_written() {
    run_document(DOCUMENTS[3]);
}

#[test]
fn the_configuration_examples_run_as_written() {
    run_document(DOCUMENTS[4]);
}

#[test]
fn the_webhooks_examples_run_as_written() {
    run_document(DOCUMENTS[5]);
}

#[test]
fn the_client_examples_run_as_written() {
    run_document(DOCUMENTS[6]);
}

#[test]
fn the_operations_examples_run_as_written() {
    run_document(DOCUMENTS[7]);
}

/// The Rust client example of docs/clients.md is `examples/token_client.rs`, which `cargo
/// test` compiles and the client tests run.
#[test]
fn the_rust_client_example_is_the_documented_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("examples/token_client.rs")).unwrap();
    let code: String = example
        .lines()
        .skip_while(|line| line.starts_with("//!") || line.is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    let document = std::fs::read_to_string(root.join(DOCUMENTS[6])).unwrap();
    let documented = fences(&document)
        .into_iter()
        .find(|fence| fence.info == "rust")
        .expect("a Rust example");
    assert_eq!(
        documented.body, code,
        "docs/clients.md and examples/token_client.rs differ"
    );
}

#[test]
fn every_runnable_block_of_the_documents_is_found() {
    let markdown = "Intro\n\n```sh\necho one\n```\n\n```json\n{\"a\":1}\n```\n\nProse\n\n```\nnot an answer\n```\n\n<!-- not run: needs Docker -->\n```sh\ndocker run x\n```\n";
    let found = examples(markdown);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].line, 4);
    assert!(matches!(found[0].expected, Some(Expected::Json(_))));
    assert!(text_matches("kgc_…", "kgc_abc"));
    assert!(text_matches("a…b…c", "a123b456c"));
    assert!(!text_matches("a…b", "a123c"));
    assert!(!text_matches("exact", "exactly"));
    assert!(
        json_matches(
            &serde_json::json!({"a": 1, "b": "x…"}),
            &serde_json::json!({"a": 2, "b": "xyz"})
        )
        .is_ok()
    );
    assert!(
        json_matches(
            &serde_json::json!({"a": 1}),
            &serde_json::json!({"a": 1, "b": 2})
        )
        .is_err()
    );
    assert!(
        json_matches(
            &serde_json::json!({"a": "live"}),
            &serde_json::json!({"a": "test"})
        )
        .is_err()
    );
}
