"""Issue 15 item 1: ``chainmatch doctor`` finds firms stored twice and ``doctor --repair`` merges them — keeping
every known value, the other names as aliases, leads moved to the surviving row — on SQLite and PostgreSQL.

Duplicates cannot be written through :meth:`Store.upsert_enterprises` (its identity rule merges them), so the
tests write rows as an older version of the product did: straight into the table."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from matcher.records import Enterprise, Product
from matcher.settings import get_settings
from matcher.store.db_models import EnterpriseRow
from matcher.store.duplicates import find_duplicates, merge_duplicates
from matcher.store.identity import _aliases_key, _profile_json
from matcher.store.lead_store import create_lead, list_leads
from matcher.store.name_index import index_names
from matcher.text import normalize_company_name
from service.cli import app as cli

pytest_plugins = ["store_backends"]


def _raw_insert(store, *firms: Enterprise) -> None:
    now = datetime.now(timezone.utc)
    with store.transaction() as session:
        for e in firms:
            e = e.model_copy(update={"normalized_name": normalize_company_name(e.name)})
            profile, digest = _profile_json(e, now)
            row = {
                "id": e.id, "tenant": e.tenant, "name": e.name, "normalized_name": e.normalized_name,
                "credit_code": e.credit_code, "province": e.province, "city": e.city, "stock_code": e.stock_code,
                "aliases": _aliases_key(e), "profile": profile, "content_hash": digest, "embedded_hash": None,
                "updated_at": now,
            }  # fmt: skip
            session.execute(EnterpriseRow.__table__.insert(), [row])
            index_names(session, [row])  # as migration 0005 indexed the rows an older version wrote


SHELL_OLD = Enterprise(id="old-shell", name="天业通联股份有限公司", province="天津", stock_code="002459",
                       source="authored:demo", employees=None, sw_industry=None,
                       products=[Product(name="工程机械")])  # fmt: skip
SHELL_NOW = Enterprise(id="ashare-002459", name="晶澳太阳能科技股份有限公司", province="河北", stock_code="002459",
                       source="ashare:wp19991", employees=32_000, sw_industry="光伏设备",
                       products=[Product(name="光伏组件", share=0.9)])  # fmt: skip
TWIN_A = Enterprise(id="twin-a", name="新疆示例铝业有限公司", province="新疆", source="crm", employees=120)
TWIN_B = Enterprise(id="twin-b", name="新疆示例铝业有限公司", province="新疆", source="crm", city="昌吉市")
BRANCH = Enterprise(id="branch", name="新疆示例铝业有限公司昌吉分公司", province="新疆", source="crm")
ELSEWHERE = Enterprise(id="elsewhere", name="新疆示例铝业有限公司", province="江苏", source="crm")


def test_duplicates_are_found_by_stock_code_and_by_name_but_not_across_branches_or_provinces(store):
    _raw_insert(store, SHELL_OLD, SHELL_NOW, TWIN_A, TWIN_B, BRANCH, ELSEWHERE)
    groups = {g.reason: g for g in find_duplicates(store)}
    assert set(groups) == {"stock_code", "name"}
    assert groups["stock_code"].ids == ["ashare-002459", "old-shell"]  # the A-share record survives
    assert groups["name"].ids == ["twin-a", "twin-b"]  # the branch and the 江苏 firm are other firms


def test_repair_merges_each_group_keeping_known_values_names_and_leads(store):
    _raw_insert(store, SHELL_OLD, SHELL_NOW, TWIN_A, TWIN_B)
    lead, _ = create_lead(store, "t1", region_id="r", chain_id="c", link_id="l", enterprise_id="old-shell",
                          enterprise_name=SHELL_OLD.name)  # fmt: skip
    before = store.last_change_seq()
    done: list[tuple[int, int]] = []
    outcome = merge_duplicates(store, find_duplicates(store), progress=lambda d, t: done.append((d, t)))
    assert outcome.groups == 2 and sorted(outcome.removed_ids) == ["old-shell", "twin-b"]
    assert done == [(1, 2), (2, 2)]
    assert find_duplicates(store) == []
    assert store.count_enterprises() == 2

    jinko = store.get_enterprise("ashare-002459")
    assert jinko.name == SHELL_NOW.name and jinko.employees == 32_000 and jinko.sw_industry == "光伏设备"
    assert "天业通联股份有限公司" in jinko.aliases  # the former name stays searchable
    assert [e.id for e in store.find_enterprises("天业通联")] == ["ashare-002459"]
    twin = store.get_enterprise("twin-a")
    assert twin.employees == 120 and twin.city == "昌吉市"  # values of both rows kept
    assert [ld.enterprise_id for ld in list_leads(store, "t1")] == ["ashare-002459"]
    assert lead.id in {ld.id for ld in list_leads(store, "t1")}
    changes = {(c.enterprise_id, c.op) for c in store.changes_since(before)}
    assert {("old-shell", "delete"), ("twin-b", "delete"), ("ashare-002459", "upsert")} <= changes


def test_cli_doctor_lists_duplicates_and_repair_merges_them(store_url: str, store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CHAINMATCH_DATABASE_URL", store_url)
    monkeypatch.setenv("CHAINMATCH_EMBEDDER", "hash")
    get_settings.cache_clear()
    _raw_insert(store, SHELL_OLD, SHELL_NOW)
    runner = CliRunner()
    found = runner.invoke(cli, ["doctor"])
    assert found.exit_code == 1, found.output
    assert "DUPLICATES: 1 firm(s)" in found.output and "天业通联股份有限公司 (old-shell)" in found.output
    body = json.loads(runner.invoke(cli, ["doctor", "--json"]).output)
    assert body["duplicates"][0]["ids"] == ["ashare-002459", "old-shell"]

    fixed = runner.invoke(cli, ["doctor", "--repair"])
    assert "merged 1/1 duplicate groups" in fixed.output and "1 row(s) folded into 1" in fixed.output
    assert fixed.exit_code == 0, fixed.output
    again = runner.invoke(cli, ["doctor"])
    assert again.exit_code == 0 and "no firm is stored twice" in again.output


def test_a_firm_under_its_former_name_is_a_duplicate_in_the_same_province_only(store):
    renamed = Enterprise(id="new", name="新疆新名材料股份有限公司", aliases=["新疆旧名化工有限公司"], province="新疆",
                         source="crm", employees=80)  # fmt: skip
    old = Enterprise(id="old", name="新疆旧名化工有限公司", province="新疆", source="crm", city="昌吉市")
    other = Enterprise(id="other", name="新疆旧名化工有限公司", province="江苏", source="crm")
    _raw_insert(store, renamed, old, other)
    groups = find_duplicates(store)
    assert [(g.reason, sorted(g.ids)) for g in groups] == [("former_name", ["new", "old"])]
    merge_duplicates(store, groups)
    kept = store.get_enterprise(groups[0].ids[0])
    assert kept.id == "new" and kept.name == "新疆新名材料股份有限公司" and "新疆旧名化工有限公司" in kept.aliases
    assert kept.employees == 80 and kept.city == "昌吉市" and store.count_enterprises() == 2
