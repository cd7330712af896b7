"""``chainmatch bench search``: name-search latency with one big tenant (issue #18: p95 ≤ 100 ms at 1M private rows).

Loads the demo corpus as the shared rows, ``--rows`` synthetic private firms for tenant ``big`` (through
``Store.upsert_enterprises``, the product's own write path, in batches) and 200 for tenant ``small``, then times a
query mix — a frequent 2-character term, a rare one, 1- and 4-character substrings, an exact name, an alias, a miss
and odd input (NUL, LIKE wildcards) — for both tenants, and prints p50/p95/max per query with CPU-seconds.
"""

from __future__ import annotations

import logging
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import typer

from matcher.records import Enterprise, Product
from matcher.store.store import Store
from matcher.text import normalize_company_name

__all__ = ["SearchBench", "load_big_tenant", "query_mix", "run_search_bench", "synthetic_firms"]

logger = logging.getLogger(__name__)

_CITIES = ["苏州", "常州", "无锡", "南通", "昌吉", "石河子", "包头", "鄂尔多斯", "宁波", "佛山", "东莞", "合肥", "洛阳"]
_INDUSTRY = ["铝业", "新材料", "电气", "化工", "纺织", "机械制造", "光伏科技", "硅业", "铜业", "精密模具", "物流"]
_SUFFIX = ["有限公司", "股份有限公司", "有限责任公司", "集团有限公司", "科技有限公司"]
_BRAND_CHARS = "华宏通达恒泰顺盛源兴利安康嘉瑞祥丰德昌明伟新凯博宇鸿金银海天润龙腾中晶辉广益远志成"
RARE = "淼鑫"  # planted in 30 private names only: a rare 2-character term
TOTAL_BOUND_S = 30.0


def synthetic_firms(n: int, seed: int = 0) -> Iterator[Enterprise]:
    """``n`` distinct synthetic firms (city + 3-character brand + industry + legal form); one in five has a
    former name (曾用名) as alias; 30 carry the rare term :data:`RARE`."""
    rng = random.Random(seed)
    seen: set[str] = set()
    i = 0
    while i < n:
        brand = "".join(rng.choice(_BRAND_CHARS) for _ in range(3))
        if i % (max(n, 30) // 30) == 7:
            brand = RARE + brand[:1]
        name = f"{rng.choice(_CITIES)}{brand}{rng.choice(_INDUSTRY)}{rng.choice(_SUFFIX)}"
        key = normalize_company_name(name)  # one firm per key: the store would merge two
        if key in seen:
            continue
        seen.add(key)
        aliases = [f"{brand}{rng.choice(_INDUSTRY)}厂{i}"] if i % 5 == 0 else []
        yield Enterprise(id=f"s{i:07d}", name=name, province="江苏", aliases=aliases,
                         products=[Product(name="铝棒")])  # fmt: skip
        i += 1


def load_big_tenant(store: Store, rows: int, batch: int = 20_000, seed: int = 0) -> float:
    """Write ``rows`` synthetic firms for tenant ``big`` in batches; returns the seconds taken."""
    t0 = time.perf_counter()
    chunk: list[Enterprise] = []
    for e in synthetic_firms(rows, seed):
        chunk.append(e)
        if len(chunk) == batch:
            store.upsert_enterprises(chunk, tenant="big")
            chunk = []
            logger.info("loaded %d rows", store.count_enterprises("*"))
    if chunk:
        store.upsert_enterprises(chunk, tenant="big")
    if store.dialect == "postgresql":  # what autovacuum does after a bulk load: planner statistics
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE enterprises")
            conn.exec_driver_sql("ANALYZE enterprise_search")
    return time.perf_counter() - t0


def query_mix(store: Store) -> list[str]:
    """The queries timed: frequent, rare, short, long, exact, alias, a miss and odd input."""
    sample = next(iter(store.find_enterprises(RARE, tenant="big", limit=1)), None)
    exact = sample.name if sample else "不存在"
    alias = sample.aliases[0] if sample and sample.aliases else "华宏通铝业厂0"
    return ["公司", RARE, "铝", "新材料科", "有限公司", exact, alias, "不存在的企业名称", "%00", "%_%", "特变电工"]


@dataclass
class SearchBench:
    """Latencies (seconds) per (tenant, query) and the CPU-seconds the timed searches took."""

    times: dict[tuple[str, str], list[float]]
    cpu_s: float
    wall_s: float

    def all(self) -> list[float]:
        return [t for ts in self.times.values() for t in ts]

    def percentile(self, p: float) -> float:
        xs = sorted(self.all())
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

    def table(self) -> str:
        lines = ["| tenant | query | p50 ms | p95 ms | max ms |", "|---|---|---:|---:|---:|"]
        for (tenant, q), ts in self.times.items():
            xs = sorted(ts)
            p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
            lines.append(f"| {tenant} | {q!r} | {statistics.median(xs) * 1e3:.1f} | {p95 * 1e3:.1f} | "
                         f"{xs[-1] * 1e3:.1f} |")  # fmt: skip
        lines.append(f"| all | {len(self.all())} searches | {self.percentile(50) * 1e3:.1f} | "
                     f"{self.percentile(95) * 1e3:.1f} | {max(self.all()) * 1e3:.1f} |")  # fmt: skip
        return "\n".join(lines)


def run_search_bench(store: Store, repeat: int = 20, limit: int = 5) -> SearchBench:
    """Time every query of :func:`query_mix` ``repeat`` times for tenants ``big`` and ``small``."""
    queries = query_mix(store)
    times: dict[tuple[str, str], list[float]] = {}
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(repeat):
        for tenant in ("big", "small"):
            for q in queries:
                t0 = time.perf_counter()
                store.find_enterprises(q, tenant=tenant, limit=limit)
                times.setdefault((tenant, q), []).append(time.perf_counter() - t0)
    return SearchBench(times, time.process_time() - c0, time.perf_counter() - w0)


def register(app: typer.Typer) -> None:
    from service.cli.common import group, handle_errors

    bench_app = group(app, "bench", "Benchmarks that print markdown tables (not CI gates).")

    @bench_app.command("search")
    @handle_errors
    def bench_search(
        database_url: str = typer.Option(..., "--database-url", help="An empty store (SQLite file or PostgreSQL)"),
        rows: int = typer.Option(1_000_000, "--rows", min=0, help="Private rows of tenant 'big'"),
        repeat: int = typer.Option(20, "--repeat", min=1),
    ) -> None:
        """p50/p95 of name search with ROWS private rows in one tenant, on an empty store it fills."""
        from matcher.store.demo import load_demo_enterprises

        with Store(database_url) as store:
            if store.count_enterprises("*") == 0:
                store.upsert_enterprises(load_demo_enterprises())
                store.upsert_enterprises(list(synthetic_firms(200, seed=1)), tenant="small")
                c0 = time.process_time()
                took = load_big_tenant(store, rows)
                typer.echo(f"loaded {rows:,} rows in {took:.0f} s ({time.process_time() - c0:.0f} CPU-s)")
            total, shared = store.count_enterprises("*"), store.count_enterprises(None)
            typer.echo(f"{total:,} rows: {shared:,} shared, {total - shared:,} private (tenants big and small)")
            bench = run_search_bench(store, repeat)
        typer.echo(bench.table())
        typer.echo(f"{len(bench.all())} searches: {bench.wall_s:.1f} s wall, {bench.cpu_s:.1f} CPU-s")
