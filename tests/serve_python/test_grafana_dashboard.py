"""The example Grafana dashboard, examples/grafana/betrace-dashboard.json.

No Grafana runs here, so this checks what importing the dashboard depends
on: it is a dashboard model whose panels have unique ids, sit inside the
24-column grid without overlapping, read from the data source variables the
dashboard declares, and each query something. That every series and label
its queries name exists is checked against the server's own metrics by
runtime/src/metrics.rs (`the_example_alerts_and_dashboard_name_real_series_and_labels`).
"""

import json
import pathlib

DASHBOARD = pathlib.Path(__file__).resolve().parents[2] / "examples" / "grafana" / "betrace-dashboard.json"


def dashboard():
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_the_dashboard_declares_its_data_sources_and_a_tenant_filter():
    model = dashboard()
    assert model["uid"] and model["title"]
    variables = {variable["name"]: variable for variable in model["templating"]["list"]}
    assert variables["prometheus"]["type"] == "datasource" and variables["prometheus"]["query"] == "prometheus"
    assert variables["tempo"]["type"] == "datasource" and variables["tempo"]["query"] == "tempo"
    assert "betrace_rules_loaded" in variables["tenant"]["query"]["query"]


def test_panels_have_unique_ids_and_fit_the_grid_without_overlap():
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), ids
    taken = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_query_reads_a_declared_data_source():
    declared = {f"${{{variable['name']}}}" for variable in dashboard()["templating"]["list"]}
    queries = 0
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in declared, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == panel["datasource"]["uid"], panel["title"]
            text = target.get("expr") or target.get("query")
            assert isinstance(text, str) and text.strip(), panel["title"]
            queries += 1
    assert queries >= 20
