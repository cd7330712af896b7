"""The name index stays in step with the rows on both stores: renames, deletes, aliases, 1- and 2-character
queries, ASCII punctuation, and migration 0005 filling it from rows stored before it existed."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from store_backends import open_store, store, store_url  # noqa: F401  (fixtures)

from matcher.records import Enterprise
from matcher.store.database import alembic_config, upgrade
from matcher.store.name_index import SEARCH_TABLE, field_grams, query_grams
from matcher.store.store import Store


def _entries(store: Store) -> int:  # noqa: F811
    with store.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {SEARCH_TABLE}")).scalar_one()


def _ids(store: Store, q: str, tenant: str | None = None) -> list[str]:  # noqa: F811
    return [e.id for e in store.find_enterprises(q, tenant=tenant, limit=50)]


def _filler(n: int) -> list[Enterprise]:
    return [Enterprise(id=f"f{i}", name=f"填充{i:05d}号贸易有限公司", province="江苏") for i in range(n)]


def test_grams_cover_every_substring():
    name = "ABC-Tech(苏州)有限公司"
    grams = set(field_grams(name))
    for i in range(len(name)):
        for j in range(i + 1, len(name) + 1):
            assert set(query_grams(name[i:j])) <= grams, name[i:j]


def test_renames_and_deletes_keep_one_entry_per_row(store: Store):  # noqa: F811
    store.upsert_enterprises([*_filler(300), Enterprise(id="r", name="旧名字铝业有限公司", province="新疆")],
                             tenant="t")  # fmt: skip
    assert _entries(store) == 301
    assert _ids(store, "旧名字", "t") == ["t:r"]
    store.upsert_enterprises([Enterprise(id="r", name="崭新的名称铝业集团有限公司", province="新疆")], tenant="t")
    assert _entries(store) == 301  # the renamed row's old entry is gone (its length changed)
    renamed = store.find_enterprises("旧名字", tenant="t")  # found by its 曾用名 (the merge keeps the old name)
    assert [e.name for e in renamed] == ["崭新的名称铝业集团有限公司"]
    assert _ids(store, "崭新的名称", "t") == ["t:r"]
    store.delete_enterprise("t:r", tenant="t")
    assert _entries(store) == 300
    assert _ids(store, "崭新", "t") == []


def test_short_queries_aliases_and_ascii_punctuation(store: Store):  # noqa: F811
    firms = [
        *_filler(500),
        Enterprise(id="rare", name="淼鑫精密铸造有限公司", province="江苏", aliases=["淼鑫铸造厂"]),
        Enterprise(id="ascii", name="ABC-Tech(苏州)有限公司", province="江苏"),
    ]
    store.upsert_enterprises(firms, tenant="t")
    assert _ids(store, "淼鑫", "t") == ["t:rare"]  # a 2-character term (a trigram index could not)
    assert _ids(store, "鑫", "t") == ["t:rare"]  # 1 character
    assert _ids(store, "淼鑫铸造厂", "t") == ["t:rare"]  # the alias, exactly
    assert _ids(store, "铸造厂", "t") == ["t:rare"]  # and inside the alias
    assert _ids(store, "C-T", "t") == ["t:ascii"]
    assert _ids(store, "(苏州)", "t") == ["t:ascii"]
    assert _ids(store, "淼鑫", "other") == []  # another tenant's rows are not searched
    assert len(_ids(store, "贸易", "t")) == 50  # a frequent term: as many as asked for, shortest first
    assert _ids(store, "公司", "t")[:1] == ["t:rare"]


def test_migration_0005_indexes_rows_stored_before_it(store_url: str):  # noqa: F811
    with Store(store_url) as store:  # noqa: F811
        store.upsert_enterprises([Enterprise(id="old", name="迁移之前铝业有限公司", province="新疆")])
        store.upsert_enterprises(_filler(50), tenant="t")
        with store.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM enterprises")).scalar_one() == 51
        upgrade(store.engine)
        assert _entries(store) == 51
        assert _ids(store, "迁移之前") == ["old"]
        assert _ids(store, "迁移之前", "t") == ["old"]
