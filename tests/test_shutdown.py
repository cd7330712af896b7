"""Graceful shutdown is bounded: SIGTERM while the server is still warming up (fitting a large store) ends the
process within 10 s; the store keeps everything and the next start serves it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from api_support import REPO, free_port

from matcher.records import Enterprise, Product
from matcher.store import Store


def test_sigterm_during_warm_up_exits_within_10_s(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    with Store(f"sqlite:///{data / 'chainmatch.db'}") as store:
        store.upsert_enterprises([
            Enterprise(id=f"s{i}", name=f"停机测试{i}号铝业有限公司", province="江苏",
                       products=[Product(name="铝棒", share=0.6), Product(name="铝型材", share=0.3)],
                       scope="铝合金制品的生产和销售；有色金属压延加工")
            for i in range(40_000)
        ])
    env = {**os.environ, "CHAINMATCH_DATA_DIR": str(data), "CHAINMATCH_CACHE_DIR": str(tmp_path / "cache"),
           "CHAINMATCH_EMBEDDER": "hash", "PYTHONUNBUFFERED": "1"}
    env.pop("CHAINMATCH_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(free_port())], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.time() + 120
        log: list[str] = []
        while time.time() < deadline:
            line = proc.stdout.readline()
            log.append(line)
            if "Application startup complete" in line or not line:
                break
        assert any("startup complete" in ln for ln in log), "".join(log)
        assert not any("index ready" in ln for ln in log), "the warm-up ended before the signal; grow the store"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        took = time.monotonic() - t0
        assert took <= 10, f"exited {took:.1f} s after SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
