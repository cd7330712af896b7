"""Importing register exports (CSV in several encodings, XLSX, JSONL) into the store, on SQLite and PostgreSQL.

Every bad-input case checks the message names the row and the field, and that an atomic import leaves the store
exactly as it was (snapshot before == after).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from matcher.errors import ImportFileError
from matcher.records import Enterprise
from matcher.store.credit_code import check_character
from matcher.store.importer import enterprise_id, import_file, parse_products, read_enterprises
from matcher.store.tenancy import ALL_TENANTS
from matcher.text import normalize_company_name

pytest_plugins = ["store_backends"]  # the store / store_url / open_store fixtures on SQLite and PostgreSQL


def snapshot(store) -> list[dict]:
    from store_backends import snapshot as take

    return take(store)


CODE_A = "91650100MA77T6Q80" + check_character("91650100MA77T6Q80")
CODE_B = "91652300734491850" + check_character("91652300734491850")
CODE_C = "91320500134756920" + check_character("91320500134756920")
HEADER = ["企业名称", "统一社会信用代码", "法定代表人", "注册资本", "成立日期", "所属省份", "所属城市", "所属区县",
          "国标行业门类", "国标行业小类", "经营范围", "企业规模", "参保人数", "主营产品", "股票代码", "曾用名", "企业标签", "联系电话"]  # fmt: skip


def row(name: str, code: str = "", **kw: str) -> list[str]:
    values = {
        "企业名称": name,
        "统一社会信用代码": code,
        "法定代表人": "张三",
        "注册资本": "5000万元人民币",
        "成立日期": "2012-05-18",
        "所属省份": "新疆维吾尔自治区",
        "所属城市": "昌吉回族自治州",
        "所属区县": "玛纳斯县",
        "国标行业门类": "C 制造业",
        "国标行业小类": "3216 铝冶炼",
        "经营范围": "铝锭、铝棒的生产与销售；货物进出口。",
        "企业规模": "中型",
        "参保人数": "860",
        "主营产品": "电解铝:0.6;铝棒:0.3",
        "股票代码": "",
        "曾用名": "",
        "企业标签": "链主;高新技术企业",
        "联系电话": "0994-6688001",
    }
    values.update(kw)
    return [values[h] for h in HEADER]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8", header: list[str] = HEADER) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def good_rows() -> list[list[str]]:
    return [
        row("新疆嘉润资源控股有限公司", CODE_A, 主营产品="电解铝:0.7;铝棒:0.2", 曾用名="嘉润资源"),
        row("玛纳斯县某某铝业有限公司", 主营产品="铝型材、铝板带"),
        row("江苏富淼科技股份有限公司", CODE_C, 所属省份="江苏省", 所属城市="苏州市", 所属区县="张家港市",
            主营产品="水处理剂(60%)、功能性单体", 国标行业小类="2661 化学试剂和助剂制造", 股票代码="688350.SH"),
    ]  # fmt: skip


@pytest.fixture
def seeded(store, tmp_path):
    """A store already holding three firms, and its snapshot (to prove failed imports change nothing)."""
    report = import_file(write_csv(tmp_path / "seed.csv", good_rows()), store)
    assert report.committed and report.inserted == 3
    return store, snapshot(store)


# --- the happy path --------------------------------------------------------------------------------------------------


def test_chinese_export_columns_map_onto_the_profile(store, tmp_path):
    report = import_file(write_csv(tmp_path / "export.csv", good_rows()), store)
    assert (report.rows, report.inserted, report.rejected, report.committed) == (3, 3, 0, True)
    assert report.columns["联系电话"] == "extra"
    e = store.get_enterprise(CODE_A)
    assert e.name == "新疆嘉润资源控股有限公司" and e.normalized_name == "新疆嘉润资源控股"
    assert (e.province, e.city, e.county) == ("新疆", "昌吉回族自治州", "玛纳斯县")
    assert e.registered_capital == 5000.0 and e.employees == 860
    assert e.gbt_codes == ["3216"]
    assert [(p.name, p.share) for p in e.products] == [("电解铝", 0.7), ("铝棒", 0.2)]
    assert e.aliases == ["嘉润资源"] and e.tags == ["链主", "高新技术企业"]
    assert e.extra["联系电话"] == "0994-6688001"  # unknown column kept, never dropped
    assert e.extra["legal_representative"] == "张三" and e.extra["founded"] == "2012-05-18"
    assert e.extra["size"] == "中型" and e.extra["gbt_section"] == "C"
    assert e.source == "import:export.csv"
    assert "electrolytic_aluminium" in {m.link_id for m in e.links}  # mapped before the upsert
    fumiao = store.get_enterprise(CODE_C)
    assert fumiao.stock_code == "688350" and fumiao.province == "江苏"
    assert fumiao.products[0].share == 0.6 and fumiao.products[1].share is None


def test_rows_without_a_credit_code_get_a_stable_id_from_name_and_province(store, tmp_path):
    import_file(write_csv(tmp_path / "a.csv", good_rows()), store)
    expected = enterprise_id(None, normalize_company_name("玛纳斯县某某铝业有限公司"), "新疆")
    assert expected.startswith("ent-")
    assert store.get_enterprise(expected).name == "玛纳斯县某某铝业有限公司"


def test_reimport_changes_nothing_and_a_changed_row_is_updated_and_pending(seeded, tmp_path):
    store, before = seeded
    store.mark_embedded(store.pending_embedding("m"), "m")
    again = import_file(write_csv(tmp_path / "seed.csv", good_rows()), store)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    rows = good_rows()
    rows[0] = row("新疆嘉润资源控股有限公司", CODE_A, 主营产品="电解铝:0.8;铝棒:0.1", 曾用名="嘉润资源")
    changed = import_file(write_csv(tmp_path / "seed.csv", rows), store)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 2)
    assert changed.changed_ids == [CODE_A]
    assert store.pending_embedding("m") == [CODE_A]
    assert store.get_enterprise(CODE_A).products[0].share == 0.8


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig"])
def test_gbk_gb18030_and_bom_files_are_detected(store, tmp_path, encoding):
    report = import_file(write_csv(tmp_path / "enc.csv", good_rows(), encoding=encoding), store)
    assert report.committed and report.inserted == 3
    assert report.encoding == ("utf-8-sig" if encoding == "utf-8-sig" else "gb18030")
    assert store.get_enterprise(CODE_A).name == "新疆嘉润资源控股有限公司"


def test_traditional_and_full_width_text_is_normalised(store, tmp_path):
    rows = [row("新疆嘉潤資源控股（集團）有限公司", "９１" + CODE_A[2:], 主营产品="電解鋁：０.７；鋁棒")]
    import_file(write_csv(tmp_path / "t.csv", rows), store)
    e = store.get_enterprise(CODE_A)
    assert e.name == "新疆嘉润资源控股(集团)有限公司"
    assert e.normalized_name == "新疆嘉润资源控股"
    assert [(p.name, p.share) for p in e.products] == [("电解铝", 0.7), ("铝棒", None)]


def test_english_headers_and_a_title_row_above_the_header(store, tmp_path):
    path = tmp_path / "en.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["企查查 导出数据 2024-05-01"])
        w.writerow(["name", "credit_code", "province", "city", "products", "registered_capital", "notes"])
        w.writerow(
            ["Xinjiang Demo Aluminium Co., Ltd.", CODE_B, "新疆", "哈密市", "aluminium rod", "100", "n1"]
        )
    report = import_file(path, store)
    assert report.committed and report.inserted == 1
    assert any("title row" in w.reason and w.row == 1 for w in report.warnings)
    e = store.get_enterprise(CODE_B)
    assert e.city == "哈密市" and e.extra["notes"] == "n1" and e.registered_capital == 100.0


def test_tenant_import_writes_private_rows(store, tmp_path):
    report = import_file(write_csv(tmp_path / "p.csv", good_rows()), store, tenant="akesu")
    assert report.inserted == 3
    assert store.count_enterprises() == 0 and store.count_enterprises("akesu") == 3
    assert store.get_enterprise(f"akesu:{CODE_A}", tenant="akesu").tenant == "akesu"


def test_progress_is_reported(store, tmp_path):
    rows = [row(f"进度测试{i:05d}有限公司") for i in range(2100)]
    calls: list[tuple[int, int | None]] = []
    import_file(
        write_csv(tmp_path / "big.csv", rows), store, progress=lambda done, total: calls.append((done, total))
    )
    assert calls[-1] == (2100, 2100)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) >= 3


def test_xlsx_with_title_row_numeric_cells_and_a_formula(store, tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["企业名单（内部）"])
    ws.append(
        [
            "企业名称",
            "统一社会信用代码",
            "股票代码",
            "参保人数",
            "注册资本(万元)",
            "成立日期",
            "主营产品",
            "备注",
        ]
    )
    from datetime import datetime

    ws.append(["新疆众和股份有限公司", CODE_B, 600888, 2300, 128000.5, datetime(1996, 2, 15), "高纯铝:0.5;电极箔:0.3",
               "=HYPERLINK(\"http://x\")"])  # fmt: skip
    ws.append(["某数字编码有限公司", 914403001922038216, None, None, None, None, None, None])
    path = tmp_path / "list.xlsx"
    wb.save(path)

    report = import_file(path, store, atomic=False)
    assert report.format == "xlsx" and report.inserted == 1
    [reject] = report.rejects
    assert reject.row == 4 and reject.field == "统一社会信用代码" and "stored as a number" in reject.reason
    e = store.get_enterprise(CODE_B)
    assert e.stock_code == "600888" and e.employees == 2300 and e.registered_capital == 128000.5
    assert e.extra["founded"] == "1996-02-15"
    assert e.extra["备注"] == '=HYPERLINK("http://x")' and e.extra["formula_cells"] == ["备注"]


def test_jsonl_with_structured_products_and_a_bad_line(store, tmp_path):
    path = tmp_path / "list.jsonl"
    lines = [
        json.dumps({"name": "新疆天山铝业股份有限公司", "credit_code": CODE_A, "province": "新疆",
                    "products": [{"name": "原铝", "share": 0.6}, {"name": "氧化铝", "share": 0.2}],
                    "tags": ["上市公司"], "website": "x.example"}, ensure_ascii=False),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"name": "新疆某硅业有限公司", "products": ["工业硅", "多晶硅"]}, ensure_ascii=False),
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_file(path, store, atomic=False)
    assert report.format == "jsonl" and report.inserted == 2
    assert {(r.row, r.field) for r in report.rejects} == {(2, "-"), (3, "-")}
    assert (
        "not valid JSON" in report.rejects[0].reason and "expected a JSON object" in report.rejects[1].reason
    )
    e = store.get_enterprise(CODE_A)
    assert [(p.name, p.share) for p in e.products] == [("原铝", 0.6), ("氧化铝", 0.2)]
    assert e.extra["website"] == "x.example" and e.tags == ["上市公司"]


def test_parse_products_formats():
    assert [(p.name, p.share) for p in parse_products("多晶硅:0.6;硅片:0.3")[0]] == [
        ("多晶硅", 0.6),
        ("硅片", 0.3),
    ]
    assert [(p.name, p.share) for p in parse_products("多晶硅、硅片")[0]] == [
        ("多晶硅", None),
        ("硅片", None),
    ]
    assert [(p.name, p.share) for p in parse_products("多晶硅(60%)，硅片 30%")[0]] == [
        ("多晶硅", 0.6),
        ("硅片", 0.3),
    ]
    assert [(p.name, p.share) for p in parse_products("铝合金(6063)")[0]] == [("铝合金(6063)", None)]
    assert [(p.name, p.share) for p in parse_products("多晶硅：60")[0]] == [("多晶硅", 0.6)]
    products, warnings = parse_products("多晶硅:0.9;硅片:0.5")
    assert len(products) == 2 and "sum to 1.40" in warnings[0]
    products, warnings = parse_products("多晶硅:abc")
    assert products[0].share is None or products[0].name == "多晶硅:abc"


# --- bad input: each names the row and the field; atomic imports leave the store exactly as it was -----------------


def assert_unchanged(store, before) -> None:
    assert snapshot(store) == before


def test_invalid_credit_code_rejects_the_row_and_atomic_writes_nothing(seeded, tmp_path):
    store, before = seeded
    bad_code = CODE_B[:-1] + ("1" if CODE_B[-1] != "1" else "2")
    rows = [row("新增甲有限公司", CODE_C), row("校验码错误有限公司", bad_code), row("新增乙有限公司")]
    rejects_path = tmp_path / "rejects.csv"
    report = import_file(write_csv(tmp_path / "bad.csv", rows), store, rejects=rejects_path)
    assert not report.committed and report.rejected == 1
    [r] = report.rejects
    assert (r.row, r.field) == (3, "统一社会信用代码") and "check character mismatch" in r.reason
    assert_unchanged(store, before)
    with rejects_path.open(encoding="utf-8-sig") as f:
        written = list(csv.DictReader(f))
    assert written == [{"row": "3", "field": "统一社会信用代码", "reason": r.reason, "value": bad_code}]


def test_no_atomic_writes_the_good_rows_and_rejects_the_bad(seeded, tmp_path):
    store, _ = seeded
    rows = [row("新增甲有限公司", "91X"), row("新增乙有限公司")]
    report = import_file(write_csv(tmp_path / "bad.csv", rows), store, atomic=False)
    assert report.committed and report.inserted == 1 and report.rejected == 1
    assert report.rejects[0].row == 2 and "expected 18 characters" in report.rejects[0].reason
    assert store.count_enterprises() == 4


def test_malformed_csv_rows_are_rejected_by_row(seeded, tmp_path):
    store, before = seeded
    path = tmp_path / "broken.csv"
    good = ",".join(row("格式正确有限公司"))
    after = ",".join(row("坏行之后有限公司"))
    lines = [
        ",".join(HEADER),
        good,
        "只有三列有限公司,,张三",
        '"引号"错误有限公司,' + ",".join(row("x")[1:]),
        after,
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_file(path, store)
    assert not report.committed
    by_row = {r.row: r.reason for r in report.rejects}
    assert set(by_row) == {3, 4}
    assert "3 fields, the header has 18" in by_row[3]
    assert "malformed CSV" in by_row[4]
    assert_unchanged(store, before)
    partial = import_file(path, store, atomic=False)  # the reader recovers after a bad row
    assert partial.inserted == 2 and partial.rejected == 2


def test_an_unclosed_quote_is_reported_at_the_row_where_it_opens(seeded, tmp_path):
    store, before = seeded
    path = tmp_path / "quote.csv"
    rows = [",".join(row("甲有限公司")), '"乙有限公司,' + ",".join(row("x")[1:]), ",".join(row("丙有限公司"))]
    path.write_text(",".join(HEADER) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    report = import_file(path, store)
    [r] = report.rejects
    assert r.row == 3 and "never closed" in r.reason
    assert_unchanged(store, before)


def test_mixed_encoding_rejects_the_row_with_foreign_bytes(seeded, tmp_path):
    store, before = seeded
    path = tmp_path / "mixed.csv"
    head = (",".join(HEADER) + "\n").encode("utf-8")
    utf8_rows = [(",".join(row(f"正常编码{i}有限公司")) + "\n").encode("utf-8") for i in range(3)]
    gbk_row = (",".join(row("国标编码有限公司")) + "\n").encode("gbk")
    path.write_bytes(head + utf8_rows[0] + gbk_row + utf8_rows[1] + utf8_rows[2])
    report = import_file(path, store)
    assert report.encoding == "utf-8" and not report.committed
    rows = {r.row for r in report.rejects}
    assert rows == {3}
    assert any(r.field == "企业名称" and "not valid utf-8" in r.reason for r in report.rejects)
    assert_unchanged(store, before)


def test_a_utf8_row_inside_a_gbk_file_is_rejected_as_mixed(seeded, tmp_path):
    store, before = seeded
    path = tmp_path / "mixed2.csv"
    gbk = [
        (",".join(row(f"国标编码{i}有限公司", 经营范围="铝制品生产销售，来料加工")) + "\n").encode("gbk")
        for i in range(4)
    ]
    utf8_row = (",".join(row("统一码有限公司")) + "\n").encode("utf-8")
    path.write_bytes((",".join(HEADER) + "\n").encode("gbk") + gbk[0] + gbk[1] + utf8_row + gbk[2] + gbk[3])
    report = import_file(path, store)
    assert report.encoding == "gb18030"
    assert [(r.row, r.field) for r in report.rejects] == [(4, "-")]
    assert "mixed encodings" in report.rejects[0].reason
    assert_unchanged(store, before)


def test_missing_name_column_is_a_clear_error_naming_the_expected_columns(seeded, tmp_path):
    store, before = seeded
    path = write_csv(tmp_path / "noname.csv", [["x", "新疆"]], header=["统一社会信用代码", "所属省份"])
    with pytest.raises(ImportFileError) as err:
        import_file(path, store)
    message = str(err.value)
    assert (
        "missing the enterprise-name column" in message
        and "企业名称" in message
        and "company_name" in message
    )
    assert "found columns: 统一社会信用代码, 所属省份" in message
    assert_unchanged(store, before)


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (b"", ".csv", "empty"),
        (b"\n\n  \n", ".csv", "empty"),
        ("企业名称,所属省份\n".encode(), ".csv", "no data rows"),
        (b"", ".jsonl", "empty"),
        (b"", ".xlsx", "empty"),
        (b"PK\x03\x04 not really a zip", ".xlsx", "not a readable .xlsx"),
        (b"a,b", ".xls", "legacy .xls"),
        (b"\x00\x01\x02\xff binary", ".csv", "binary file"),
        ("企业名称\n".encode("utf-16"), ".csv", "no data rows"),
        (b"a,b", ".pdf", "unsupported file type"),
    ],
)
def test_unreadable_files_are_clear_errors_and_write_nothing(seeded, tmp_path, content, suffix, message):
    store, before = seeded
    path = tmp_path / f"f{suffix}"
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=message):
        import_file(path, store)
    assert_unchanged(store, before)


def test_duplicate_rows_identical_are_merged_conflicting_are_rejected(seeded, tmp_path):
    store, before = seeded
    same = row("重复测试有限公司", CODE_B)
    conflicting = row("重复测试有限公司", CODE_B, 主营产品="完全不同的产品")
    by_name = row("无代码重复有限公司")
    report = import_file(write_csv(tmp_path / "dup.csv", [same, by_name, same, by_name, conflicting]), store)
    assert report.duplicates == 2
    [r] = report.rejects
    assert r.row == 6 and r.field == "企业名称" and "duplicate of row 2 (same credit code)" in r.reason
    assert_unchanged(store, before)
    merged = import_file(write_csv(tmp_path / "dup2.csv", [same, by_name, same]), store)
    assert merged.committed and merged.inserted == 2 and merged.duplicates == 1


def test_a_10_mb_field_is_rejected_as_too_long(seeded, tmp_path):
    store, before = seeded
    huge = "经营" * (5 * 1024 * 1024)
    report = import_file(
        write_csv(tmp_path / "huge.csv", [row("正常有限公司"), row("超长有限公司", 经营范围=huge)]), store
    )
    [r] = report.rejects
    assert (r.row, r.field) == (3, "经营范围")
    assert "field too long: 10,485,760 characters > max 20,000" in r.reason
    assert_unchanged(store, before)


def test_a_long_name_is_rejected_with_its_limit(seeded, tmp_path):
    store, before = seeded
    report = import_file(write_csv(tmp_path / "long.csv", [row("长" * 201 + "有限公司")]), store)
    assert "max 200" in report.rejects[0].reason and report.rejects[0].field == "企业名称"
    assert_unchanged(store, before)


def test_formula_cells_are_stored_as_text_and_flagged(store, tmp_path):
    rows = [row("公式测试有限公司", CODE_B, 法定代表人="=cmd|' /C calc'!A0", 联系电话="+86 991 1234567",
                企业标签="@SUM(A1)", 注册资本="-", 参保人数="-12")]  # fmt: skip
    rejects = tmp_path / "rejects.csv"
    report = import_file(write_csv(tmp_path / "f.csv", rows), store, rejects=rejects)
    assert report.committed and report.inserted == 1
    e = store.get_enterprise(CODE_B)
    assert e.extra["legal_representative"] == "=cmd|' /C calc'!A0"  # kept verbatim, never evaluated
    assert e.tags == ["@SUM(A1)"]
    assert e.extra["联系电话"] == "+86 991 1234567"
    # '=', '@', and '+'/'-' before anything but a plain number are flagged; '-' alone means empty, '-12' is a number
    assert sorted(e.extra["formula_cells"]) == ["企业标签", "法定代表人", "联系电话"]
    assert e.registered_capital is None
    flagged = {w.field for w in report.warnings if "formula" in w.reason}
    assert flagged == {"法定代表人", "企业标签", "联系电话"}


def test_rejects_file_escapes_formula_values(store, tmp_path):
    rows = [row("=1+1", "=CMD()")]
    rejects = tmp_path / "rejects.csv"
    import_file(write_csv(tmp_path / "f.csv", rows), store, rejects=rejects)
    text = rejects.read_text(encoding="utf-8-sig")
    assert "'=CMD()" in text and ",=CMD()" not in text


def test_empty_name_rejected_naming_the_row(seeded, tmp_path):
    store, before = seeded
    report = import_file(write_csv(tmp_path / "e.csv", [row("有名字有限公司"), row("  ")]), store)
    assert [(r.row, r.field, r.reason) for r in report.rejects] == [
        (3, "企业名称", "enterprise name is empty")
    ]
    assert_unchanged(store, before)


def test_read_enterprises_validates_without_a_store(tmp_path):
    good, report = read_enterprises(write_csv(tmp_path / "r.csv", good_rows()))
    assert [r for r, _ in good] == [2, 3, 4]
    assert all(isinstance(e, Enterprise) for _, e in good)
    assert report.rows == 3 and not report.rejects


def test_all_tenants_view_sees_imports_of_every_tenant(store, tmp_path):
    import_file(write_csv(tmp_path / "a.csv", good_rows()[:1]), store)
    import_file(write_csv(tmp_path / "b.csv", good_rows()[1:2]), store, tenant="t1")
    assert store.count_enterprises(ALL_TENANTS) == 2


def test_atomic_import_inside_a_callers_transaction_undoes_only_its_own_writes(store, tmp_path):
    from matcher.records import Region, RegionLevel

    bad = write_csv(tmp_path / "bad.csv", [row("甲有限公司"), row("乙有限公司", "123")])
    with store.transaction():
        store.upsert_region(Region(id="park", name="某园区", level=RegionLevel.PARK))
        report = import_file(bad, store)
        assert not report.committed
    assert store.count_enterprises() == 0
    assert [r.id for r in store.list_regions()] == ["park"]  # the caller's own write survived


def test_big_files_are_written_in_batches_within_one_transaction(store, tmp_path, monkeypatch):
    import matcher.store.importer.pipeline as importer

    monkeypatch.setattr(importer, "_BATCH", 50)
    rows = [row(f"批次测试{i:04d}有限公司") for i in range(180)]
    report = import_file(write_csv(tmp_path / "b.csv", rows), store)
    assert report.inserted == 180 and store.count_enterprises() == 180
    rows.append(row("最后一行错误有限公司", "bad"))
    before = snapshot(store)
    rows = [row(f"新批次{i:04d}有限公司") for i in range(180)] + [row("最后一行错误有限公司", "bad")]
    failed = import_file(write_csv(tmp_path / "c.csv", rows), store)
    assert not failed.committed and failed.inserted == 0 and failed.rejects[0].row == 182
    assert snapshot(store) == before  # the batches written before the bad row were rolled back


def test_mapping_in_a_worker_process_gives_the_same_links_as_in_process(store, tmp_path, monkeypatch):
    import matcher.store.importer.pipeline as importer

    monkeypatch.setattr(importer, "_BATCH", 40)  # 5 batches: the worker process starts at the second one
    started: list[bool] = []
    start_worker = importer._Mapping.start_worker

    def spy(self):
        started.append(start_worker(self))
        return started[-1]

    monkeypatch.setattr(importer._Mapping, "start_worker", spy)
    products = ["电解铝:0.6;铝棒:0.3", "多晶硅、硅片", "铝型材", "其他业务", "光伏组件:0.5;逆变器:0.2"]
    rows = [row(f"并行测试{i:04d}有限公司", 主营产品=products[i % len(products)]) for i in range(200)]
    report = import_file(write_csv(tmp_path / "p.csv", rows), store, parallel=True)
    assert report.inserted == 200
    mapper = importer.default_mapper()
    stored = list(store.iter_enterprises())
    assert len(stored) == 200
    for e in stored:
        assert e.links == mapper.map(e.model_copy(update={"links": []}))
    assert any(e.links for e in stored)
    if importer.os.cpu_count() and importer.os.cpu_count() >= 2:
        assert started and all(started)  # the links above really came from the worker process


def test_imports_from_a_worker_thread_map_in_process(store, tmp_path, monkeypatch):
    import threading

    import matcher.store.importer.pipeline as importer

    monkeypatch.setattr(importer, "_BATCH", 40)
    started: list[bool] = []
    start_worker = importer._Mapping.start_worker
    monkeypatch.setattr(
        importer._Mapping, "start_worker", lambda self: started.append(start_worker(self)) or False
    )
    path = write_csv(tmp_path / "t.csv", [row(f"线程测试{i:03d}有限公司") for i in range(120)])
    out: list = []
    t = threading.Thread(target=lambda: out.append(import_file(path, store)))
    t.start()
    t.join(timeout=120)
    assert out and out[0].inserted == 120
    assert started and not any(started)
