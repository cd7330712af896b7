"""The store on SQLite and PostgreSQL: upserts, dedupe, change tracking, look-ups, tenancy, regions, migrations."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from matcher.errors import InvalidRequestError, UnknownEnterpriseError, UnknownRegionError
from matcher.records import Enterprise, LinkMatch, Product, Region, RegionLevel
from matcher.store.credit_code import check_character
from matcher.store.store import Store
from matcher.store.tenancy import ALL_TENANTS, SharedCorpusReadOnlyError

pytest_plugins = ["store_backends"]  # the store / store_url / open_store fixtures on SQLite and PostgreSQL


def snapshot(store) -> list[dict]:
    from store_backends import snapshot as take

    return take(store)


CODE_A = "91650100MA77T6Q80" + check_character("91650100MA77T6Q80")
CODE_B = "91320500134756920" + check_character("91320500134756920")
CODE_C = "91440300192203821" + check_character("91440300192203821")


def ent(
    id: str, name: str, province: str | None = "新疆", credit_code: str | None = None, **kw
) -> Enterprise:
    return Enterprise(id=id, name=name, province=province, credit_code=credit_code, **kw)


def corpus() -> list[Enterprise]:
    return [
        ent("e1", "新疆嘉润资源控股有限公司", credit_code=CODE_A, aliases=["嘉润"],
            products=[Product(name="电解铝", share=0.7)]),
        ent("e2", "特变电工股份有限公司", aliases=["特变电工"], stock_code="600089",
            products=[Product(name="变压器", share=0.4)]),
        ent("e3", "江苏富淼科技股份有限公司", province="江苏", credit_code=CODE_B, aliases=["富淼科技"]),
        ent("e4", "新疆众和股份有限公司", aliases=["新疆众和"], stock_code="600888"),
    ]  # fmt: skip


# --- upsert, dedupe, change tracking ---------------------------------------------------------------------------------


def test_upsert_inserts_then_the_same_batch_again_changes_nothing(store):
    first = store.upsert_enterprises(corpus())
    assert (first.inserted, first.updated, first.unchanged) == (4, 0, 0)
    before = snapshot(store)
    again = store.upsert_enterprises(corpus())
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    assert again.changed_ids == []
    assert snapshot(store) == before
    assert store.count_enterprises() == 4


def test_changed_profile_is_updated_and_marked_for_re_embedding(store):
    store.upsert_enterprises(corpus())
    store.mark_embedded(["e1", "e2", "e3", "e4"], "e5-small")
    assert store.pending_embedding("e5-small") == []
    changed = corpus()
    changed[1] = changed[1].model_copy(update={"products": [Product(name="变压器", share=0.5)]})
    summary = store.upsert_enterprises(changed)
    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 1, 3)
    assert summary.changed_ids == ["e2"]
    assert store.pending_embedding("e5-small") == ["e2"]
    assert store.get_enterprise("e2").products[0].share == 0.5


def test_a_different_embedding_model_sees_every_row_pending(store):
    store.upsert_enterprises(corpus())
    store.mark_embedded(["e1", "e2", "e3", "e4"], "hash")
    assert store.pending_embedding("hash") == []
    assert store.pending_embedding("e5-int8") == ["e1", "e2", "e3", "e4"]


def test_dedupe_by_credit_code_wins_over_a_different_id_and_name(store):
    store.upsert_enterprises(corpus())
    renamed = ent("other-id", "新疆嘉润资源控股集团有限公司", credit_code=CODE_A.lower())
    summary = store.upsert_enterprises([renamed])
    assert (summary.inserted, summary.updated) == (0, 1)
    assert summary.ids == ["e1"]
    assert store.get_enterprise("e1").name == "新疆嘉润资源控股集团有限公司"
    with pytest.raises(UnknownEnterpriseError):
        store.get_enterprise("other-id")


def test_dedupe_by_normalised_name_and_province_when_there_is_no_credit_code(store):
    store.upsert_enterprises(corpus())
    same_firm = ent("x9", "特变电工（集团）股份有限公司", credit_code=CODE_C)
    summary = store.upsert_enterprises([same_firm])
    assert summary.ids == ["e2"] and summary.updated == 1
    assert store.get_enterprise("e2").credit_code == CODE_C
    assert store.count_enterprises() == 4


def test_firms_with_different_credit_codes_are_never_merged_by_name(store):
    store.upsert_enterprises(corpus())
    namesake = ent("x1", "新疆嘉润资源控股有限公司", credit_code=CODE_C)
    summary = store.upsert_enterprises([namesake])
    assert summary.inserted == 1
    assert store.count_enterprises() == 5


def test_same_name_in_another_province_is_another_firm(store):
    store.upsert_enterprises(corpus())
    summary = store.upsert_enterprises([ent("x2", "特变电工股份有限公司", province="四川")])
    assert summary.inserted == 1


def test_duplicates_within_one_batch_merge_and_the_later_one_wins(store):
    a = ent("d1", "昌吉某某铝业有限公司", scope="铝棒")
    b = ent("d2", "昌吉某某铝业有限公司", scope="铝型材")
    summary = store.upsert_enterprises([a, b])
    assert summary.inserted == 1 and summary.ids == ["d1", "d1"]
    assert store.get_enterprise("d1").scope == "铝型材"


def test_dedupe_falls_back_to_the_id(store):
    store.upsert_enterprises([ent("id-only", "甲公司", province=None)])
    summary = store.upsert_enterprises([ent("id-only", "甲公司(更名)", province=None)])
    assert summary.updated == 1 and store.count_enterprises() == 1


def test_invalid_credit_code_is_refused_before_anything_is_written(store):
    bad = ent("b1", "某公司", credit_code=CODE_A[:-1] + ("0" if CODE_A[-1] != "0" else "1"))
    with pytest.raises(InvalidRequestError, match="check character mismatch"):
        store.upsert_enterprises([ent("ok", "好公司"), bad])
    assert store.count_enterprises() == 0


def test_transaction_is_all_or_nothing(store):
    store.upsert_enterprises(corpus())
    before = snapshot(store)
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction():
            store.upsert_enterprises(
                [ent("t1", "新公司甲"), ent("e2", "特变电工股份有限公司", scope="changed")]
            )
            store.upsert_region(Region(id="r1", name="某园区", level=RegionLevel.PARK))
            raise RuntimeError("boom")
    assert snapshot(store) == before


def test_credit_code_match_beats_the_id(store):
    store.upsert_enterprises(
        [ent("c1", "甲公司", credit_code=CODE_A), ent("c2", "乙公司", credit_code=CODE_B)]
    )
    summary = store.upsert_enterprises([ent("c2", "甲公司(新名)", credit_code=CODE_A)])
    assert summary.ids == ["c1"] and summary.updated == 1
    assert store.get_enterprise("c2").credit_code == CODE_B


@pytest.mark.parametrize("tenant", [None, "akesu"])
def test_schema_refuses_one_credit_code_on_two_rows_of_one_scope(store, tenant):
    from sqlalchemy.exc import IntegrityError

    store.upsert_enterprises([ent("c1", "甲公司", credit_code=CODE_A), ent("c2", "乙公司")], tenant=tenant)
    c2 = "c2" if tenant is None else f"{tenant}:c2"
    with pytest.raises(IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE enterprises SET credit_code = :c WHERE id = :id"), {"c": CODE_A, "id": c2}
            )
    assert store.get_enterprise(c2, tenant=tenant).credit_code is None


# --- look-ups ----------------------------------------------------------------------------------------------------------


def test_get_unknown_enterprise_raises(store):
    with pytest.raises(UnknownEnterpriseError, match="nope"):
        store.get_enterprise("nope")


@pytest.mark.parametrize(
    ("query", "first_id"),
    [
        ("新疆嘉润资源控股有限公司", "e1"),  # official name
        ("新疆嘉润资源控股", "e1"),  # normalised name
        ("嘉润", "e1"),  # alias
        ("特变电工", "e2"),  # alias = normalised name
        ("600888", "e4"),  # stock code
        ("富淼", "e3"),  # substring
        ("特變電工", "e2"),  # traditional characters
    ],
)
def test_find_enterprises_by_name_alias_code_and_substring(store, query: str, first_id: str):
    store.upsert_enterprises(corpus())
    assert store.find_enterprises(query)[0].id == first_id


def test_find_by_credit_code_and_exact_match_ranks_before_substring(store):
    store.upsert_enterprises([*corpus(), ent("e5", "新疆众和铝箔有限公司")])
    assert store.find_enterprises(CODE_B)[0].id == "e3"
    found = [e.id for e in store.find_enterprises("新疆众和")]
    assert found[0] == "e4" and "e5" in found
    assert store.find_enterprises("不存在的公司") == []
    assert len(store.find_enterprises("新疆", limit=2)) == 2


def test_find_treats_like_wildcards_literally(store):
    store.upsert_enterprises(corpus())
    assert store.find_enterprises("%") == []
    assert store.find_enterprises("_") == []


def test_iter_enterprises_in_batches_returns_every_row_once(store):
    items = [ent(f"n{i:02d}", f"批量测试{i:02d}有限公司") for i in range(11)]
    store.upsert_enterprises(items)
    got = [e.id for e in store.iter_enterprises(batch_size=3)]
    assert got == sorted(e.id for e in items)
    assert all(isinstance(e, Enterprise) for e in store.iter_enterprises(batch_size=100))


def test_set_links_replaces_links_and_marks_the_row_pending(store):
    store.upsert_enterprises(corpus())
    store.mark_embedded(["e1", "e2", "e3", "e4"], "m")
    links = [
        LinkMatch(link_id="electrolytic_aluminium", score=1.0, method="alias", evidence="电解铝", share=0.7)
    ]
    store.set_links("e1", links)
    assert store.get_enterprise("e1").links == links
    assert store.pending_embedding("m") == ["e1"]
    store.mark_embedded(["e1"], "m")
    store.set_links("e1", links)  # same links: no change
    assert store.pending_embedding("m") == []
    with pytest.raises(UnknownEnterpriseError):
        store.set_links("missing", links)


def test_delete_enterprise(store):
    store.upsert_enterprises(corpus())
    store.delete_enterprise("e3")
    assert store.count_enterprises() == 3
    with pytest.raises(UnknownEnterpriseError):
        store.delete_enterprise("e3")


# --- tenancy --------------------------------------------------------------------------------------------------------


def test_tenant_sees_shared_and_own_rows_but_never_another_tenants(store):
    store.upsert_enterprises(corpus())
    own = store.upsert_enterprises([ent("p1", "阿克苏私有客户有限公司")], tenant="akesu")
    other = store.upsert_enterprises([ent("p1", "哈密私有客户有限公司")], tenant="hami")
    assert own.ids == ["akesu:p1"] and other.ids == ["hami:p1"]

    assert store.count_enterprises() == 4  # the shared corpus only
    assert store.count_enterprises("akesu") == 5
    assert store.count_enterprises(ALL_TENANTS) == 6
    assert {e.id for e in store.iter_enterprises("akesu")} == {"e1", "e2", "e3", "e4", "akesu:p1"}
    assert store.get_enterprise("akesu:p1", tenant="akesu").tenant == "akesu"
    assert store.get_enterprise("e1", tenant="akesu").tenant is None
    with pytest.raises(UnknownEnterpriseError):
        store.get_enterprise("hami:p1", tenant="akesu")
    with pytest.raises(UnknownEnterpriseError):
        store.get_enterprise("akesu:p1")  # tenant rows are not part of the shared view
    assert store.find_enterprises("哈密私有客户", tenant="akesu") == []
    assert [e.id for e in store.find_enterprises("哈密私有客户", tenant="hami")] == ["hami:p1"]


def test_tenants_cannot_change_or_delete_the_shared_corpus(store):
    store.upsert_enterprises(corpus())
    with pytest.raises(SharedCorpusReadOnlyError, match="read-only"):
        store.delete_enterprise("e1", tenant="akesu")
    # a tenant "upserting" a shared firm gets a private copy; the shared row is untouched
    before = store.get_enterprise("e1")
    summary = store.upsert_enterprises([before.model_copy(update={"scope": "私有备注"})], tenant="akesu")
    assert summary.ids == ["akesu:e1"] and summary.inserted == 1
    assert store.get_enterprise("e1") == before


def test_a_tenants_private_row_hides_the_shared_row_of_the_same_firm(store):
    store.upsert_enterprises(corpus())
    store.upsert_enterprises([ent("mine", "嘉润资源(私有版本)", credit_code=CODE_A)], tenant="akesu")
    store.upsert_enterprises([ent("mine2", "特变电工股份有限公司", scope="私有")], tenant="akesu")
    ids = {e.id for e in store.iter_enterprises("akesu")}
    assert ids == {"akesu:mine", "akesu:mine2", "e3", "e4"}
    assert store.count_enterprises("akesu") == 4
    assert store.find_enterprises("特变电工", tenant="akesu")[0].id == "akesu:mine2"
    assert store.get_enterprise("e1", tenant="akesu").id == "e1"  # still reachable by id


def test_the_same_credit_code_in_two_tenants_is_two_private_rows(store):
    store.upsert_enterprises([ent("x", "甲公司", credit_code=CODE_A)], tenant="t1")
    store.upsert_enterprises([ent("x", "甲公司", credit_code=CODE_A)], tenant="t2")
    assert store.count_enterprises(ALL_TENANTS) == 2
    store.delete_enterprise("t1:x", tenant="t1")
    assert store.count_enterprises("t2") == 1
    with pytest.raises(UnknownEnterpriseError):
        store.delete_enterprise("t2:x", tenant="t1")


@pytest.mark.parametrize("tenant", ["", "a:b", "x" * 65, "空格 租户", "*"])
def test_bad_tenant_names_are_refused(store, tenant: str):
    with pytest.raises(InvalidRequestError, match="tenant"):
        store.upsert_enterprises([ent("a", "甲公司")], tenant=tenant)


# --- regions --------------------------------------------------------------------------------------------------------


def region(id: str = "manas", name: str = "玛纳斯县", tenant: str | None = None, **kw) -> Region:
    return Region(id=id, name=name, level=RegionLevel.COUNTY, tenant=tenant, aliases=["玛纳斯"], **kw)


def test_regions_round_trip_and_update(store):
    store.upsert_region(region(target_chains=["aluminium"]))
    assert store.get_region("manas").target_chains == ["aluminium"]
    assert store.get_region("玛纳斯").id == "manas"  # by alias
    store.upsert_region(region(target_chains=["aluminium", "photovoltaic"]))
    assert store.get_region("manas").target_chains == ["aluminium", "photovoltaic"]
    assert [r.id for r in store.list_regions()] == ["manas"]


def test_tenant_region_overrides_the_shared_one_for_that_tenant_only(store):
    store.upsert_region(region())
    store.upsert_region(region(description="akesu's own notes", tenant="akesu"))
    store.upsert_region(region(id="park1", name="私有园区", tenant="akesu"))
    assert store.get_region("manas", tenant="akesu").description == "akesu's own notes"
    assert store.get_region("manas", tenant="hami").description == ""
    assert store.get_region("manas").description == ""
    assert [r.id for r in store.list_regions("akesu")] == ["manas", "park1"]
    assert [r.id for r in store.list_regions("hami")] == ["manas"]
    with pytest.raises(UnknownRegionError):
        store.get_region("park1", tenant="hami")


def test_region_deletion_respects_ownership(store):
    store.upsert_region(region())
    store.upsert_region(region(id="park1", name="私有园区", tenant="akesu"))
    with pytest.raises(SharedCorpusReadOnlyError):
        store.delete_region("manas", tenant="akesu")
    store.delete_region("park1", tenant="akesu")
    store.delete_region("manas")
    assert store.list_regions("akesu") == []
    with pytest.raises(UnknownRegionError, match="unknown region 'manas'"):
        store.delete_region("manas")


def test_unknown_region_error_lists_the_known_ids(store):
    store.upsert_region(region())
    with pytest.raises(UnknownRegionError, match="known regions: manas"):
        store.get_region("nowhere")


# --- schema, migrations, engine ----------------------------------------------------------------------------------------


def test_opening_migrates_to_head_and_reopening_keeps_the_data(open_store):
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from matcher.store.database import alembic_config

    first = open_store()
    first.upsert_enterprises(corpus())
    with first.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
        tables = set(inspect(conn).get_table_names())
    assert current == set(ScriptDirectory.from_config(alembic_config()).get_heads())
    assert {"enterprises", "regions"} <= tables
    second = open_store()
    assert second.count_enterprises() == 4


def test_default_store_is_a_wal_sqlite_file_in_the_data_dir(tmp_path, monkeypatch):
    from matcher.settings import get_settings

    monkeypatch.setenv("CHAINMATCH_DATA_DIR", str(tmp_path / "fresh" / "dir"))
    get_settings.cache_clear()
    s = Store.from_settings()
    try:
        assert (tmp_path / "fresh" / "dir" / "chainmatch.db").exists()
        with s.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        s.close()


def test_in_memory_sqlite_store_works(tmp_path):
    s = Store("sqlite://")
    try:
        s.upsert_enterprises(corpus())
        assert s.count_enterprises() == 4
    finally:
        s.close()


def test_branches_and_firms_with_different_stock_codes_are_not_merged_by_name(store):
    firms = [
        ent("b1", "中国石油天然气股份有限公司独山子石化分公司"),
        ent("b2", "中国石油天然气股份有限公司新疆油田分公司"),
        ent("s1", "青海盐湖工业集团股份有限公司", province="青海", stock_code="000578"),
        ent("s2", "青海盐湖工业股份有限公司", province="青海", stock_code="000792"),
    ]
    summary = store.upsert_enterprises(firms)
    assert summary.inserted == 4
    assert store.upsert_enterprises(firms).unchanged == 4
