"""The example Prometheus alerting rules, examples/alerts/betrace.rules.yml.

No Prometheus binary (`promtool check rules`) can be fetched here, so this
checks the file's shape as Prometheus reads a rule file: groups of uniquely
named alerts, each with an expression, a known routing severity, a summary,
and durations Prometheus accepts. That every series and label the
expressions name exists is checked against the server's own metrics by
runtime/src/metrics.rs (`the_example_alerts_and_dashboard_name_real_series_and_labels`).
"""

import pathlib
import re

import yaml

RULES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "alerts" / "betrace.rules.yml"
ROUTES = {"page", "ticket"}
# A Prometheus duration: units from ms to y, largest first (`1h30m`).
DURATION = re.compile(r"(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


def alerts():
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    assert groups, "the file has rule groups"
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names)), f"group names repeat: {names}"
    for group in groups:
        assert set(group) <= {"name", "interval", "rules"}, group.keys()
        assert group["rules"], f"group {group['name']} has rules"
        yield from group["rules"]


def test_every_alert_is_complete_and_routed():
    seen = set()
    for rule in alerts():
        name = rule.get("alert")
        assert name and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), rule
        assert name not in seen, f"{name} is defined twice"
        seen.add(name)
        assert set(rule) <= RULE_KEYS, f"{name}: unknown keys {set(rule) - RULE_KEYS}"
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), name
        assert rule["labels"]["severity"] in ROUTES, f"{name} routes to {rule['labels']['severity']}"
        assert rule["annotations"]["summary"].strip(), name
    assert len(seen) >= 10


def test_expressions_balance_and_durations_parse():
    for rule in alerts():
        expr = rule["expr"]
        for open_, close in ("()", "{}", "[]"):
            depth = 0
            for char in expr:
                depth += (char == open_) - (char == close)
                assert depth >= 0, f"{rule['alert']}: `{close}` before its `{open_}`"
            assert depth == 0, f"{rule['alert']}: unbalanced `{open_}{close}`"
        ranges = re.findall(r"\[([^\]]+)\]", expr)
        for duration in ranges + [rule.get("for", "0s")]:
            assert DURATION.fullmatch(duration) and duration, f"{rule['alert']}: bad duration {duration!r}"


def test_templates_use_only_labels_the_expression_keeps():
    # An annotation's {{ $labels.x }} is empty unless the expression's
    # result carries x: an aggregation keeps only its `by (...)` labels.
    for rule in alerts():
        expr = rule["expr"]
        kept = set()
        for by in re.findall(r"by \(([^)]*)\)", expr):
            kept |= {label.strip() for label in by.split(",")}
        if not kept:
            kept = None  # no aggregation: every label of the series stays
        text = " ".join(str(value) for value in rule.get("annotations", {}).values())
        for label in re.findall(r"\$labels\.([a-z_]+)", text):
            assert kept is None or label in kept, f"{rule['alert']}: $labels.{label} is not kept by {expr!r}"
