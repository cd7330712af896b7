"""``chainmatch bench load``: mixed traffic against a real ``chainmatch serve`` on 127.0.0.1.

The command builds a throw-away data dir, imports the A-share corpus into it (``chainmatch corpus
import-a-share``), creates an API key, starts the server on a free loopback port (never another interface) and
drives it from a bounded pool of async httpx clients: 70% recommendations, 20% enterprise name searches, 10%
upserts of small batches. Each client count runs for a fixed duration and at most ``--max-requests``
requests, then the server is stopped. The result is a markdown table per operation and overall: requests,
throughput, p50 / p95 / p99 latency and errors. Upserts answer once stored (the index catches up on the
server's refresher thread); a probe outside the mix upserts one firm every 2 s with ``?wait=30`` and reports
the write → searchable lag. It is a measurement, not a CI gate. The server's model and
embedding cache live in ``--cache-dir`` (default: the user's cache), so only the first run embeds the corpus.

:class:`LocalServer` (a ``chainmatch serve`` child process that can be stopped or SIGKILLed and restarted) is
reused by the fault tests.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

__all__ = ["MIX", "LoadResult", "LocalServer", "free_port", "markdown_table", "register", "run_load"]

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
MIX: dict[str, float] = {"recommend": 0.70, "search": 0.20, "upsert": 0.10}
"""Share of each operation in the traffic."""

_SEARCH_TERMS = [
    "特变电工",
    "隆基",
    "新疆",
    "铝业",
    "光伏",
    "化工",
    "电气",
    "天山",
    "中泰",
    "硅业",
    "乳业",
    "番茄",
    "000",
    "60",
    "宁德时代",
    "有色",
    "能源",
    "钢铁",
    "纺织",
    "科技",
]
_PRODUCTS = [
    "铝棒",
    "电解铝",
    "多晶硅",
    "光伏组件",
    "变压器",
    "PVC",
    "烧碱",
    "棉纱",
    "番茄酱",
    "锂电池",
    "逆变器",
    "电线电缆",
]


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class ServerStartError(RuntimeError):
    """``chainmatch serve`` exited or never became ready (the log tail is in the message)."""


class LocalServer:
    """``chainmatch serve`` in a child process, bound to 127.0.0.1 on a free port.

    Args:
        data_dir: ``CHAINMATCH_DATA_DIR`` of the server.
        cache_dir: ``CHAINMATCH_CACHE_DIR``.
        database_url: ``CHAINMATCH_DATABASE_URL`` (default: SQLite in ``data_dir``).
        embedder: ``CHAINMATCH_EMBEDDER``.
        env: Further environment variables (e.g. ``CHAINMATCH_MAX_UPLOAD_MB``).
        log: Where the server's stdout and stderr go (default: ``data_dir/../serve-<port>.log``).

    Example:
        >>> with LocalServer(tmp / "data", tmp / "cache") as srv:   # doctest: +SKIP
        ...     httpx.get(f"{srv.url}/readyz")
    """

    def __init__(
        self,
        data_dir: Path,
        cache_dir: Path,
        *,
        database_url: str | None = None,
        embedder: str = "hash",
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        workers: int = 1,
    ) -> None:
        self.data_dir, self.cache_dir = Path(data_dir), Path(cache_dir)
        self.database_url = database_url
        self.embedder = embedder
        self.extra_env = dict(env or {})
        self.log_path = log
        self.workers = workers
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def environment(self) -> dict[str, str]:
        """The child's environment: this one plus the server's settings."""
        env = {**os.environ, **self.extra_env}
        env.update(
            CHAINMATCH_DATA_DIR=str(self.data_dir),
            CHAINMATCH_CACHE_DIR=str(self.cache_dir),
            CHAINMATCH_EMBEDDER=self.embedder,
            CHAINMATCH_HOST=LOOPBACK,
            PYTHONUNBUFFERED="1",
        )
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        if self.database_url:
            env["CHAINMATCH_DATABASE_URL"] = self.database_url
        else:
            env.pop("CHAINMATCH_DATABASE_URL", None)
        return env

    def start(self, timeout: float = 300.0) -> LocalServer:
        """Start on a fresh free port and wait until ``/readyz`` answers 200.

        Raises:
            ServerStartError: the process exited, or was not ready within ``timeout`` seconds.
        """
        import httpx

        self.port = free_port()
        log = self.log_path or self.data_dir.parent / f"serve-{self.port}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log
        cmd = [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--no-demo-key",
            "--plain-logs",
            "--workers",
            str(self.workers),
        ]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.environment(), stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def wait_warm(self, timeout: float = 600.0) -> dict[str, Any]:
        """Wait until the server's start-up warm-up (gap index, query cache) is done; returns ``/readyz``.

        With several workers a probe reaches any one of them: warm-up counts as done after ``3 × workers``
        answers in a row say so (each answer comes from a new connection)."""
        import httpx

        deadline = time.monotonic() + timeout
        done_in_a_row = 0
        while True:
            resp = httpx.get(f"{self.url}/readyz", timeout=5)
            body = resp.json()
            warm = resp.status_code == 200 and body.get("checks", {}).get("warmup") != "running"
            done_in_a_row = done_in_a_row + 1 if warm else 0
            if done_in_a_row >= 3 * self.workers or time.monotonic() > deadline:
                return body
            time.sleep(0.2 if warm else 0.5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self._log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except (OSError, AttributeError):
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL the server (no shutdown handlers run) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (graceful shutdown), SIGKILL after ``timeout`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def rss_mb(self) -> float:
        """Current resident memory of the server: its process and its worker processes (MB)."""

        def rss(pid: int) -> float:
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            return int(line.split()[1]) / 1024
            except OSError:
                pass
            return 0.0

        def children(pid: int) -> list[int]:
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as fh:
                    return [int(c) for c in fh.read().split()]
            except OSError:
                return []

        todo, total = [self.pid], 0.0
        while todo:
            pid = todo.pop()
            total += rss(pid)
            todo += children(pid)
        return total

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- load ---------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """Latencies (ms) and errors per operation of one run."""

    clients: int
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in MIX})
    errors: dict[str, int] = field(default_factory=lambda: {op: 0 for op in MIX})
    statuses: dict[str, int] = field(default_factory=dict)
    index_lag: list[float] = field(default_factory=list)
    """ms from sending an upsert until the index serves it (a probe with ``?wait=30``, outside the mix)."""

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.errors.values())


def _gaps(catalogue: Any, regions: list[Any]) -> list[dict[str, str]]:
    """(region, chain, link) triples of the demo regions' diagnosed gaps: the requests staff actually make."""
    from matcher.knowledge.gaps import diagnose
    from matcher.knowledge.regions import RegionBook

    book = RegionBook(regions)
    out = []
    for region in regions:
        try:
            for g in diagnose(region, catalogue, book=book).gaps[:8]:
                out.append({"region": region.id, "chain": g.chain_id, "link": g.link_id})
        except Exception:  # a region without diagnosable gaps is simply not used
            continue
    return out


async def _client(
    http: Any,
    rng: random.Random,
    gaps: list[dict[str, str]],
    deadline: float,
    budget: list[int],
    result: LoadResult,
    worker: int,
    mix: dict[str, float],
) -> None:
    import httpx

    n = 0
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        n += 1
        r = rng.random()
        if r < mix["recommend"]:
            op = "recommend"
            req = http.post("/v1/recommendations", json={**rng.choice(gaps), "k": 10})
        elif r < mix["recommend"] + mix["search"]:
            op = "search"
            req = http.get("/v1/enterprises", params={"q": rng.choice(_SEARCH_TERMS), "limit": 20})
        else:
            op = "upsert"
            batch = [
                {
                    "id": f"load-{worker}-{n}-{i}",
                    "name": f"压测{worker}号{n}批{i}有限公司",
                    "province": "新疆",
                    "city": "昌吉回族自治州",
                    "products": [{"name": rng.choice(_PRODUCTS), "share": 0.8}],
                    "scope": "有色金属压延加工；光伏设备及元器件制造",
                }
                for i in range(rng.randint(1, 5))
            ]
            req = http.post("/v1/enterprises", json=batch)
        t0 = time.perf_counter()
        try:
            resp = await req
            ms = (time.perf_counter() - t0) * 1000
            result.statuses[str(resp.status_code)] = result.statuses.get(str(resp.status_code), 0) + 1
            if resp.status_code >= 400:
                result.errors[op] += 1
            else:
                result.latencies[op].append(ms)
        except httpx.HTTPError as exc:
            result.errors[op] += 1
            result.statuses[type(exc).__name__] = result.statuses.get(type(exc).__name__, 0) + 1


async def _index_lag_probe(http: Any, deadline: float, result: LoadResult, every: float = 2.0) -> None:
    """Every ``every`` seconds upsert one firm with ``?wait=30``: its latency is the write → searchable lag."""
    import httpx

    n = 0
    while time.monotonic() + every < deadline:
        await asyncio.sleep(every)
        n += 1
        firm = {"id": f"lag-probe-{n}", "name": f"时延探针{n}号铝棒有限公司", "province": "江苏",
                "products": [{"name": "铝棒", "share": 0.9}]}  # fmt: skip
        t0 = time.perf_counter()
        try:
            resp = await http.post("/v1/enterprises", json=[firm], params={"wait": 30})
        except httpx.HTTPError:
            continue
        if resp.status_code == 200 and resp.json().get("index") == "updated":
            result.index_lag.append((time.perf_counter() - t0) * 1000)


async def _drive(
    url: str,
    key: str,
    clients: int,
    duration: float,
    max_requests: int,
    gaps: list[dict[str, str]],
    seed: int,
    mix: dict[str, float],
) -> LoadResult:
    import httpx

    result = LoadResult(clients=clients, seconds=0.0)
    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)  # + the probe
    budget = [max_requests]
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": key}, limits=limits, timeout=120
    ) as http:
        t0 = time.monotonic()
        deadline = t0 + duration
        await asyncio.gather(
            _index_lag_probe(http, deadline, result),
            *(
                _client(http, random.Random(seed * 1000 + i), gaps, deadline, budget, result, i, mix)
                for i in range(clients)
            ),
        )
        result.seconds = time.monotonic() - t0
    return result


def run_load(
    url: str,
    key: str,
    clients: int,
    duration: float,
    max_requests: int,
    gaps: list[dict[str, str]],
    seed: int = 0,
    mix: dict[str, float] | None = None,
) -> LoadResult:
    """Drive ``clients`` concurrent clients for ``duration`` seconds or ``max_requests`` requests in all.

    ``mix`` gives each operation's share (default :data:`MIX`: 70% recommend, 20% search, 10% upsert).
    """
    return asyncio.run(_drive(url, key, clients, duration, max_requests, gaps, seed, mix or MIX))


def parse_mix(text: str) -> dict[str, float]:
    """``"70,20,10"`` → shares of recommend, search, upsert (normalised to sum 1)."""
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != len(MIX) or min(parts) < 0 or sum(parts) <= 0:
        raise ValueError(
            f"--mix expects {len(MIX)} non-negative numbers (recommend,search,upsert), received {text!r}"
        )
    return {op: x / sum(parts) for op, x in zip(MIX, parts, strict=True)}


def _pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def markdown_table(results: list[LoadResult]) -> str:
    """One row per (clients, operation) and an overall row per client count."""
    lines = [
        "| clients | operation | requests | throughput req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        every = [x for v in r.latencies.values() for x in v]
        rows = [(op, r.latencies[op], r.errors[op]) for op in MIX] + [
            ("**all**", every, sum(r.errors.values()))
        ]
        for op, lat, err in rows:
            n = len(lat) + err
            lines.append(
                f"| {r.clients} | {op} | {n:,} | {n / r.seconds:,.1f} | {_pct(lat, 50):.0f} | "
                f"{_pct(lat, 95):.0f} | "
                f"{_pct(lat, 99):.0f} | {err} |"
            )
        if r.index_lag:
            lag = r.index_lag
            lines.append(
                f"| {r.clients} | index lag (probe, not in all) | {len(lag)} | – | {_pct(lag, 50):.0f} | "
                f"{_pct(lag, 95):.0f} | {_pct(lag, 99):.0f} | – |"
            )
    return "\n".join(lines)


def _prepare(root: Path, data_dir: Path, embedder: str, cache_dir: Path) -> str:
    """A fresh store under ``root`` holding the A-share corpus, and an API key for it.

    ``cache_dir`` holds the converted e5 model and the embedding cache: with the user's cache dir (default)
    only the first run embeds the whole corpus at start-up.
    """
    from matcher.settings import Settings
    from matcher.store.store import Store
    from service.api.security import create_api_key

    env = {**os.environ, "CHAINMATCH_EMBEDDER": embedder, "PYTHONPATH": str(REPO)}
    env.update(CHAINMATCH_DATA_DIR=str(root / "data"), CHAINMATCH_CACHE_DIR=str(cache_dir))
    env.pop("CHAINMATCH_DATABASE_URL", None)
    cmd = [
        sys.executable,
        "-m",
        "service.cli",
        "--quiet",
        "corpus",
        "import-a-share",
        "--data-dir",
        str(data_dir),
    ]
    subprocess.run(cmd, cwd=REPO, env=env, check=True)
    settings = Settings(data_dir=root / "data", cache_dir=cache_dir, embedder=embedder)
    with Store.from_settings(settings) as store:
        _, key = create_api_key(store, "loadtest", "chainmatch bench load")
    return key


def register(app: typer.Typer) -> None:
    """Add ``bench load`` to the CLI."""
    from service.cli.common import group, handle_errors

    bench_app = group(
        app, "bench", "Benchmarks (markdown tables; long-running, not part of the test suite)."
    )

    @bench_app.command("load")
    @handle_errors
    def bench_load(
        clients: str = typer.Option(
            "10,50", "--clients", help="Concurrent clients, comma-separated; one run each."
        ),
        duration: float = typer.Option(30.0, "--duration", min=1.0, max=3600.0, help="Seconds per run."),
        max_requests: int = typer.Option(20_000, "--max-requests", min=1, help="Request cap per run."),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="shared/data (default: settings)."),  # noqa: B008
        embedder: str | None = typer.Option(None, "--embedder", help="Server embedder (default: settings)."),
        cache_dir: Path | None = typer.Option(  # noqa: B008
            None, "--cache-dir", help="Model + embedding cache of the server (default: settings.cache_dir)."
        ),
        warmup: float = typer.Option(5.0, "--warmup", min=0.0, help="Seconds of unmeasured traffic first."),
        seed: int = typer.Option(0, "--seed"),
        mix: str = typer.Option("70,20,10", "--mix", help="Shares of recommend,search,upsert."),
        workers: int = typer.Option(1, "--workers", min=1, max=16, help="Server processes (serve --workers)."),
    ) -> None:
        """Start a loopback server with the A-share corpus and measure recommend / search / upsert latency."""

        from matcher.knowledge.catalogue import default_catalogue
        from matcher.knowledge.regions import default_regions
        from matcher.settings import get_settings

        settings = get_settings()
        data_dir = data_dir or settings.shared_data_dir
        embedder = embedder or settings.embedder
        cache_dir = cache_dir or settings.cache_dir
        try:
            shares = parse_mix(mix)
        except ValueError as exc:
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        counts = [int(c) for c in clients.split(",") if c.strip()]
        if not counts or min(counts) < 1 or max(counts) > 1000:
            typer.echo(f"错误 error: --clients expects 1-1000 per run, received {clients!r}", err=True)
            raise typer.Exit(code=2)
        gaps = _gaps(default_catalogue(), default_regions())
        with tempfile.TemporaryDirectory(prefix="chainmatch-load-") as tmp:
            root = Path(tmp)
            t0 = time.perf_counter()
            key = _prepare(root, data_dir, embedder, cache_dir)
            typer.echo(
                f"A-share corpus imported in {time.perf_counter() - t0:.0f} s; starting the server …",
                err=True,
            )
            server = LocalServer(
                root / "data",
                cache_dir,
                embedder=embedder,
                env={"CHAINMATCH_RATE_LIMIT_PER_MINUTE": "100000000"},
                workers=workers,
            )
            t0 = time.perf_counter()
            server.start(timeout=1800)  # the first start embeds the whole corpus
            try:
                ready = server.wait_warm()
                typer.echo(
                    f"server ready in {time.perf_counter() - t0:.0f} s at {server.url}: {ready}", err=True
                )
                if warmup:
                    run_load(server.url, key, max(counts), warmup, max_requests, gaps, seed + 999, shares)
                results = []
                for n in counts:
                    load = os.getloadavg()[0]
                    res = run_load(server.url, key, n, duration, max_requests, gaps, seed, shares)
                    typer.echo(
                        f"{n} clients: {res.requests} requests in {res.seconds:.1f} s (load avg before "
                        f"{load:.2f}); statuses {res.statuses}",
                        err=True,
                    )
                    results.append(res)
                rss = server.rss_mb()
            finally:
                server.stop()
        typer.echo(
            f"embedder {embedder}; mix {mix} (recommend,search,upsert); {workers} server process(es); "
            f"server RSS {rss:.0f} MB; "
            f"{os.cpu_count()} CPUs; "
            f"load average now {os.getloadavg()[0]:.2f}\n"
        )
        typer.echo(markdown_table(results))
