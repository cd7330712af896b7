"""Faults with real processes: SIGKILL of ``chainmatch serve`` during bulk upserts over HTTP, and SIGKILL of
``chainmatch index build`` while it saves the index — on a SQLite file and on PostgreSQL.

After the server is killed and restarted, every upsert that was acknowledged (2xx) is present, no request's
batch is half-written (each is all-or-nothing), ``chainmatch doctor`` reports what the kill left out of the
saved index, and the restarted server catches the saved index up by itself (``doctor --repair`` does the same
from the CLI: tests/test_doctor.py). After the index build is killed mid-save, the previous index still loads with verified checksums and ``chainmatch
doctor`` finds it in step with the store.
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from index.lexical import LexicalIndex
from index.vector import VectorIndex
from matcher.indexing.build import build_index, index_dirs
from matcher.indexing.doctor import check
from matcher.records import Enterprise, Product
from matcher.settings import Settings, get_settings
from matcher.store.demo import load_demo_enterprises
from matcher.store.store import Store
from models.embedders import get_embedder
from service.api.security import create_api_key
from service.cli import app as cli
from service.cli.bench_load import REPO, LocalServer

pytest_plugins = ["store_backends"]  # store / store_url / open_store on SQLite and PostgreSQL

TENANT = "crm"
N_SYNTHETIC = 2500
JSON_BATCH = 250
CSV_ROWS = 600  # an upload is mapped and written inside one transaction
_NAME = re.compile(r"^容错(?P<batch>[a-z]\d+b\d+)号\d+有限公司$")


def _settings(root: Path, url: str) -> Settings:
    s = Settings(data_dir=root / "data", cache_dir=root / "cache", embedder="hash", database_url=url)
    s.ensure_dirs()
    return s


def _cli_env(settings: Settings) -> dict[str, str]:
    env = {
        **os.environ,
        "CHAINMATCH_DATA_DIR": str(settings.data_dir),
        "CHAINMATCH_CACHE_DIR": str(settings.cache_dir),
        "CHAINMATCH_EMBEDDER": "hash",
        "CHAINMATCH_DATABASE_URL": str(settings.database_url),
        "PYTHONPATH": str(REPO),
    }
    return env


@pytest.fixture
def doctor(store_url: str, monkeypatch: pytest.MonkeyPatch):
    """Runs ``chainmatch doctor ARGS`` (in process) against the test's store and data dir."""
    monkeypatch.setenv("CHAINMATCH_DATABASE_URL", store_url)

    def run(*args: str):
        get_settings.cache_clear()
        return CliRunner().invoke(cli, ["doctor", *args])

    return run


# --- (a) the server killed during bulk upserts --------------------------------------------------------------


def _firm(batch: str, i: int) -> dict:
    return {
        "id": f"{batch}-{i}",
        "name": f"容错{batch}号{i}有限公司",
        "province": "江苏",
        "city": "常州市",
        "products": [{"name": "6063铝棒", "share": 0.7}, {"name": "铝型材", "share": 0.2}],
        "scope": "有色金属合金制造；有色金属压延加工；金属材料销售",
    }


def _csv_body(batch: str, rows: int) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["企业名称", "所属省份", "所属城市", "主营产品", "经营范围"])
    for i in range(rows):
        f = _firm(batch, i)
        w.writerow([f["name"], f["province"], f["city"], "6063铝棒:0.7;铝型材:0.2", f["scope"]])
    return buf.getvalue().encode("utf-8")


class Writer(threading.Thread):
    """A CRM client posting batches back to back until told to stop; remembers which were acknowledged."""

    def __init__(self, url: str, key: str, name: str, kind: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.tag, self.kind, self.halt = url, key, name, kind, stop
        self.sent: dict[str, int] = {}  # batch -> rows sent
        self.acked: dict[str, list[str]] = {}  # batch -> stored ids the server reported
        self.failed: dict[str, str] = {}  # batch -> why (connection dropped, …)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"X-API-Key": self.key}, timeout=120) as http:
            n = 0
            while not self.halt.is_set():
                batch = f"{self.tag}b{n}"
                n += 1
                try:
                    if self.kind == "json":
                        self.sent[batch] = JSON_BATCH
                        resp = http.post("/v1/enterprises", json=[_firm(batch, i) for i in range(JSON_BATCH)])
                        ids = resp.json()["ids"] if resp.status_code == 200 else None
                    else:
                        self.sent[batch] = CSV_ROWS
                        files = {"file": (f"{batch}.csv", _csv_body(batch, CSV_ROWS), "text/csv")}
                        resp = http.post("/v1/enterprises/import", files=files, data={"atomic": "true"})
                        body = resp.json() if resp.status_code == 200 else {}
                        ids = body.get("changed_ids") if body.get("committed") else None
                except httpx.HTTPError as exc:
                    self.failed[batch] = type(exc).__name__
                    return
                if ids is None:
                    self.failed[batch] = f"HTTP {resp.status_code}: {resp.text[:200]}"
                    return
                self.acked[batch] = ids


def _rows_by_batch(store: Store) -> tuple[Counter, set[str]]:
    counts: Counter = Counter()
    ids: set[str] = set()
    for e in store.iter_enterprises(TENANT):
        m = _NAME.match(e.name)
        if m:
            counts[m.group("batch")] += 1
            ids.add(e.id)
    return counts, ids


def _kill_during_bulk_upserts(root: Path, url: str, doctor) -> None:
    settings = _settings(root, url)
    with Store(url) as store:
        store.upsert_enterprises(load_demo_enterprises()[:60])
        build_index(store, get_embedder("hash"), settings)
        _, key = create_api_key(store, TENANT, "fault test")

    # the first server never gets to save API writes into the persisted index (killed long before an hour)
    never = {"CHAINMATCH_INDEX_PERSIST_INTERVAL_S": "3600"}
    server = LocalServer(settings.data_dir, settings.cache_dir, database_url=url, env=never)
    server.start()
    halt = threading.Event()
    writers = [Writer(server.url, key, f"j{i}", "json", halt) for i in range(2)]
    writers.append(Writer(server.url, key, "c0", "csv", halt))
    try:
        for w in writers:
            w.start()
        deadline = time.monotonic() + 60
        while sum(len(w.acked) for w in writers) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the writers have their next batches in flight
        server.kill()
    finally:
        halt.set()
        server.stop()
    for w in writers:
        w.join(30)
    acked = {b: ids for w in writers for b, ids in w.acked.items()}
    sent = {b: n for w in writers for b, n in w.sent.items()}
    assert len(acked) >= 2, [server.log_tail()]
    assert any(w.failed for w in writers), "the kill interrupted no request"

    with Store(url) as store:
        counts, stored_ids = _rows_by_batch(store)
        for batch, ids in acked.items():
            assert counts[batch] == sent[batch] and set(ids) <= stored_ids, (
                f"acknowledged batch {batch} lost rows"
            )
        for batch, n in counts.items():
            assert n == sent[batch], f"batch {batch} is half-written: {n} of {sent[batch]} rows"
        drift = check(store, settings)
        assert drift.drift and drift.vector.missing  # acknowledged in the store, never saved in the index
    reported = doctor()
    assert reported.exit_code == 1 and "missing" in reported.output, reported.output

    server = LocalServer(settings.data_dir, settings.cache_dir, database_url=url)
    with server:  # restarts on the crashed store (SQLite WAL recovery / PostgreSQL crash of a client)
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=60) as http:
            for ids in acked.values():
                for eid in (ids[0], ids[-1]):
                    assert http.get(f"/v1/enterprises/{eid}").status_code == 200, eid
            # served = stored: the restarted server's index holds every row of every tenant before it says ready
            ready = http.get("/readyz").json()
            with Store(url) as store:
                assert ready["index_size"] == store.count_enterprises("*"), ready
            assert ready["status"] == "ready" and ready["lag"]["rows"] == 0, ready
        # the restarted server catches the saved index up with the store by itself
        deadline = time.monotonic() + 120
        with Store(url) as store:
            while (report := check(store, settings)).drift and time.monotonic() < deadline:
                time.sleep(0.5)
        assert not report.drift, report.problems()
    final = doctor()
    assert final.exit_code == 0 and "OK" in final.output, final.output
    with Store(url) as store:
        assert check(store, settings).vector.count == store.count_enterprises("*")


def test_server_killed_during_bulk_upserts_keeps_acknowledged_batches_whole(
    tmp_path: Path,
    store_url: str,
    doctor,
) -> None:
    _kill_during_bulk_upserts(tmp_path, store_url, doctor)


# --- (b) an index build killed while it saves ---------------------------------------------------------------


def _synthetic_firms(n: int) -> list[Enterprise]:
    trades = [("铝业", "电解铝"), ("硅业", "多晶硅"), ("电气", "变压器"), ("化工", "PVC"), ("纺织", "棉纱")]
    out = []
    for i in range(n):
        trade, product = trades[i % len(trades)]
        out.append(
            Enterprise(
                id=f"syn-{i:06d}",
                name=f"合成{trade}{i:06d}有限公司",
                province="新疆",
                products=[Product(name=product, share=0.8)],
                scope=f"{product}生产销售",
            )
        )
    return out


def _kill_when_saving(proc: subprocess.Popen, folder: Path, timeout: float = 240) -> bool:
    """SIGKILL ``proc`` as soon as a save's temporary folder appears under ``folder`` (False if none did)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if any(name.startswith(".tmp-") for name in os.listdir(folder)):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(30)
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.0005)
    return False


def test_index_build_killed_mid_save_leaves_the_previous_index_in_step_with_the_store(
    tmp_path: Path,
    store_url: str,
    doctor,
) -> None:
    settings = _settings(tmp_path, store_url)
    with Store(store_url) as store:
        store.upsert_enterprises(_synthetic_firms(N_SYNTHETIC))
        build_index(store, get_embedder("hash"), settings)
    vdir, ldir = index_dirs(settings)
    for folder in (vdir, ldir):  # killed inside the vector save, then inside the lexical save
        versions = {p.name for p in folder.iterdir() if p.name.startswith("v")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "--quiet", "index", "build", "--json"],
            cwd=REPO,
            env=_cli_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if not _kill_when_saving(proc, folder):
            pytest.fail(
                f"the build ended before its {folder.name} save could be interrupted: {proc.communicate()}"
            )
        assert proc.returncode == -signal.SIGKILL
        assert any(
            p.name.startswith(".tmp-") for p in folder.iterdir()
        )  # the dead writer's half-written version
        assert {p.name for p in folder.iterdir() if p.name.startswith("v")} == versions

        vindex = VectorIndex.load(vdir, expected_embedder_id=get_embedder("hash").id)  # checksums verified
        lindex = LexicalIndex.load(ldir)
        assert len(vindex) == len(lindex) == N_SYNTHETIC
        with Store(store_url) as store:
            report = check(store, settings)
        assert not report.drift, report.format()
    result = doctor()
    assert result.exit_code == 0 and "OK" in result.output, result.output

    vindex.save(vdir)  # the next save clears the dead writers' leftovers
    lindex.save(ldir)
    assert not [p for p in (*vdir.iterdir(), *ldir.iterdir()) if p.name.startswith(".tmp-")]
