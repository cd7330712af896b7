"""The catalogue / gaps / recommend / shortlist / fit / train commands end to end (CliRunner, real SQLite store,
embedded demo data, the deterministic hash embedder)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_catalog_stats_meets_the_coverage_counts():
    r = run("catalog", "stats", "--json")
    assert r.exit_code == 0, r.output
    stats = json.loads(r.output.strip().splitlines()[-1])
    assert stats["chains"] >= 25 and stats["links"] >= 300 and stats["edges"] >= 350


def test_catalog_show_prints_the_chain_upstream_first():
    r = run("catalog", "show", "铝产业链")
    assert r.exit_code == 0, r.output
    assert r.output.index("氧化铝") < r.output.index("电解铝") < r.output.index("铝型材")


def test_gaps_for_manas_shows_the_aluminium_downstream_gaps_with_the_chain_master():
    r = run("gaps", "玛纳斯县", "--chain", "aluminium", "--all")
    assert r.exit_code == 0, r.output
    out = r.output
    assert "短链" in out and "铝棒" in out and "铝型材" in out
    assert "新疆嘉润资源控股有限公司" in out


def test_gaps_default_view_is_concise_and_says_how_many_rows_it_left_out():
    """Issue 16 item 3: the top rows of each chain by default, the full list with --all."""
    short = run("gaps", "玛纳斯县", "--chain", "aluminium", "--per-chain", "2", "--json")
    full = run("gaps", "玛纳斯县", "--chain", "aluminium", "--all", "--json")
    s = json.loads(short.output[short.output.index("{"):])
    f = json.loads(full.output[full.output.index("{"):])
    assert len(s["gaps"]) == 2 and s["trimmed"] == sum(g["feasible"] for g in f["gaps"]) - 2
    assert [g["link_id"] for g in s["gaps"]] == [g["link_id"] for g in f["gaps"][:2]]
    text = run("gaps", "玛纳斯县", "--chain", "aluminium", "--per-chain", "2").output
    assert f"另有 {s['trimmed']} 个较低优先级缺口未列出" in text


def test_gaps_json_is_the_gap_map_contract():
    r = run("gaps", "manas", "--json")
    assert r.exit_code == 0, r.output
    gm = json.loads(r.output[r.output.index("{"):])
    assert gm["region_id"] == "manas" and gm["gaps"]
    g = gm["gaps"][0]
    assert {"type", "chain_id", "link_id", "evidence", "priority", "priority_parts"} <= set(g)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("gaps", "不存在的县"), "unknown region"),
        (("gaps", "玛纳斯县", "--chain", "不存在的链"), "unknown chain"),
        (("catalog", "show", "nope"), "unknown chain"),
        (("recommend", "玛纳斯县", "--chain", "aluminium", "--link", "不存在"), "unknown link"),
    ],
)
def test_bad_input_is_a_clear_error_not_a_traceback(args, fragment):
    r = run(*args)
    assert r.exit_code == 2
    assert fragment in r.output
    assert "Traceback" not in r.output


def test_recommend_prints_a_ranked_table_with_reasons():
    r = run("recommend", "玛纳斯县", "--chain", "aluminium", "--link", "铝棒", "--k", "5")
    assert r.exit_code == 0, r.output
    assert "可填补「铝棒」环节" in r.output
    assert "residents excluded" in r.output


def test_recommend_json_carries_explanations_and_excludes_residents():
    r = run("recommend", "玛纳斯县", "--chain", "aluminium", "--link", "aluminium_rod", "--k", "10", "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.output[r.output.index("{"):])
    names = [c["name"] for c in rec["candidates"]]
    assert "新疆嘉润资源控股有限公司" not in names
    assert rec["candidates"] and all(c["evidence_strength"] in {"strong", "medium", "weak"} for c in rec["candidates"])
    assert rec["candidates"][0]["link_id"] == "aluminium_rod"


def test_shortlist_gives_one_list_per_gap():
    r = run("shortlist", "玛纳斯县", "--k", "3", "--max-gaps", "4", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("["):])
    assert len(out) == 4 and all(len(x["candidates"]) <= 3 for x in out)


def test_fit_ranks_regions_for_an_enterprise():
    r = run("fit", "南昌荣凯实业有限公司", "--k", "5", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{"):])
    assert out["fits"], out
    assert any(f["region_id"] == "manas" and f["chain_id"] == "aluminium" for f in out["fits"])


def test_fit_unknown_enterprise_is_a_clear_error():
    r = run("fit", "根本不存在的企业有限公司")
    assert r.exit_code == 2 and "unknown enterprise" in r.output
