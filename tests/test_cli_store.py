"""The store CLI through typer's CliRunner, on the default SQLite store in the test's data dir."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matcher.store.credit_code import check_character
from service.cli import app

runner = CliRunner()

CODE_A = "91650100MA77T6Q80" + check_character("91650100MA77T6Q80")
HEADER = ["企业名称", "统一社会信用代码", "所属省份", "所属城市", "主营产品", "曾用名"]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def run(*args: str):
    return runner.invoke(app, list(args))


def test_import_then_show_and_count(tmp_path):
    path = write_csv(
        tmp_path / "list.csv",
        [
            ["新疆嘉润资源控股有限公司", CODE_A, "新疆", "昌吉回族自治州", "电解铝:0.7;铝棒:0.2", "嘉润"],
            ["玛纳斯县某某铝业有限公司", "", "新疆", "昌吉回族自治州", "铝型材", ""],
        ],
    )
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    assert "inserted 2" in result.output and "rejected 0" in result.output

    count = run("enterprise", "count")
    assert count.exit_code == 0 and count.output.strip() == "2"

    shown = run("enterprise", "show", "嘉润")
    assert shown.exit_code == 0, shown.output
    assert "新疆嘉润资源控股有限公司" in shown.output and CODE_A in shown.output
    assert "电解铝 70%" in shown.output
    assert "[electrolytic_aluminium]" in shown.output  # the mapped link, with its catalogue name

    again = run("import", str(path))
    assert again.exit_code == 0 and "unchanged 2" in again.output


def test_atomic_import_with_a_bad_row_exits_non_zero_writes_nothing_and_lists_rejects(tmp_path):
    path = write_csv(
        tmp_path / "bad.csv",
        [["甲有限公司", "", "新疆", "", "", ""], ["乙有限公司", "123", "新疆", "", "", ""]],
    )
    rejects = tmp_path / "out" / "rejects.csv"
    result = run("import", str(path), "--rejects", str(rejects))
    assert result.exit_code == 1
    assert "NOTHING written" in result.output
    assert "row 3, 统一社会信用代码: invalid credit code: expected 18 characters" in result.output
    assert rejects.exists() and "统一社会信用代码" in rejects.read_text(encoding="utf-8-sig")
    assert run("enterprise", "count").output.strip() == "0"


def test_no_atomic_import_writes_the_good_rows(tmp_path):
    path = write_csv(
        tmp_path / "bad.csv",
        [["甲有限公司", "", "新疆", "", "", ""], ["乙有限公司", "123", "新疆", "", "", ""]],
    )
    result = run("import", str(path), "--no-atomic", "--tenant", "akesu")
    assert result.exit_code == 0, result.output
    assert "inserted 1" in result.output and "rejected 1" in result.output
    assert run("enterprise", "count").output.strip() == "0"
    assert run("enterprise", "count", "--tenant", "akesu").output.strip() == "1"


def test_import_errors_are_one_line_messages_with_exit_code_2(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    result = run("import", str(empty))
    assert result.exit_code == 2 and "empty" in result.output
    missing = run("import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "file not found" in missing.output
    bad_tenant = run("import", str(empty), "--tenant", "a:b")
    assert bad_tenant.exit_code == 2 and "tenant" in bad_tenant.output


def test_import_json_report(tmp_path):
    import json

    path = write_csv(tmp_path / "list.csv", [["甲有限公司", "", "新疆", "", "=1+1", ""]])
    result = run("import", str(path), "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["inserted"] == 1 and body["warnings"][0]["field"] == "主营产品"


def test_enterprise_show_unknown_name_is_a_clean_error():
    result = run("enterprise", "show", "不存在的企业")
    assert result.exit_code == 2 and "unknown enterprise" in result.output


def test_corpus_import_a_share_loads_and_maps_the_listed_companies(shared_data):
    from matcher.store.ashare import load_ashare_corpus

    from matcher.store.demo import load_demo_enterprises

    given = len(load_ashare_corpus(shared_data)) + len(load_demo_enterprises())
    result = run("corpus", "import-a-share", "--data-dir", str(shared_data))
    assert result.exit_code == 0, result.output
    assert f"A-share + embedded demo corpus: {given} companies" in result.output and "merge report:" in result.output
    inserted = int(re.search(r"inserted (\d+)", result.output).group(1))
    assert inserted < given  # a listed firm the demo also describes is one record
    assert run("enterprise", "count").output.strip() == str(inserted)
    shown = run("enterprise", "show", "特变电工")
    assert shown.exit_code == 0 and "新疆" in shown.output
    again = run("corpus", "import-a-share", "--data-dir", str(shared_data))
    assert f"unchanged {inserted}" in again.output


def test_corpus_import_demo_loads_the_embedded_enterprises():
    demo = pytest.importorskip(
        "matcher.store.demo", reason="matcher.store.demo (embedded demo corpus) not in this build yet"
    )
    expected = len(demo.load_demo_enterprises())
    result = run("corpus", "import-demo")
    assert result.exit_code == 0, result.output
    assert f"demo corpus: {expected} companies" in result.output
    assert int(run("enterprise", "count").output.strip()) == expected


def test_bench_import_prints_a_markdown_table_with_the_raw_baseline():
    result = run("bench", "import", "--rows", "300")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        "| step | rows | inserted | unchanged | seconds | CPU s main + worker | rows/s | × csv.reader | read / map / write s |"
        in lines
    )
    assert any(line.startswith("| csv.reader (raw baseline) | 300 |") for line in lines)
    assert any(line.startswith("| first import (all inserts) | 300 | 300 | 0 |") for line in lines)
    assert any(line.startswith("| re-import (all unchanged) | 300 | 0 | 300 |") for line in lines)


def test_bench_start_times_the_fit_the_replay_and_the_refreshes():
    assert run("corpus", "import-demo").exit_code == 0
    result = run("bench", "start", "--batch", "100")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "| path | firms | wall s | CPU s | firms / CPU-s |" in lines
    for path in ("fit from the store", "start-up replay of the newer feed", "refreshes of 100 firms"):
        assert any(line.startswith(f"| {path} | ") for line in lines), result.output
