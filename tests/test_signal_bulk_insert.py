"""The signals importer's bulk insert (#19): on SQLite it goes straight through the driver; the stored rows must be
exactly those the SQLAlchemy Core path stores (types, date and JSON formats), and read back the same."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import insert

import matcher.store.signals as signals
from matcher.store.signal_import import import_signals
from matcher.store.store import Store
from service.cli.signals import write_synthetic_signals

COLUMNS = ("id, tenant, enterprise_id, firm, group_name, day, kind, product, link_id, province, region, amount, "
           "confidence, origin, sources, typeof(day), typeof(updated_at), length(updated_at)")  # fmt: skip


def _import(db: Path, path: Path) -> tuple[list[tuple], list]:
    with Store(f"sqlite:///{db}") as store:
        report = import_signals(store, path)
        assert report.inserted > 1000
        events = signals.signals_of(store)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT {COLUMNS} FROM signals ORDER BY id").fetchall()
    return rows, [e.model_dump() for e in events]


def test_driver_insert_stores_what_the_core_insert_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_synthetic_signals(tmp_path / "s.jsonl", 1500, 300)
    fast = _import(tmp_path / "fast.db", path)

    def core(session, rows):  # the generic path every other dialect takes
        for i in range(0, len(rows), 5000):
            session.execute(insert(signals.SignalRow.__table__), rows[i : i + 5000])

    monkeypatch.setattr(signals, "_insert_rows", core)
    assert _import(tmp_path / "core.db", path) == fast
