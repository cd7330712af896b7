"""End to end over real HTTP: ``chainmatch serve`` (uvicorn on a free 127.0.0.1 port) started on an empty data dir,
then the CRM path upsert → recommend → shortlist → feedback → export, plus the ``apikey`` CLI against the same
store."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import httpx
import pytest
from api_support import Served
from openpyxl import load_workbook
from typer.testing import CliRunner

from service.cli import app as cli

GAP = {"region": "manas", "chain": "aluminium", "link": "aluminium_rod"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    s = Served(tmp_path_factory.mktemp("served"))
    yield s
    s.stop()


def test_first_start_prints_the_page_url_and_a_demo_key_and_logs_the_demo_load(served: Served):
    out = "".join(served.stdout_lines)
    assert f"{served.url}/" in out and "demo API key for tenant 'demo'" in out
    log_lines = [json.loads(line) for line in served.log.read_text().splitlines() if line.startswith("{")]
    messages = [x["message"] for x in log_lines]
    assert any("loaded the embedded demo corpus" in m for m in messages)
    assert any("index ready" in m for m in messages)
    assert all({"ts", "level", "logger", "message", "request_id"} <= set(x) for x in log_lines)


def test_crm_path_over_http(served: Served):
    key = served.key
    with httpx.Client(base_url=served.url, headers={"X-API-Key": key}, timeout=60) as http:
        firm = {
            "id": "crm-77",
            "name": "江苏E2E铝棒有限公司",
            "province": "江苏",
            "city": "常州市",
            "products": [{"name": "6063铝棒", "share": 0.9}],
            "employees": 800,
        }
        up = http.post("/v1/enterprises", json=[firm], headers={"X-Request-ID": "e2e-upsert-1"})
        assert up.status_code == 200 and up.headers["X-Request-ID"] == "e2e-upsert-1"
        stored = up.json()["ids"][0]
        assert stored == "demo:crm-77" and up.json()["index"] in ("pending", "updated")

        # the upsert answered before the index took it in; the CRM sees it within a few seconds
        deadline = time.monotonic() + 30
        while True:
            rec = http.post("/v1/recommendations", json={**GAP, "k": 10}).json()
            ours = next((c for c in rec["candidates"] if c["enterprise_id"] == stored), None)
            if ours is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert ours is not None, "the upserted firm never reached the index"
        assert ours["reasons"] and ours["evidence_strength"] in ("strong", "medium", "weak")

        lead = http.post("/v1/leads", json={**GAP, "enterprise_id": stored, "note": "CRM 推送"})
        assert lead.status_code == 201
        lead_id = lead.json()["id"]
        for status in ("已接触", "已考察"):
            assert http.patch(f"/v1/leads/{lead_id}", json={"status": status}).status_code == 200
        wrong = http.patch(f"/v1/leads/{lead_id}", json={"status": "线索"})
        assert wrong.status_code == 422 and wrong.json()["error"]["allowed"] == ["已签约", "已放弃"]

        events = http.get("/v1/feedback/events").json()
        assert [e["to_status"] for e in events if e["lead_id"] == lead_id] == ["线索", "已接触", "已考察"]

        xlsx = http.get("/v1/regions/manas/shortlist.xlsx")
        assert xlsx.status_code == 200
        ws = load_workbook(io.BytesIO(xlsx.content)).active
        row = [c.value for c in ws[2]]
        assert row[1] == "江苏E2E铝棒有限公司" and row[11] == "已考察" and row[12] == "CRM 推送"

    assert httpx.get(f"{served.url}/v1/regions").status_code == 401
    metrics = httpx.get(f"{served.url}/metrics").text
    assert 'route="/v1/leads/{lead_id}"' in metrics, metrics
    size = float(re.search(r"^chainmatch_index_size (\S+)$", metrics, re.M).group(1))
    assert size == httpx.get(f"{served.url}/readyz").json()["index_size"] > 400


def test_apikey_cli_creates_lists_and_revokes_keys_of_the_running_server(served: Served, monkeypatch):
    data_dir = Path(served.log).parent / "data"
    monkeypatch.setenv("CHAINMATCH_DATA_DIR", str(data_dir))
    from matcher.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    created = runner.invoke(cli, ["apikey", "create", "--tenant", "crm_b", "--name", "CRM B"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("cmk_")
    assert httpx.get(f"{served.url}/v1/regions", headers={"X-API-Key": key}).status_code == 200
    listing = runner.invoke(cli, ["apikey", "list"])
    assert (
        "crm_b" in listing.output and "demo" in listing.output and key.split("_", 2)[2] not in listing.output
    )
    key_id = key.split("_")[1]
    assert runner.invoke(cli, ["apikey", "revoke", key_id]).exit_code == 0
    assert httpx.get(f"{served.url}/v1/regions", headers={"X-API-Key": key}).status_code == 401
    bad = runner.invoke(cli, ["apikey", "revoke", "000000000000"])
    assert bad.exit_code == 2 and "unknown API key" in bad.output
    invalid = runner.invoke(cli, ["apikey", "create", "--tenant", "no:colons"])
    assert invalid.exit_code == 2
