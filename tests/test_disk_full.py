"""Disk full during an import: one line on stderr and exit code 2 (no traceback), and the store keeps what it held.

The file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes the database file unable to grow — the same error path
as a full disk (SQLite reports "database or disk is full")."""

from __future__ import annotations

import csv
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from matcher.settings import Settings
from matcher.store import ALL_TENANTS, Store


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_import_on_a_full_disk_ends_in_one_line_and_exit_2(tmp_path: Path):
    data = tmp_path / "data"
    env = {**os.environ, "CHAINMATCH_DATA_DIR": str(data), "CHAINMATCH_CACHE_DIR": str(tmp_path / "cache"),
           "CHAINMATCH_EMBEDDER": "hash", "CHAINMATCH_DEMO_ON_EMPTY": "false"}
    env.pop("CHAINMATCH_DATABASE_URL", None)
    small = tmp_path / "small.csv"
    small.write_text("企业名称,省份,主营产品\n甲铝业有限公司,新疆,铝棒\n", encoding="utf-8")
    first = subprocess.run([sys.executable, "-m", "service.cli", "import", str(small)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    big = tmp_path / "big.csv"
    with big.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["企业名称", "省份", "主营产品", "经营范围"])
        for i in range(20_000):
            w.writerow([f"满盘测试{i}号有限公司", "新疆", "铝棒", "铝合金制品的生产和销售" * 20])
    db = data / "chainmatch.db"
    limit = sum(p.stat().st_size for p in data.glob("chainmatch.db*")) + 2_000_000
    done = subprocess.run([sys.executable, "-m", "service.cli", "import", str(big)], env=env,
                          capture_output=True, text=True, timeout=600, preexec_fn=_limit_file_size(limit))
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("错误")]
    assert len(lines) == 1 and "磁盘" in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    store = Store.from_settings(Settings(data_dir=data, cache_dir=tmp_path / "cache", embedder="hash"))
    try:
        names = {e.name for e in store.iter_enterprises(ALL_TENANTS)}
    finally:
        store.close()
    assert "甲铝业有限公司" in names and not any(n.startswith("满盘测试") for n in names)
    assert db.exists()
