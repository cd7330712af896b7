"""Bounded input in file imports: a zip bomb, a file with a million columns and rows with too many unknown keys
are refused quickly, naming the limit, before anything is materialised; nothing is stored."""

from __future__ import annotations

import io
import json
import resource
import time
import zipfile
from pathlib import Path

import pytest
from api_support import Api, make_settings
from openpyxl import Workbook

from matcher.errors import ImportLimitError
from matcher.settings import get_settings
from matcher.store import ALL_TENANTS, Store
from matcher.store.importer import MAX_COLUMNS, MAX_EXTRA_COLUMNS, MAX_XLSX_UNPACKED_BYTES, import_file


@pytest.fixture
def store() -> Store:
    settings = get_settings()
    settings.ensure_dirs()
    st = Store.from_settings(settings)
    yield st
    st.close()


def _zip_bomb(path: Path, unpacked: int) -> Path:
    """A real workbook plus one part of ``unpacked`` zero bytes deflated to about a megabyte."""
    wb = Workbook()
    wb.active.append(["企业名称", "主营产品"])
    wb.active.append(["甲铝业有限公司", "铝棒"])
    buf = io.BytesIO()
    wb.save(buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        part = zipfile.ZipInfo("xl/sharedStrings.xml")
        part.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(part, "w", force_zip64=True) as fh:
            chunk = b"\0" * (1 << 22)
            for _ in range(unpacked // len(chunk)):
                fh.write(chunk)
    return path


def test_xlsx_zip_bomb_is_refused_fast_without_inflating(tmp_path: Path, store: Store):
    bomb = _zip_bomb(tmp_path / "bomb.xlsx", MAX_XLSX_UNPACKED_BYTES + (64 << 20))
    assert bomb.stat().st_size < 3 << 20
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(ImportLimitError, match="limit is 512 MB"):
        import_file(bomb, store)
    assert time.perf_counter() - t0 < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50 * 1024  # KiB
    assert store.count_enterprises(ALL_TENANTS) == 0


def test_a_million_column_csv_is_refused_naming_the_limit(tmp_path: Path, store: Store):
    wide = tmp_path / "wide.csv"
    wide.write_text("企业名称," + ",".join(f"c{i}" for i in range(1_000_000)) + "\n甲有限公司\n", encoding="utf-8")
    with pytest.raises(ImportLimitError, match=f"1,000,001 columns; the limit is {MAX_COLUMNS}"):
        import_file(wide, store)
    assert store.count_enterprises(ALL_TENANTS) == 0


def test_too_many_unknown_columns_are_refused(tmp_path: Path, store: Store):
    f = tmp_path / "extra.csv"
    f.write_text("企业名称," + ",".join(f"备注{i}" for i in range(MAX_EXTRA_COLUMNS + 1)) + "\n甲有限公司\n",
                 encoding="utf-8")
    with pytest.raises(ImportLimitError, match=f"the limit is {MAX_EXTRA_COLUMNS}"):
        import_file(f, store)


def test_jsonl_row_with_too_many_keys_is_rejected_by_row(tmp_path: Path, store: Store):
    f = tmp_path / "rows.jsonl"
    rows = [{"企业名称": "甲有限公司", "主营产品": "铝棒"},
            {"企业名称": "乙有限公司", **{f"k{i}": i for i in range(MAX_COLUMNS + 1)}}]
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    report = import_file(f, store, atomic=False)
    assert report.rejected == 1 and "limit" in report.rejects[0].reason
    assert store.count_enterprises(ALL_TENANTS) == 1


def test_upload_of_a_zip_bomb_is_422_naming_the_limit(tmp_path: Path):
    bomb = _zip_bomb(tmp_path / "bomb.xlsx", MAX_XLSX_UNPACKED_BYTES + (64 << 20))
    api = Api(make_settings(tmp_path / "srv"), warm=False)
    try:
        h = api.tenant("bomb").headers
        t0 = time.perf_counter()
        resp = api.client.post("/v1/enterprises/import", headers=h,
                               files={"file": ("bomb.xlsx", bomb.read_bytes())})
        assert time.perf_counter() - t0 < 2.0
        assert resp.status_code == 422, resp.text
        assert "512 MB" in resp.json()["error"]["message"]
    finally:
        api.close()


def _giant_cell(path: Path, unpacked: int) -> Path:
    """A real workbook whose sheet holds one inline-string cell of ``unpacked`` bytes (declared honestly, under
    the size limit): the issue's 1 MB file with a gigabyte cell, scaled down."""
    wb = Workbook()
    wb.active.append(["企业名称", "主营产品"])
    buf = io.BytesIO()
    wb.save(buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(info, src.read(info))
                continue
            part = zipfile.ZipInfo(info.filename)
            part.compress_type = zipfile.ZIP_DEFLATED
            with dst.open(part, "w", force_zip64=True) as fh:
                fh.write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                         b'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>')
                chunk = b"A" * (1 << 22)
                for _ in range(unpacked // len(chunk)):
                    fh.write(chunk)
                fh.write(b"</t></is></c></row></sheetData></worksheet>")
    return path


def test_xlsx_with_one_giant_cell_is_refused_while_inflating(tmp_path: Path, store: Store):
    bomb = _giant_cell(tmp_path / "cell.xlsx", 256 << 20)
    assert bomb.stat().st_size < 1 << 20
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(ImportLimitError, match="32,767 characters a cell"):
        import_file(bomb, store)
    assert time.perf_counter() - t0 < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50 * 1024  # KiB
    assert store.count_enterprises(ALL_TENANTS) == 0
