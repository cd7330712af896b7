"""Issue #18's crash target, measured: ``kill -9`` of ``chainmatch serve`` after 25 s of bulk upserts by three
writers (two JSON, one CSV upload), on a SQLite file and on PostgreSQL. After the restart every acknowledged row is
in the store and in the served index when ``/readyz`` first answers ready, the index still holds them 30 s after the
restart (or at readiness, if later), and ``/readyz`` (polled from the moment the process starts) never answers ready
while the index is behind beyond its bound. The figures — time to ready included — are logged (shown with
``-o log_cli=true``), with how the restart got its index (``start``: restored from the periodic snapshot plus the feed, or
fitted). Not asserted: ready within 30 s (measured 6.9–10.7 s on SQLite and 11.6–16.6 s on PostgreSQL for
36–49k rows written in 25 s, docs/scale.md §3). The server's index now keeps within a few thousand rows of
these writers, but its last periodic snapshot is still some 25k rows behind at the kill, so the restart
replays them (about 0.2 CPU-ms a row): on a heavily loaded machine that could still take longer than 30 s.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
import pytest
from test_faults import Writer, _rows_by_batch, _settings

from matcher.indexing.build import build_index
from matcher.indexing.doctor import check
from matcher.store.demo import load_demo_enterprises
from matcher.store.store import Store
from models.embedders import get_embedder
from service.api.security import create_api_key
from service.cli.bench_load import LocalServer

pytest_plugins = ["store_backends"]

logger = logging.getLogger(__name__)

WRITE_S = 25.0
SERVED_WITHIN_S = 30.0
TENANT = "crm"


class ReadyzPoller(threading.Thread):
    """Polls ``/readyz`` every 0.2 s from the moment the server's port is known, keeping every answer."""

    def __init__(self, server: LocalServer) -> None:
        super().__init__(daemon=True)
        self.server, self.halt = server, threading.Event()
        self.answers: list[tuple[float, int, dict]] = []  # (seconds since start, status, body)

    def run(self) -> None:
        t0 = time.monotonic()
        with httpx.Client(timeout=5) as http:
            while not self.halt.is_set():
                if self.server.port:
                    try:
                        r = http.get(f"{self.server.url}/readyz")
                        self.answers.append((time.monotonic() - t0, r.status_code, r.json()))
                    except (httpx.HTTPError, ValueError):
                        pass
                time.sleep(0.2)


@pytest.mark.slow
def test_kill_9_under_write_load_serves_every_acknowledged_row_within_30_s(tmp_path: Path, store_url: str):
    settings = _settings(tmp_path, store_url)
    with Store(store_url) as store:
        store.upsert_enterprises(load_demo_enterprises()[:60])
        build_index(store, get_embedder("hash"), settings)
        _, key = create_api_key(store, TENANT, "kill -9 under load")

    server = LocalServer(settings.data_dir, settings.cache_dir, database_url=store_url)
    server.start()
    halt = threading.Event()
    writers = [Writer(server.url, key, f"j{i}", "json", halt) for i in range(2)]
    writers.append(Writer(server.url, key, "c0", "csv", halt))
    try:
        for w in writers:
            w.start()
        time.sleep(WRITE_S)
        server.kill()
    finally:
        halt.set()
        server.stop()
    for w in writers:
        w.join(30)
    acked = {b: ids for w in writers for b, ids in w.acked.items()}
    acked_rows = sum(len(ids) for ids in acked.values())
    assert acked_rows > 0, server.log_tail()

    with Store(store_url) as store:
        _, stored_ids = _rows_by_batch(store)
        lost = [i for ids in acked.values() for i in ids if i not in stored_ids]
        stored_total = store.count_enterprises("*")
    assert lost == [], f"{len(lost)} acknowledged rows are not in the store"

    again = LocalServer(settings.data_dir, settings.cache_dir, database_url=store_url)
    poller = ReadyzPoller(again)
    poller.start()
    t0 = time.monotonic()
    try:
        again.start()
        ready_after = time.monotonic() - t0
        time.sleep(max(0.0, SERVED_WITHIN_S - ready_after))
        final = httpx.get(f"{again.url}/readyz", timeout=10).json()
        with httpx.Client(base_url=again.url, headers={"X-API-Key": key}, timeout=60) as http:
            for ids in list(acked.values())[:: max(1, len(acked) // 20)]:
                assert http.get(f"/v1/enterprises/{ids[-1]}").status_code == 200
    finally:
        poller.halt.set()
        poller.join(5)
        again.stop()

    bound = settings.ready_max_lag_s
    ready = [(t, body) for t, status, body in poller.answers if status == 200]
    first_ready = ready[0] if ready else None
    assert first_ready is not None, poller.answers[-3:]
    behind_yet_ready = [(t, b["lag"]) for t, b in ready if b["lag"]["rows"] and b["lag"]["seconds"] > bound]
    missing_served = stored_total - final["index_size"]
    with Store(store_url) as store:
        saved = check(store, settings)
    figures = (
        f"{store_url.split(':')[0]}: {len(acked)} acknowledged batches, {acked_rows} acknowledged rows, 0 lost in "
        f"the store ({stored_total} stored); restart ready after {ready_after:.1f} s (first 200 /readyz at "
        f"{first_ready[0]:.1f} s, index_size {first_ready[1]['index_size']}, lag {first_ready[1]['lag']}, "
        f"start {first_ready[1]['start']}); "
        f"{SERVED_WITHIN_S:.0f} s after restart: index_size {final['index_size']}, missing {missing_served}; "
        f"{len(poller.answers)} /readyz answers, {len(ready)} ready, {len(behind_yet_ready)} ready while behind "
        f"beyond {bound:g} s; saved index drift: {saved.drift}"
    )
    logger.warning("kill -9 under load: %s", figures)
    assert missing_served == 0, figures
    assert first_ready[1]["index_size"] == stored_total, figures
    assert behind_yet_ready == [], figures
