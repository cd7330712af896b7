"""Time ``diagnose`` per demo region against the configured store (issue #16 target: under 100 ms a region).

    CHAINMATCH_DATA_DIR=out/store python scripts/gaps_timing.py    # after `chainmatch corpus import-a-share`

Each region is diagnosed 7 times with the store's located firms (as `chainmatch gaps` does); prints JSON lines with the
median and worst wall time and the median CPU time in milliseconds.
"""

from __future__ import annotations

import json
import logging
import statistics
import time

from matcher.knowledge.gaps import diagnose
from matcher.store.workspace import Workspace


def main() -> None:
    """Diagnose every demo region 7 times and print the timings."""
    logging.basicConfig(level=logging.WARNING)
    ws = Workspace.open()
    book = ws.regions(None)
    located = ws.located_for(book, None)
    for reg in book:
        walls, cpus = [], []
        for _ in range(7):
            t0, c0 = time.perf_counter(), time.process_time()
            diagnose(reg, ws.catalogue, book=book, located=located)
            walls.append((time.perf_counter() - t0) * 1000)
            cpus.append((time.process_time() - c0) * 1000)
        print(json.dumps({"region": reg.id, "median_ms": round(statistics.median(walls), 1),
                          "max_ms": round(max(walls), 1), "cpu_median_ms": round(statistics.median(cpus), 1)}))


if __name__ == "__main__":
    main()
