"""A killed `chainmatch import` leaves no process behind: its forked mapping worker dies with it."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_killed_import_leaves_no_mapping_worker(tmp_path: Path):
    big = tmp_path / "big.csv"
    with big.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["企业名称", "省份", "主营产品", "经营范围"])
        for i in range(60_000):
            w.writerow([f"进程测试{i}号有限公司", "江苏", "铝棒、铝型材", "铝合金制品的生产和销售"])
    env = {**os.environ, "CHAINMATCH_DATA_DIR": str(tmp_path / "data"),
           "CHAINMATCH_CACHE_DIR": str(tmp_path / "cache"), "CHAINMATCH_EMBEDDER": "hash"}
    env.pop("CHAINMATCH_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "import", str(big)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.time() + 120
    while time.time() < deadline and not workers and proc.poll() is None:
        workers = _children(proc.pid)
        time.sleep(0.05)
    assert workers, "the import never started its mapping worker"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), f"mapping worker(s) {workers} outlived the killed import"
