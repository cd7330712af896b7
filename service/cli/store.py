"""CLI: the enterprise store — `import`, `corpus import-a-share|import-demo`, `enterprise show|count`, `bench import`."""

from __future__ import annotations

import csv
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from matcher.errors import ImportFileError
from matcher.records import Enterprise
from matcher.store.credit_code import CHARSET, check_character

corpus_app = typer.Typer(help="Load the built-in corpora (A-share companies, demo enterprises) into the store.",
                         no_args_is_help=True)  # fmt: skip
enterprise_app = typer.Typer(help="Look up enterprises in the store.", no_args_is_help=True)
bench_help = "Benchmarks (markdown tables, ours vs the raw library in the same run)."


def _store(tenant: str | None = None):  # -> matcher.store.store.Store
    from matcher.settings import get_settings
    from matcher.store.store import Store
    from matcher.store.tenancy import check_tenant

    check_tenant(tenant)
    return Store.from_settings(get_settings())


@contextmanager
def _progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A rich progress bar on stderr, fed by ``callback(done, total)``; None when disabled."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(label, total=None)

        def callback(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield callback


def _links_text(e: Enterprise) -> list[str]:
    from matcher.knowledge.catalogue import default_catalogue

    try:
        catalogue = default_catalogue()
        names = {lid: link.name for lid, link in catalogue.links.items()}
    except Exception:  # a broken catalogue must not hide the profile
        names = {}
    out = []
    for m in e.links:
        share = f", 收入占比 {m.share:.0%}" if m.share is not None else ""
        out.append(
            f"  - {names.get(m.link_id, m.link_id)} [{m.link_id}] {m.score:.2f} {m.method}: {m.evidence}{share}"
        )
    return out


def format_profile(e: Enterprise) -> str:
    """A readable enterprise profile with its mapped links."""
    lines = [f"{e.name}  ({e.id})"]
    facts = [
        ("统一社会信用代码", e.credit_code),
        ("简称/曾用名", "、".join(e.aliases) or None),
        ("地区", " ".join(x for x in (e.province, e.city, e.county) if x) or None),
        ("股票代码", e.stock_code),
        ("行业", e.sw_industry),
        ("国标行业", ", ".join(e.gbt_codes) or None),
        ("注册资本(万元)", f"{e.registered_capital:g}" if e.registered_capital is not None else None),
        ("参保/员工人数", e.employees),
        ("标签", "、".join(e.tags) or None),
        ("所属集团", e.parent_group),
        ("上市状态", {"listed": "上市", "delisted": "已退市"}.get(e.extra.get("listing_status") or ("listed" if e.listed else ""))),
        ("曾用名", "、".join(e.extra.get("former_names") or []) or None),
        ("租户", e.tenant),
        ("来源", "、".join(e.extra.get("sources") or ([e.source] if e.source else [])) or None),
        ("数据日期", e.updated_at.date().isoformat()),
        ("性质", "虚构示例（演示数据，并非真实企业）" if e.fictional else None),
    ]
    lines += [f"  {k}: {v}" for k, v in facts if v not in (None, "")]
    if e.products:
        prods = "；".join(
            f"{p.name}" + (f" {p.share:.0%}" if p.share is not None else "") for p in e.products
        )
        lines.append(f"  主营产品: {prods}")
    if e.scope:
        lines.append(f"  经营范围: {e.scope[:200]}{'…' if len(e.scope) > 200 else ''}")
    lines.append(f"  产业链环节 links ({len(e.links)}):")
    lines += _links_text(e) or ["  - (none mapped)"]
    return "\n".join(lines)


# --- synthetic export for `bench import` ---------------------------------------------------------------------------

_PLACES = [
    (
        "新疆维吾尔自治区",
        ["乌鲁木齐市", "昌吉回族自治州", "克拉玛依市", "伊犁哈萨克自治州", "哈密市", "石河子市"],
    ),
    ("江苏省", ["苏州市", "无锡市", "常州市", "南京市", "南通市"]),
    ("浙江省", ["杭州市", "宁波市", "温州市", "嘉兴市", "湖州市"]),
    ("广东省", ["深圳市", "广州市", "东莞市", "佛山市", "惠州市"]),
    ("山东省", ["济南市", "青岛市", "烟台市", "潍坊市", "淄博市"]),
    ("河南省", ["郑州市", "洛阳市", "新乡市", "焦作市"]),
    ("福建省", ["福州市", "厦门市", "泉州市"]),
    ("江西省", ["南昌市", "赣州市", "宜春市"]),
    ("上海市", ["上海市"]),
    ("北京市", ["北京市"]),
]
_WORDS = list("华泰恒信瑞丰鑫源宏达天成中金永盛嘉润众和昌隆腾飞新拓远航博通汇智东方西域天山金石晶能亿安海川")
_TRADES = [
    ("铝业", ["电解铝:0.6;铝棒:0.3", "铝型材、铝板带", "铝箔", "再生铝:0.7;铝合金锭:0.2"], "3216 铝冶炼"),
    ("硅业", ["工业硅:0.8;有机硅单体", "多晶硅:0.6;硅片:0.3", "单晶硅片"], "3985 电子专用材料制造"),
    (
        "新能源科技",
        ["光伏组件:0.5;电池片:0.4", "逆变器", "储能系统:0.6;锂电池:0.3"],
        "3825 光伏设备及元器件制造",
    ),
    ("电气", ["变压器:0.5;开关柜:0.3", "电线电缆", "电工圆铝杆"], "3821 变压器、整流器和电感器制造"),
    ("化工", ["PVC:0.5;烧碱:0.4", "甲醇、乙二醇", "聚乙烯管材"], "2651 初级形态塑料及合成树脂制造"),
    ("纺织", ["棉纱:0.7;坯布", "服装", "粘胶短纤"], "1711 棉纺纱加工"),
    ("食品", ["番茄酱:0.8", "乳制品", "面粉、食用油"], "1391 淀粉及淀粉制品制造"),
    ("贸易", ["其他业务", "", "进出口贸易"], "5199 其他未列明批发业"),
]
_SCOPE = [
    "有色金属合金制造", "有色金属压延加工", "金属材料销售", "新材料技术研发", "技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广",
    "货物进出口", "技术进出口", "光伏设备及元器件制造", "电池制造", "输配电及控制设备制造", "电线、电缆经营", "化工产品销售（不含许可类化工产品）",
    "塑料制品制造", "棉、麻销售", "食品销售（仅销售预包装食品）", "普通货物仓储服务（不含危险化学品等需许可审批的项目）",
    "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）", "许可项目：危险化学品生产；道路货物运输（不含危险货物）",
]  # fmt: skip
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚"
_SIZES = ["大型", "中型", "小型", "微型"]
_TAGS = ["高新技术企业", "专精特新", "科技型中小企业", "链主", ""]
HEADER = ["企业名称", "统一社会信用代码", "法定代表人", "注册资本", "成立日期", "所属省份", "所属城市", "所属区县", "国标行业门类",
          "国标行业小类", "经营范围", "企业规模", "参保人数", "主营产品", "股票代码", "曾用名", "企业标签", "联系电话"]  # fmt: skip


def _credit_code(rng: random.Random) -> str:
    body = (
        "91"
        + "".join(rng.choice("0123456789") for _ in range(6))
        + "".join(rng.choice(CHARSET) for _ in range(9))
    )
    return body + check_character(body)


def write_synthetic_export(path: Path, rows: int, seed: int = 0) -> Path:
    """A realistic Chinese register export (企查查/天眼查 style columns), seeded: unique firms, ~85% with a valid
    credit code, products with revenue shares, long 经营范围 texts."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(rows):
            prov, cities = rng.choice(_PLACES)
            city = rng.choice(cities)
            trade, products, gbt = rng.choice(_TRADES)
            short = prov.replace("维吾尔自治区", "").replace("省", "").replace("市", "")
            name = f"{short}{''.join(rng.sample(_WORDS, 2))}{trade}{i:06d}有限公司"
            scope = "；".join(rng.sample(_SCOPE, rng.randint(4, 10))) + "。"
            w.writerow(
                [
                    name,
                    _credit_code(rng) if rng.random() < 0.85 else "",
                    rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN),
                    f"{rng.choice([100, 500, 1000, 5000, 20000])}万元人民币",
                    f"{rng.randint(1990, 2023)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    prov,
                    city,
                    "",
                    "C 制造业",
                    gbt,
                    scope,
                    rng.choice(_SIZES),
                    str(rng.randint(5, 5000)),
                    rng.choice(products),
                    f"{600000 + i % 4000}" if rng.random() < 0.02 else "",
                    f"{short}{''.join(rng.sample(_WORDS, 2))}{trade}有限公司" if rng.random() < 0.1 else "",
                    rng.choice(_TAGS),
                    f"0991-{rng.randint(1000000, 9999999)}",
                ]
            )
    return path


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds of this process and of its finished children (the import's mapping worker)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _raw_reference(path: Path, url: str) -> tuple[float, float, int]:
    """Wall s, CPU s and rows of the raw way to load the file: ``pandas.read_csv`` (csv.reader without pandas) and
    one SQLAlchemy Core bulk insert of the same rows, as text, into a plain table of the same database."""
    from sqlalchemy import Column, MetaData, Table, Text, create_engine

    try:
        import pandas as pd  # imported before the clock starts, like the importer's own modules
    except ImportError:
        pd = None
    t0, c0 = time.perf_counter(), time.process_time()
    if pd is not None:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        header, rows = list(frame.columns), frame.to_numpy().tolist()
    else:
        with path.open(encoding="utf-8", newline="") as f:
            header, *rows = list(csv.reader(f))
    table = Table("bench_raw_reference", MetaData(), *(Column(f"c{i}", Text) for i in range(len(header))))
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            table.drop(conn, checkfirst=True)
            table.create(conn)
            keys = [f"c{i}" for i in range(len(header))]
            for i in range(0, len(rows), 5000):
                conn.execute(table.insert(), [dict(zip(keys, r, strict=True)) for r in rows[i : i + 5000]])
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        with engine.begin() as conn:
            table.drop(conn)
    finally:
        engine.dispose()
    return seconds, cpu, len(rows)


def _raw_csv_seconds(path: Path) -> float:
    t0 = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as f:
        n = sum(1 for _ in csv.reader(f))
    assert n > 0
    return time.perf_counter() - t0


# --- commands -------------------------------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    from service.cli.common import group, handle_errors

    app.add_typer(corpus_app, name="corpus")
    app.add_typer(enterprise_app, name="enterprise")
    bench_app = group(app, "bench", bench_help)

    @app.command("import")
    @handle_errors
    def import_cmd(
        file: Path = typer.Argument(..., help="Enterprise list: .csv (UTF-8/GBK), .xlsx or .jsonl"),
        tenant: str | None = typer.Option(None, "--tenant", help="Import as this tenant's private rows."),
        atomic: bool = typer.Option(
            True, "--atomic/--no-atomic", help="--atomic: any rejected row means nothing is written."
        ),  # fmt: skip
        rejects: Path | None = typer.Option(
            None, "--rejects", help="Write rejected rows (row, field, reason) here."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Import enterprises from a register export, validating every row.

        Exit codes: 0 = at least one row stored (rejected rows, if any, are counted and listed); 1 = --atomic
        import with rejected rows, nothing written; 2 = nothing written because every row was rejected
        (--no-atomic), or the file / tenant is unusable.
        """
        from matcher.store.importer import import_file

        store = _store(tenant)
        big = file.exists() and file.stat().st_size > 2_000_000
        with _progress_bar(f"importing {file.name}", enabled=big and not as_json) as progress:
            report = import_file(
                file, store, tenant=tenant, atomic=atomic, rejects=rejects, progress=progress
            )
        if as_json:
            body = {
                "summary": report.summary(),
                "committed": report.committed,
                "rows": report.rows,
                "inserted": report.inserted,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "rejected": report.rejected,
                "duplicates": report.duplicates,
                "rejects": [vars(r) for r in report.rejects],
                "warnings": [vars(r) for r in report.warnings],
            }
            typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
        else:
            typer.echo(report.summary())
            for r in report.rejects[:20]:
                typer.echo(f"  rejected {r}", err=True)
            if len(report.rejects) > 20:
                typer.echo(f"  … {len(report.rejects) - 20} more rejects" + (f" in {rejects}" if rejects else ""),
                           err=True)  # fmt: skip
            flagged = [w for w in report.warnings if "formula" in w.reason]
            if flagged:
                typer.echo(
                    f"  {len(flagged)} formula-like cells stored as text (see extra.formula_cells)", err=True
                )
            if rejects is not None:
                typer.echo(f"rejects written to {rejects}")
        if report.rejects and atomic:
            raise typer.Exit(code=1)
        stored = report.inserted + report.updated + report.unchanged
        if report.rejects and not stored:
            typer.echo(
                f"错误 error: nothing written: all {report.rejected} rows of {file.name} were rejected",
                err=True,
            )
            raise typer.Exit(code=2)

    @corpus_app.command("import-a-share")
    @handle_errors
    def import_a_share(
        data_dir: Path | None = typer.Option(None, "--data-dir",
                                             help="The shared/data directory (default: settings.shared_data_dir)."),
    ) -> None:  # fmt: skip
        """Load the ~4,600 A-share listed companies (shared corpus), mapped onto chain links, merged with the embedded
        demo firms (so the demo regions' residents exist whatever the order of imports; same firm = one record)."""
        from matcher.settings import get_settings
        from matcher.store.ashare import load_ashare_corpus
        from matcher.store.demo import load_demo_enterprises

        data_dir = data_dir or get_settings().shared_data_dir
        t0 = time.perf_counter()
        companies = load_ashare_corpus(data_dir)
        _load_corpus(companies + load_demo_enterprises(), "A-share + embedded demo", t0)

    @corpus_app.command("import-demo")
    @handle_errors
    def import_demo() -> None:
        """Load the embedded demo enterprises (shared corpus), mapped onto chain links."""
        try:
            from matcher.store.demo import load_demo_enterprises
        except ImportError as exc:
            raise ImportFileError(f"the demo corpus is not available in this build ({exc})") from exc
        t0 = time.perf_counter()
        _load_corpus(load_demo_enterprises(), "demo", t0)

    def _load_corpus(companies: list[Enterprise], label: str, t0: float) -> None:
        from matcher.store.importer import default_mapper

        mapper = default_mapper()
        mapped = [e.model_copy(update={"links": mapper.map(e)}) for e in companies]
        with_links = sum(1 for e in mapped if e.links)
        from matcher.store.duplicates import find_duplicates, link_former_names, merge_duplicates

        with _store() as store:
            link_former_names(store, mapped)  # a firm known under a former name is one record, in any order
            summary = store.upsert_enterprises(mapped)
            # a firm stored earlier under a name this import lists as its former name: one record, whatever the order
            folded = merge_duplicates(store, find_duplicates(store))
        typer.echo(
            f"{label} corpus: {len(companies)} companies, {with_links} mapped to ≥1 chain link → "
            f"inserted {summary.inserted}, updated {summary.updated}, unchanged {summary.unchanged} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        typer.echo(f"merge report: {summary.merge_report()}"
                   + (f"; {len(folded.removed_ids)} record(s) folded into the firm's other record "
                      f"(same firm under a former name)" if folded.groups else ""))  # fmt: skip

    @enterprise_app.command("show")
    @handle_errors
    def enterprise_show(
        name: str = typer.Argument(..., help="Name, short name, credit code, stock code or id"),
        tenant: str | None = typer.Option(None, "--tenant"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Show an enterprise's profile and the chain links it maps to."""
        from matcher.errors import UnknownEnterpriseError

        store = _store(tenant)
        found = store.find_enterprises(name, tenant=tenant, limit=6)
        if not found:
            raise UnknownEnterpriseError(name)
        e = found[0]
        if as_json:
            typer.echo(e.model_dump_json(indent=2))
            return
        typer.echo(format_profile(e))
        if len(found) > 1:
            typer.echo("also matching: " + "；".join(f"{o.name} ({o.id})" for o in found[1:]))

    @enterprise_app.command("count")
    @handle_errors
    def enterprise_count(tenant: str | None = typer.Option(None, "--tenant")) -> None:
        """How many enterprises the store holds (shared corpus, plus the tenant's own with --tenant)."""
        typer.echo(str(_store(tenant).count_enterprises(tenant)))

    @bench_app.command("import")
    @handle_errors
    def bench_import(
        rows: int = typer.Option(100_000, "--rows", min=1, help="Rows of the synthetic export."),
        seed: int = typer.Option(0, "--seed"),
        database_url: str | None = typer.Option(None, "--database-url",
                                                help="Target store (default: a fresh SQLite file in a temp dir)."),
    ) -> None:  # fmt: skip
        """Import a synthetic Chinese register export; compare with plain csv.reader over the same file."""
        import resource

        from matcher.store.importer import default_mapper, import_file
        from matcher.store.store import Store

        with tempfile.TemporaryDirectory(prefix="chainmatch-bench-") as tmp:
            path = write_synthetic_export(Path(tmp) / "export.csv", rows, seed)
            size_mb = path.stat().st_size / 1e6
            mapper = default_mapper()  # built once per process, like a long-running service
            raw = _raw_csv_seconds(path)
            ref = _raw_reference(path, database_url or f"sqlite:///{Path(tmp) / 'raw.db'}")
            store = Store(database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
            results = []
            for label in ("first import (all inserts)", "re-import (all unchanged)"):
                t0, c0 = time.perf_counter(), _cpu_seconds()
                report = import_file(path, store, mapper=mapper)
                c1 = _cpu_seconds()
                results.append((label, report, time.perf_counter() - t0, (c1[0] - c0[0], c1[1] - c0[1])))
            store.close()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        typer.echo(
            f"synthetic export: {rows:,} rows, {size_mb:.1f} MB, {store.dialect}; peak RSS {peak_mb:,.0f} MB\n"
        )
        typer.echo(
            "| step | rows | inserted | unchanged | seconds | CPU s main + worker | rows/s | × csv.reader | read / map / write s |"
        )
        typer.echo("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        typer.echo(
            f"| csv.reader (raw baseline) | {rows:,} | - | - | {raw:.2f} | - | {rows / raw:,.0f} | 1.0 | - |"
        )
        typer.echo(
            f"| pandas.read_csv + Core bulk insert (raw reference) | {ref[2]:,} | {ref[2]:,} | - | {ref[0]:.2f} | "
            f"{ref[1]:.1f} + 0.0 | {ref[2] / ref[0]:,.0f} | {ref[0] / raw:.0f} | - |"
        )
        for label, report, seconds, cpu in results:
            parts = " / ".join(f"{report.timings.get(k, 0.0):.1f}" for k in ("read", "map", "write"))
            typer.echo(
                f"| {label} | {report.rows:,} | {report.inserted:,} | {report.unchanged:,} | {seconds:.2f} | "
                f"{cpu[0]:.1f} + {cpu[1]:.1f} | {report.rows / seconds:,.0f} | {seconds / raw:.0f} | {parts} |"
            )
        typer.echo(
            "\nCPU s = this process + its mapping worker (RUSAGE_CHILDREN), not the database server's. "
            "read = parse + validate in this process; map = waiting for links (mapping overlaps reading when it "
            "runs in the worker process); write = store upserts. On an idle machine the wall time approaches the larger "
            "of the two CPU figures, since main and worker run on separate cores."
        )
        if any(r.rejects for _, r, _, _ in results):
            typer.echo(f"warning: {results[0][1].rejected} rows rejected", err=True)
        sys.stdout.flush()
