//! `betrace eval` and `betrace verify`: every trace format in, every output
//! format out, signatures that verify and catch tampering, and the exit codes.
//! Traces are the fixtures in tests/data/traces/.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use prost::Message;
use serde_json::Value;

use crate::{stdout, write};

/// Two rules that fire on the fixtures: a bound one (slow server spans) and
/// an unbound one whose witnesses are the error spans.
pub const RULES: &str = r#"// Server spans answer within 500ms.
rule slow_servers {
  severity: high
  tags: ["latency", "test"]
  message: "{s.name} took {s.duration}"
  when s = { kind = server }
  always s.duration <= 500ms
}

// Traces with a server span have no error span.
rule no_errors {
  severity: critical
  tags: ["errors"]
  when { kind = server }
  never { status = error }
}
"#;

pub const MANIFEST: &str = "name = \"tests\"\nversion = \"1.0.0\"\nengine = \">=0.1\"\n";

/// A pack directory: `pack.toml` and the rules, split over two files.
pub fn rules_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = RULES.split_at(RULES.find("// Traces").unwrap());
    write(dir.path(), "pack.toml", MANIFEST);
    write(dir.path(), "latency.btr", first);
    write(dir.path(), "errors.btr", second);
    dir
}

pub fn trace(name: &str) -> String {
    format!("{}/tests/data/traces/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `betrace` with `input` on standard input and extra environment variables.
pub fn betrace_with(args: &[&str], input: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_betrace"))
        .args(args)
        .env_remove("BETRACE_SIGNING_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run betrace");
    child.stdin.take().unwrap().write_all(input).expect("write stdin");
    child.wait_with_output().expect("wait for betrace")
}

pub fn betrace(args: &[&str]) -> Output {
    betrace_with(args, b"", &[])
}

/// The JSON lines of standard output.
pub fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output).lines().map(|line| serde_json::from_str(line).expect("a JSON object per line")).collect()
}

fn rule_ids(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|v| v["rule_id"].as_str().unwrap()).collect()
}

/// tests/data/traces/trace.json as OTLP protobuf bytes.
fn otlp_protobuf() -> Vec<u8> {
    let records = betrace_runtime::formats::read_otlp_json(&std::fs::read(trace("trace.json")).unwrap()).unwrap();
    betrace_runtime::formats::encode_request(&records).encode_to_vec()
}

#[test]
fn every_trace_format_is_evaluated() {
    let rules = rules_dir();
    let rules = rules.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let protobuf = write(dir.path(), "trace.pb", otlp_protobuf());
    for (file, violations, critical) in [
        (trace("trace.json"), 1, 0),
        (protobuf, 1, 0),
        (trace("smartthings-mobile-web-install.json"), 8, 1),
        (trace("genaiTestTrace.json"), 12, 1),
    ] {
        let output = betrace(&["eval", "--rules", rules, "--format", "json", &file]);
        assert_eq!(code(&output), 1, "{file}: {}", stderr(&output));
        let lines = json_lines(&output);
        assert_eq!(lines.len(), violations, "{file}");
        assert_eq!(lines.iter().filter(|v| v["severity"] == "critical").count(), critical, "{file}");
        assert!(rule_ids(&lines).iter().all(|id| id.starts_with("tests/")), "{file}");
    }
}

#[test]
fn protobuf_and_json_of_one_trace_give_the_same_violations() {
    let rules = rules_dir();
    let rules = rules.path().to_str().unwrap();
    let from_json = betrace(&["eval", "--rules", rules, "--format", "json", &trace("trace.json")]);
    let from_protobuf = betrace_with(&["eval", "--rules", rules, "--format", "json", "-"], &otlp_protobuf(), &[]);
    assert_eq!(stdout(&from_json), stdout(&from_protobuf));
}

#[test]
fn json_lines_carry_every_field() {
    let rules = rules_dir();
    let output =
        betrace(&["eval", "--rules", rules.path().to_str().unwrap(), "--format", "json", &trace("trace.json")]);
    let lines = json_lines(&output);
    let v = &lines[0];
    // The fixture's ids are upper-case; violations use lower-case hex.
    assert_eq!(v["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(v["bound_span"], "eee19b7ec3c1b174");
    assert_eq!(v["parent_span"], "eee19b7ec3c1b174");
    assert_eq!(v["witnesses"], serde_json::json!([]));
    assert_eq!(v["rule_id"], "tests/slow_servers");
    assert_eq!(v["rule_name"], "slow_servers");
    assert_eq!(v["severity"], "high");
    assert_eq!(v["message"], "I'm a server span took 1s");
    assert_eq!(v["clause"], "always s.duration <= 500ms");
    assert_eq!(v["clause_kind"], "always");
    assert_eq!(v["tags"], serde_json::json!(["latency", "test"]));
    assert_eq!(v["pack_name"], "tests");
    assert_eq!(v["pack_version"], "1.0.0");
    assert_eq!(v["time_unix_nano"], "1544712661000000000");
    assert_eq!(v["signature"], Value::Null);
    let id = v["id"].as_str().unwrap();
    assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{id}");
    // A summary goes to standard error, so standard output stays JSON lines.
    assert!(stderr(&output).contains("1 violation (1 high) in 1 of 1 trace"), "{}", stderr(&output));
}

#[test]
fn unbound_violations_hang_under_the_root_and_name_their_witnesses() {
    let rules = rules_dir();
    let output = betrace(&[
        "eval",
        "--rules",
        rules.path().to_str().unwrap(),
        "--format",
        "json",
        &trace("genaiTestTrace.json"),
    ]);
    let lines = json_lines(&output);
    let critical = lines.iter().find(|v| v["rule_id"] == "tests/no_errors").expect("no_errors fires");
    assert_eq!(critical["bound_span"], Value::Null);
    assert_eq!(critical["parent_span"], "0000000000000001");
    assert_eq!(critical["witnesses"], serde_json::json!(["0000000000000011"]));
}

#[test]
fn human_output_lists_severity_rule_trace_span_and_message() {
    let rules = rules_dir();
    let output = betrace(&["eval", "--rules", rules.path().to_str().unwrap(), &trace("trace.json")]);
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    assert!(text.contains("high  tests/slow_servers  I'm a server span took 1s"), "{text}");
    assert!(text.contains("trace 5b8efff798038103d269b633813fc60c  span eee19b7ec3c1b174"), "{text}");
    assert!(text.contains("1 violation (1 high) in 1 of 1 trace (1 span); pack tests 1.0.0, 2 rules"), "{text}");
}

#[test]
fn otlp_json_output_is_a_request_of_violation_spans() {
    let rules = rules_dir();
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key", "k3y\n");
    let args = ["eval", "--rules", rules.path().to_str().unwrap(), "--format", "otlp-json", "--signing-key-file", &key];
    let output = betrace(&[&args[..], &[trace("genaiTestTrace.json").as_str()]].concat());
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let requests = json_lines(&output);
    assert_eq!(requests.len(), 1);
    let resource_spans = &requests[0]["resourceSpans"][0];
    let resource: Vec<&Value> = resource_spans["resource"]["attributes"].as_array().unwrap().iter().collect();
    assert_eq!(resource[0]["key"], "service.name");
    assert_eq!(resource[0]["value"]["stringValue"], "betrace");
    assert_eq!(resource[1]["key"], "service.instance.id");
    let spans = resource_spans["scopeSpans"][0]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 12);
    for span in spans {
        assert_eq!(span["name"], "betrace.violation");
        assert_eq!(span["traceId"], "4a1b2c3d4e5f60718293a4b5c6d7e8f9");
        assert_eq!(span["kind"], 1);
        assert_eq!(span["status"]["code"], 2);
        let keys: Vec<&str> =
            span["attributes"].as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap()).collect();
        for wanted in [
            "betrace.violation",
            "betrace.violation.id",
            "betrace.rule.id",
            "betrace.severity",
            "betrace.tags",
            "betrace.signature",
        ] {
            assert!(keys.contains(&wanted), "{wanted} missing from {keys:?}");
        }
    }
    // The output is itself OTLP/JSON that betrace reads back.
    let again = betrace_with(&["eval", "--rules", rules.path().to_str().unwrap(), "-"], &output.stdout, &[]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(stdout(&again).contains("(12 spans)"), "{}", stdout(&again));
}

#[test]
fn signatures_verify_and_tampering_is_caught() {
    let rules = rules_dir();
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key", "correct horse\n");
    let other = write(dir.path(), "other", "battery staple");
    let rules = rules.path().to_str().unwrap();
    let output = betrace(&[
        "eval",
        "--rules",
        rules,
        "--format",
        "json",
        "--signing-key-file",
        &key,
        &trace("genaiTestTrace.json"),
    ]);
    let text = stdout(&output);
    assert!(json_lines(&output).iter().all(|v| v["signature"].as_str().is_some_and(|s| s.len() == 64)));
    let signed = write(dir.path(), "violations.jsonl", &text);

    let verified = betrace(&["verify", "--signing-key-file", &key, &signed]);
    assert_eq!(code(&verified), 0, "{}", stdout(&verified));
    assert!(stdout(&verified).contains("12 violations: 12 valid, 0 invalid"), "{}", stdout(&verified));
    // The key may come from the environment, and the lines from standard input.
    let from_env = betrace_with(&["verify", "-"], text.as_bytes(), &[("BETRACE_SIGNING_KEY", "correct horse")]);
    assert_eq!(code(&from_env), 0, "{}", stdout(&from_env));

    let wrong_key = betrace(&["verify", "--signing-key-file", &other, &signed]);
    assert_eq!(code(&wrong_key), 1);
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[2] = lines[2].replace("\"severity\":\"high\"", "\"severity\":\"low\"");
    let tampered = write(dir.path(), "tampered.jsonl", lines.join("\n") + "\n");
    let output = betrace(&["verify", "--signing-key-file", &key, &tampered]);
    assert_eq!(code(&output), 1);
    assert!(stdout(&output).contains("line 3: signature does not match"), "{}", stdout(&output));
    assert!(stdout(&output).contains("11 valid, 1 invalid"), "{}", stdout(&output));

    let unsigned = betrace(&["eval", "--rules", rules, "--format", "json", &trace("trace.json")]);
    let unsigned = write(dir.path(), "unsigned.jsonl", stdout(&unsigned));
    let output = betrace(&["verify", "--signing-key-file", &key, &unsigned]);
    assert_eq!(code(&output), 1);
    assert!(stdout(&output).contains("is not signed"), "{}", stdout(&output));
    let garbage = write(dir.path(), "garbage.jsonl", "{\"id\": 3}\n");
    assert_eq!(code(&betrace(&["verify", "--signing-key-file", &key, &garbage])), 1);
    assert_eq!(code(&betrace(&["verify", &signed])), 2, "no key is a usage error");
    let empty_key = write(dir.path(), "empty", "\n");
    assert_eq!(code(&betrace(&["verify", "--signing-key-file", &empty_key, &signed])), 2);
}

#[test]
fn traces_are_read_from_standard_input() {
    let rules = rules_dir();
    let rules = rules.path().to_str().unwrap();
    let bytes = std::fs::read(trace("smartthings-mobile-web-install.json")).unwrap();
    let dashed = betrace_with(&["eval", "--rules", rules, "--format", "json", "-"], &bytes, &[]);
    let implicit = betrace_with(&["eval", "--rules", rules, "--format", "json"], &bytes, &[]);
    assert_eq!(code(&dashed), 1, "{}", stderr(&dashed));
    assert_eq!(json_lines(&dashed).len(), 8);
    assert_eq!(stdout(&dashed), stdout(&implicit));
}

#[test]
fn rules_may_be_one_file_or_a_directory_without_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "rules.btr", RULES);
    for rules in [file.as_str(), dir.path().to_str().unwrap()] {
        let output = betrace(&["eval", "--rules", rules, "--format", "json", &trace("trace.json")]);
        assert_eq!(code(&output), 1, "{}", stderr(&output));
        let lines = json_lines(&output);
        assert_eq!(rule_ids(&lines), ["local/slow_servers"]);
        assert_eq!(lines[0]["pack_version"], "0.0.0");
    }
}

#[test]
fn clean_traces_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let rules =
        write(dir.path(), "calm.btr", "rule calm { severity: low when { kind = server } never { name = \"boom\" } }\n");
    let output = betrace(&["eval", "--rules", &rules, &trace("genaiTestTrace.json")]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).starts_with("0 violations in 0 of 1 trace (57 spans)"), "{}", stdout(&output));
    let json = betrace(&["eval", "--rules", &rules, "--format", "json", &trace("genaiTestTrace.json")]);
    assert_eq!((code(&json), stdout(&json)), (0, String::new()));
}

#[test]
fn rules_out_of_fuel_are_reported_with_counts() {
    let rules = rules_dir();
    let output =
        betrace(&["eval", "--rules", rules.path().to_str().unwrap(), "--fuel", "5", &trace("genaiTestTrace.json")]);
    let errors = stderr(&output);
    assert!(errors.contains("warning: rule `tests/slow_servers` ran out of fuel on 1 trace (--fuel 5)"), "{errors}");
    assert!(errors.contains("warning: rule `tests/no_errors` ran out of fuel on 1 trace"), "{errors}");
}

#[test]
fn what_cannot_be_evaluated_exits_2() {
    let rules = rules_dir();
    let rules = rules.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let truncated = write(dir.path(), "cut.json", &std::fs::read(trace("genaiTestTrace.json")).unwrap()[..5_000]);
    let broken_rules = write(dir.path(), "broken.btr", "rule r { severity: high when { } never { nme = 1 } }\n");
    let cases: [(&[&str], &str); 6] = [
        (&["eval", "--rules", rules, &truncated], "Jaeger JSON"),
        (&["eval", "--rules", rules, "/no/such/trace.json"], "cannot read /no/such/trace.json"),
        (&["eval", "--rules", "/no/such/rules", &trace("trace.json")], "no such file or directory"),
        (&["eval", "--rules", &broken_rules, &trace("trace.json")], "error"),
        (&["eval", "--rules", rules, "--format", "xml", &trace("trace.json")], "invalid value"),
        (&["eval", &trace("trace.json")], "--rules"),
    ];
    for (args, message) in cases {
        let output = betrace(args);
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(message), "{args:?}: {}", stderr(&output));
    }
    let empty = betrace_with(&["eval", "--rules", rules], b"", &[]);
    assert_eq!(code(&empty), 2);
    assert!(stderr(&empty).contains("<stdin>: trace data: the input is empty"), "{}", stderr(&empty));
}

/// Traces for `novelty`: 40 with the usual call path, then two with a new
/// one, as OTLP protobuf; `reversed` writes the spans in the opposite order.
fn novelty_traces(reversed: bool) -> Vec<u8> {
    const USUAL: &str = "frontend: GET /  server  0ms+30ms\n  catalog: GET /products  server  5ms+10ms\n  cart: GET /cart  server  6ms+8ms\n";
    const NEW: &str = "frontend: GET /  server  0ms+30ms\n  payments: POST /refund  server  5ms+10ms\n    ledger: ledger.reverse  internal  6ms+3ms\n";
    let mut records = Vec::new();
    for n in 0u8..44 {
        let text = if n == 40 || n == 43 { NEW } else { USUAL };
        for mut span in betrace_vm::trace::compact::parse(text).unwrap().spans {
            span.trace_id = [n + 1; 16];
            span.start += i64::from(n) * 1_000_000_000;
            span.end += i64::from(n) * 1_000_000_000;
            records.push(span);
        }
    }
    if reversed {
        records.reverse();
    }
    betrace_runtime::formats::encode_request(&records).encode_to_vec()
}

#[test]
fn novelty_violations_carry_evidence_that_is_signed_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "drift.btr",
        "rule new_call_path {\n  severity: info\n  when { }\n  never novelty(trace:shape, by: trace:rootName) > 0.5\n}\n",
    );
    let key = write(dir.path(), "key", "correct horse\n");
    let forward = write(dir.path(), "forward.pb", novelty_traces(false));
    let backward = write(dir.path(), "backward.pb", novelty_traces(true));
    let eval = |file: &str| {
        let output = betrace(&["eval", "--rules", &rules, "--format", "json", "--signing-key-file", &key, file]);
        assert_eq!(code(&output), 1, "{}", stderr(&output));
        stdout(&output)
    };
    let first = eval(&forward);
    assert_eq!(eval(&forward), first, "run to run");
    assert_eq!(eval(&backward), first, "whatever order the spans come in");

    let lines: Vec<Value> = first.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 2, "the two traces with a new path: {first}");
    for line in &lines {
        let evidence = &line["novelty"][0];
        assert!(evidence["score"].as_f64().is_some_and(|score| score > 0.5), "{line}");
        assert_eq!(evidence["key"], "\"GET /\"");
        assert!(evidence["worst"][0]["text"].as_str().is_some_and(|text| text.contains("payments")), "{line}");
    }
    let signed = write(dir.path(), "violations.jsonl", &first);
    let verified = betrace(&["verify", "--signing-key-file", &key, &signed]);
    assert_eq!(code(&verified), 0, "{}", stdout(&verified));
    let score = lines[0]["novelty"][0]["score"].to_string();
    let tampered = write(dir.path(), "tampered.jsonl", first.replacen(&score, "0.51", 1));
    assert_eq!(code(&betrace(&["verify", "--signing-key-file", &key, &tampered])), 1, "the score is signed");

    let human = betrace(&["eval", "--rules", &rules, &forward]);
    assert!(stdout(&human).contains("novelty ") && stdout(&human).contains(" by \"GET /\""), "{}", stdout(&human));
}
