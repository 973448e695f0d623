"""The Collector configuration docs/serve.md gives for running several
BeTrace instances behind the `loadbalancing` exporter.

No Collector binary can be fetched here, so this checks what the deployment
depends on in the snippet itself: it is valid YAML, routes by trace id, sends
OTLP, resolves the BeTrace instances, and is wired into a traces pipeline.
The other half of the contract — a trace's spans arriving at one instance in
any order and batching give the same violations — is the property test
tests/serve_sdk/order_batching.rs.
"""

import pathlib
import re

import yaml

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "serve.md"


def collector_config():
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    configs = [yaml.safe_load(block) for block in blocks if "loadbalancing" in block]
    assert len(configs) == 1, "docs/serve.md has one loadbalancing example"
    return configs[0]


def test_the_snippet_routes_whole_traces_to_one_instance():
    config = collector_config()
    exporter = config["exporters"]["loadbalancing"]
    assert exporter["routing_key"] == "traceID"
    assert "otlp" in exporter["protocol"]
    resolver = exporter["resolver"]
    assert set(resolver) & {"dns", "static", "k8s"}, resolver
    if "dns" in resolver:
        assert resolver["dns"]["port"] == 4317, "BeTrace's OTLP/gRPC port"


def test_the_snippet_is_wired_into_a_traces_pipeline():
    config = collector_config()
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["exporters"] == ["loadbalancing"]
    for receiver in pipeline["receivers"]:
        assert receiver in config["receivers"], receiver
