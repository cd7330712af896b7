"""CLI: expansion signals — `signals import FILE`, `signals show ENTERPRISE`, `signals bench`."""

from __future__ import annotations

import json
import random
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import typer

signals_app = typer.Typer(help="Expansion signals (签约, 开工, 投产, 募投 …): import, show, benchmark.",
                          no_args_is_help=True)  # fmt: skip


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def write_synthetic_signals(path: Path, events: int, firms: int, seed: int = 0) -> Path:
    """A JSON-lines file of ``events`` synthetic events over ``firms`` firms (the import benchmark's input)."""
    from matcher.store.signals import KINDS

    rng = random.Random(seed)
    provinces = ["新疆", "甘肃", "内蒙古", "江苏", "四川", "云南", "宁夏", "青海", "广东", "山东"]
    products = ["磷酸铁锂", "负极材料", "电解铝", "多晶硅", "光伏组件", "铝箔", "锂电池", "电解液", "风电叶片", "氢氧化锂"]
    start = date(2015, 1, 1)
    with path.open("w", encoding="utf-8") as f:
        for i in range(events):
            firm = rng.randrange(firms)
            obj = {
                "企业名称": f"合成企业{firm:06d}有限公司",
                "日期": (start + timedelta(days=rng.randrange(3650))).isoformat(),
                "类型": KINDS[rng.randrange(8)],
                "产品": rng.choice(products),
                "省份": rng.choice(provinces),
                "投资金额(亿元)": round(rng.uniform(0.5, 100), 1),
                "来源链接": f"https://example.invalid/{i}",
            }
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return path


def register(app: typer.Typer) -> None:
    from service.cli.common import handle_errors

    app.add_typer(signals_app, name="signals")

    @signals_app.command("import")
    @handle_errors
    def import_cmd(
        file: Path = typer.Argument(..., help="Signals: .csv (UTF-8/GBK), .xlsx or .jsonl with Chinese headers"),
        tenant: str | None = typer.Option(None, "--tenant", help="Import as this tenant's private events."),
        atomic: bool = typer.Option(True, "--atomic/--no-atomic", help="Any rejected row: nothing written."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Import events (企业名称, 日期, 类型, 产品, 省份, 投资金额, 来源链接 …); exit 1 when rows were rejected."""
        from matcher.settings import get_settings
        from matcher.store.importer import default_mapper
        from matcher.store.signal_import import import_signals
        from matcher.store.store import Store

        store = Store.from_settings(get_settings())
        report = import_signals(store, file, tenant, mapper=default_mapper(), atomic=atomic)
        if as_json:
            body = {
                "summary": report.summary(),
                "committed": report.committed,
                "rows": report.rows,
                "inserted": report.inserted,
                "merged": report.updated,
                "unchanged": report.unchanged,
                "rejects": [vars(r) for r in report.rejects],
            }
            typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
        else:
            typer.echo(report.summary())
            for issue in report.rejects[:20]:
                typer.echo(f"  {issue}", err=True)
        if report.rejects:
            raise typer.Exit(code=1)

    @signals_app.command("show")
    @handle_errors
    def show_cmd(
        enterprise_id: str = typer.Argument(..., help="Enterprise id"),
        tenant: str | None = typer.Option(None, "--tenant"),
    ) -> None:
        """A firm's events, oldest first, each with its sources."""
        from matcher.settings import get_settings
        from matcher.store.signals import signals_of
        from matcher.store.store import Store

        store = Store.from_settings(get_settings())
        events = signals_of(store, [enterprise_id], tenant)
        if not events:
            typer.echo(f"{enterprise_id}: no signals")
        for e in events:
            typer.echo(e.reason())
            for s in e.sources:
                typer.echo(f"    {s.url or s.document}")

    @signals_app.command("bench")
    @handle_errors
    def bench_cmd(
        events: int = typer.Option(100_000, "--events", min=1),
        firms: int = typer.Option(10_000, "--firms", min=1),
        seed: int = typer.Option(0, "--seed"),
        database_url: str | None = typer.Option(None, "--database-url", help="Default: a fresh SQLite file."),
    ) -> None:
        """Import a synthetic JSON-lines file of events: wall and CPU seconds, first import and re-import."""
        from matcher.store.importer import default_mapper
        from matcher.store.signal_import import import_signals
        from matcher.store.store import Store

        with tempfile.TemporaryDirectory(prefix="chainmatch-signals-") as tmp:
            path = write_synthetic_signals(Path(tmp) / "signals.jsonl", events, firms, seed)
            store = Store(database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
            mapper = default_mapper()
            typer.echo("| run | events | stored | wall s | CPU s | read / resolve / write s |")
            typer.echo("|---|---|---|---|---|---|")
            for label in ("first import", "re-import"):
                t0, c0 = time.perf_counter(), _cpu()
                report = import_signals(store, path, mapper=mapper)
                wall, cpu = time.perf_counter() - t0, _cpu() - c0
                t = report.timings
                typer.echo(
                    f"| {label} | {report.rows:,} | {report.inserted:,} new, {report.updated:,} merged | "
                    f"{wall:.1f} | {cpu:.1f} | {t['read']:.1f} / {t['resolve']:.1f} / {t['write']:.1f} |"
                )
            store.close()
