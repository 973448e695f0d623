"""`betrace serve` as users run it, fed by the OpenTelemetry Python SDK.

The built binary (``BETRACE_BIN``, default ``target/debug/betrace``) is
started with a config on free loopback ports and a small rule pack. A
service instrumented with the Python SDK sends two checkout traces over
OTLP/gRPC with the SDK's own exporter: one charges without a fraud check and
logs a card number, one keeps the rules. The violations JSON-lines file must
hold exactly the first trace's two violations — ids, bound and parent spans,
witnesses, and an HMAC signature recomputed here from the documented
canonical encoding — and ``/metrics`` must count them in
``betrace_violations_total``.
"""

import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 10.0
SIGNING_KEY = b"python-e2e-key"

RULES = """
rule charge_needs_fraud_check {
  severity: critical
  tags: ["pci:10.2"]
  message: "charge without a fraud check before it"
  when c = { name = "payment.charge" }
  always { name = "fraud.check" && end <= c.start }
}

rule no_card_numbers_in_clear {
  severity: high
  when { true }
  never { span.card.number != nil }
}
"""


def free_port() -> int:
    """A port nothing listens on now (the OS picks it for a socket bound to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def toml_string(value) -> str:
    # A JSON string is a valid TOML basic string.
    return json.dumps(str(value))


def wait_until(what: str, check, server=None):
    deadline = time.monotonic() + WAIT_S
    while True:
        result = check()
        if result:
            return result
        if server is not None and server.process.poll() is not None:
            code = server.process.returncode
            pytest.fail(f"betrace serve exited with {code} while waiting for {what}:\n{server.log()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f"\n{server.log()}" if server else ""))
        time.sleep(0.05)


def http_get(url: str):
    """(status, body) of a GET, or None when nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status, reply.read().decode()
    except OSError:
        return None


class Server:
    """A `betrace serve` process with its config, ports and outputs under `tmp`."""

    def __init__(self, tmp: Path):
        binary = Path(os.environ.get("BETRACE_BIN", REPO / "target" / "debug" / "betrace")).resolve()
        if not binary.exists():
            pytest.fail(f"{binary} does not exist: build it first (cargo build) or set BETRACE_BIN")
        pack = tmp / "pack"
        pack.mkdir()
        (pack / "pack.toml").write_text('name = "pye2e"\nversion = "0.3.0"\nengine = ">=0.1"\n')
        (pack / "rules.btr").write_text(RULES)
        (tmp / "signing.key").write_bytes(SIGNING_KEY)
        self.grpc_port, self.http_port, self.admin_port = free_port(), free_port(), free_port()
        self.violations = tmp / "violations.jsonl"
        config = tmp / "betrace.toml"
        config.write_text(
            f"""
[receivers]
otlp_grpc = "127.0.0.1:{self.grpc_port}"
otlp_http = "127.0.0.1:{self.http_port}"

[admin]
addr = "127.0.0.1:{self.admin_port}"

[rules]
paths = [{toml_string(pack)}]
watch = false
state_dir = {toml_string(tmp / "state")}

[assembly]
idle_timeout = "200ms"

[export]
stdout = false
file = {toml_string(self.violations)}
queue_dir = {toml_string(tmp / "queue")}
signing_key_file = {toml_string(tmp / "signing.key")}
"""
        )
        self.log_path = tmp / "betrace.log"
        self.log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(binary), "serve", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )

    def log(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def admin(self, path: str):
        return http_get(f"http://127.0.0.1:{self.admin_port}{path}")

    def violation_lines(self):
        if not self.violations.exists():
            return []
        return [json.loads(line) for line in self.violations.read_text().splitlines() if line.strip()]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        return self.process.returncode


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path)
    ready = lambda: (server.admin("/readyz") or (None,))[0] == 200  # noqa: E731
    wait_until("/readyz", ready, server)
    yield server
    server.stop()


def send_checkouts(grpc_port: int):
    """Two checkout traces through the SDK; returns the ids of the one breaking the rules."""
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{grpc_port}", insecure=True, timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("betrace-python-e2e")

    def checkout(fraud_check: bool, card_number: bool):
        base = time.time_ns()
        ms = 1_000_000
        root = tracer.start_span("POST /checkout", kind=trace.SpanKind.SERVER, start_time=base)
        inside = trace.set_span_in_context(root)

        def child(name, start, end, attributes=None):
            span = tracer.start_span(name, context=inside, start_time=base + start * ms, attributes=attributes)
            span.end(end_time=base + end * ms)
            return span.get_span_context().span_id

        if fraud_check:
            child("fraud.check", 5, 20)
        card = child("card.tokenize", 22, 28, {"card.number": "4111111111111111"}) if card_number else None
        charge = child("payment.charge", 30, 60, {"payment.amount": 120.5})
        root.end(end_time=base + 100 * ms)
        context = root.get_span_context()
        return {"trace": context.trace_id, "root": context.span_id, "charge": charge, "card": card}

    bad = checkout(fraud_check=False, card_number=True)
    good = checkout(fraud_check=True, card_number=False)
    assert provider.force_flush(timeout_millis=int(WAIT_S * 1000)), "the SDK could not flush its spans"
    provider.shutdown()
    return bad, good


def canonical_bytes(v: dict) -> bytes:
    """The canonical encoding violations are signed over (vm/src/violation/signature.rs),
    written from its documentation: each field length-prefixed (u32 big-endian)."""
    out = bytearray()

    def field(data: bytes):
        out.extend(len(data).to_bytes(4, "big"))
        out.extend(data)

    def span(hex_id):
        return bytes.fromhex(hex_id) if hex_id else b""

    def items(values):
        out.extend(len(values).to_bytes(4, "big"))
        for value in values:
            field(value)

    field(b"betrace.violation.v1")
    field(v["id"].encode())
    field(bytes.fromhex(v["trace_id"]))
    field(span(v["bound_span"]))
    field(span(v["parent_span"]))
    for key in ("rule_id", "rule_name", "severity", "message", "clause", "clause_kind"):
        field(v[key].encode())
    items([tag.encode() for tag in v["tags"]])
    items([bytes.fromhex(w) for w in v["witnesses"]])
    field(v["pack_name"].encode())
    field(v["pack_version"].encode())
    field(int(v["time_unix_nano"]).to_bytes(8, "big", signed=True))
    assert "novelty" not in v, "these rules read no novelty"
    return bytes(out)


def metric_samples(text: str, name: str):
    """{frozenset(labels): value} of the samples of metric `name` in Prometheus text."""
    samples = {}
    for line in text.splitlines():
        match = re.fullmatch(name + r"\{(.*)\} (\S+)", line.strip())
        if match:
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
            samples[labels] = float(match.group(2))
    return samples


def test_python_sdk_spans_become_signed_violations_and_metrics(server):
    bad, good = send_checkouts(server.grpc_port)
    hexid = lambda n, width: format(n, f"0{width}x")  # noqa: E731

    wait_until("two violations in the file", lambda: len(server.violation_lines()) >= 2, server)
    # The passing trace completes with the other (200 ms idle): give it time to show a violation it must not have.
    time.sleep(0.6)
    lines = server.violation_lines()
    assert len(lines) == 2, lines
    by_rule = {line["rule_id"]: line for line in lines}
    assert set(by_rule) == {"pye2e/charge_needs_fraud_check", "pye2e/no_card_numbers_in_clear"}
    assert all(line["trace_id"] == hexid(bad["trace"], 32) for line in lines), "only the breaking trace has violations"
    assert all(line["trace_id"] != hexid(good["trace"], 32) for line in lines)

    charge = by_rule["pye2e/charge_needs_fraud_check"]
    assert charge["bound_span"] == hexid(bad["charge"], 16)
    assert charge["parent_span"] == hexid(bad["charge"], 16), "a bound violation hangs under its bound span"
    assert charge["severity"] == "critical" and charge["tags"] == ["pci:10.2"]
    assert charge["message"] == "charge without a fraud check before it"
    assert (charge["pack_name"], charge["pack_version"]) == ("pye2e", "0.3.0")

    card = by_rule["pye2e/no_card_numbers_in_clear"]
    assert card["bound_span"] is None
    assert card["parent_span"] == hexid(bad["root"], 16), "an unbound violation hangs under the root"
    assert card["witnesses"] == [hexid(bad["card"], 16)]
    assert card["clause_kind"] == "never"

    for line in lines:
        assert re.fullmatch(r"[0-9a-f]{32}", line["id"])
        expected = hmac.new(SIGNING_KEY, canonical_bytes(line), hashlib.sha256).hexdigest()
        assert line["signature"] == expected, f"the signature of {line['rule_id']} does not verify"

    status, metrics = server.admin("/metrics")
    assert status == 200
    violations = metric_samples(metrics, "betrace_violations_total")
    for rule, line in by_rule.items():
        labels = frozenset({("tenant", ""), ("rule", rule), ("severity", line["severity"])})
        assert violations.get(labels) == 1, violations
    received = metric_samples(metrics, "betrace_spans_received_total")
    assert received.get(frozenset({("receiver", "grpc")})) == 6, received

    assert server.stop() == 0, f"betrace serve did not stop cleanly on SIGTERM:\n{server.log()}"
