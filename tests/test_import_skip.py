"""A re-import skips unchanged rows by their source hash (#17): counted unchanged, never rebuilt or rewritten, no
change-feed entries; any change to the row, the file's columns or name, the tenant, or the stored profile makes
the row go the full way again. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from matcher.store.db_models import EnterpriseRow
from matcher.store.importer import import_file
from matcher.store.importer.rows import _RowBuilder
from test_importer import CODE_A, CODE_C, good_rows, row, write_csv

pytest_plugins = ["store_backends"]


def _stored(store) -> dict[str, tuple]:
    with store.transaction(write=False) as session:
        rows = session.execute(select(EnterpriseRow.id, EnterpriseRow.updated_at, EnterpriseRow.content_hash,
                                      EnterpriseRow.source_hash))  # fmt: skip
        return {r.id: (r.updated_at, r.content_hash, r.source_hash) for r in rows}


def test_reimport_skips_unchanged_rows_without_building_or_writing_them(store, tmp_path, monkeypatch):
    path = write_csv(tmp_path / "seed.csv", good_rows())
    first = import_file(path, store)
    assert (first.inserted, first.skipped) == (3, 0)
    before, seq = _stored(store), store.last_change_seq()
    assert all(h for _, _, h in before.values())  # every row written alone carries its row's hash

    def no_build(*_a, **_k):
        raise AssertionError("an unchanged row was rebuilt")

    monkeypatch.setattr(_RowBuilder, "build", no_build)
    again = import_file(path, store)
    assert (again.inserted, again.updated, again.unchanged, again.skipped) == (0, 0, 3, 3)
    assert "3 skipped by hash" in again.summary()
    assert again.changed_ids == [] and store.last_change_seq() == seq  # no change-feed rows
    assert _stored(store) == before  # not rewritten: same updated_at, content and source hashes


def test_a_changed_row_is_rebuilt_and_the_others_skipped(store, tmp_path):
    import_file(write_csv(tmp_path / "seed.csv", good_rows()), store)
    rows = good_rows()
    rows[0] = row("新疆嘉润资源控股有限公司", CODE_A, 主营产品="电解铝:0.8;铝棒:0.1", 曾用名="嘉润资源")
    changed = import_file(write_csv(tmp_path / "seed.csv", rows), store)
    assert (changed.updated, changed.unchanged, changed.skipped) == (1, 2, 2)
    assert changed.changed_ids == [CODE_A]
    assert store.get_enterprise(CODE_A).products[0].share == 0.8


def test_other_file_name_tenant_or_a_later_write_is_not_skipped(store, tmp_path):
    import_file(write_csv(tmp_path / "seed.csv", good_rows()), store)
    renamed = import_file(write_csv(tmp_path / "other.csv", good_rows()), store)  # source label differs
    assert renamed.skipped == 0 and renamed.updated == 3
    tenant = import_file(write_csv(tmp_path / "other.csv", good_rows()), store, tenant="t1")
    assert tenant.skipped == 0 and tenant.inserted == 3
    store.set_links(CODE_C, [])  # another writer changes a profile: its hash is cleared
    again = import_file(write_csv(tmp_path / "other.csv", good_rows()), store)
    assert (again.skipped, again.updated) == (2, 1)
    assert {m.link_id for m in store.get_enterprise(CODE_C).links}  # the import's links are back


def test_in_file_duplicates_of_a_skipped_row_are_still_found(store, tmp_path):
    import_file(write_csv(tmp_path / "seed.csv", good_rows()), store, atomic=False)
    rows = [*good_rows(), good_rows()[0], row("新疆嘉润资源控股有限公司", CODE_A, 主营产品="铝箔")]
    report = import_file(write_csv(tmp_path / "seed.csv", rows), store, atomic=False)
    assert (report.skipped, report.duplicates, report.rejected) == (3, 1, 1)
    assert "duplicate of row 2" in report.rejects[0].reason and report.rejects[0].row == 6


def test_rows_with_warnings_are_always_rebuilt_so_their_warnings_are_reported(store, tmp_path):
    rows = [row("新疆嘉润资源控股有限公司", CODE_A, 成立日期="去年")]
    path = write_csv(tmp_path / "warn.csv", rows)
    assert len(import_file(path, store).warnings) == 1
    again = import_file(path, store)
    assert (again.skipped, again.unchanged, len(again.warnings)) == (0, 1, 1)


def test_skip_can_be_turned_off(store, tmp_path):
    path = write_csv(tmp_path / "seed.csv", good_rows())
    import_file(path, store)
    full = import_file(path, store, skip_unchanged=False)
    assert (full.unchanged, full.skipped) == (3, 0)


def test_migration_0006_upgrades_a_filled_database_and_old_rows_are_confirmed_once(store_url, tmp_path):
    from alembic import command

    from matcher.store.database import alembic_config
    from matcher.store.store import Store

    path = write_csv(tmp_path / "seed.csv", good_rows())
    with Store(store_url) as store:
        import_file(path, store)
    command.downgrade(alembic_config(store_url), "0005")  # a database from before the column
    with Store(store_url) as store:  # opening upgrades it
        assert {h for _, _, h in _stored(store).values()} == {None}
        seq = store.last_change_seq()
        confirmed = import_file(path, store)  # full path: unchanged, hashes stamped, nothing logged
        assert (confirmed.unchanged, confirmed.skipped, store.last_change_seq()) == (3, 0, seq)
        assert (import_file(path, store).skipped, store.last_change_seq()) == (3, seq)
