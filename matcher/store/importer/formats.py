"""Format readers of an import: CSV/TSV (encoding detection, delimiter sniffing), XLSX (openpyxl, read-only) and
JSON lines, each yielding header-mapped source records with their row numbers."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matcher.errors import ImportFileError, ImportLimitError

if TYPE_CHECKING:
    pass
from matcher.store.importer.cells import _CONTROL, _SURROGATE
from matcher.store.importer.report import ImportReport, RowIssue
from matcher.store.importer.rows import (
    _SEP,
    MAX_COLUMNS,
    MAX_EXTRA_COLUMNS,
    MAX_XLSX_RUN_BYTES,
    MAX_XLSX_UNPACKED_BYTES,
    _Column,
    _missing_name_error,
    map_headers,
)

logger = logging.getLogger(__name__)

_SUFFIXES_CSV = {".csv", ".tsv", ".txt"}


_SUFFIXES_XLSX = {".xlsx", ".xlsm"}


_SUFFIXES_JSONL = {".jsonl", ".ndjson", ".json"}


_MARK = "chainmatch.escape_bytes"


def _escape_bytes(exc: UnicodeDecodeError) -> tuple[str, int]:
    """Decode error handler: each undecodable byte becomes a lone surrogate U+DC80..U+DCFF (found per row later)."""
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC00 + (b if b >= 0x80 else 0x80 | b)) for b in bad), exc.end


codecs.register_error(_MARK, _escape_bytes)


@dataclass
class _Source:
    columns: list[_Column]
    records: Iterator[_Record]
    total: int | None
    surrogates: bool = True  # cells may hold undecodable bytes
    controls: bool = True  # cells may hold control characters


@dataclass
class _Record:
    row: int
    cells: list[tuple[_Column, Any]] | None  # None when the record itself is broken
    issue: RowIssue | None = None


def _decode(data: bytes, where: str) -> tuple[str, str, set[int]]:
    """Text, encoding and the 1-based lines that look like another encoding than the file's."""
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(enc, errors=_MARK), enc, set()
    try:
        return data.decode("utf-8"), "utf-8", set()
    except UnicodeDecodeError:
        pass
    utf8_lines: set[int] = set()
    bad = 0
    for i, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8_lines.add(i)
        except UnicodeDecodeError:
            bad += 1
    if len(utf8_lines) > bad:
        return data.decode("utf-8", errors=_MARK), "utf-8", set()  # mostly UTF-8: bad rows carry surrogates
    from charset_normalizer import from_bytes

    guess = from_bytes(data[:1_000_000]).best()
    enc = (guess.encoding if guess else "gb18030").lower().replace("-", "_")
    if enc in {
        "gb2312",
        "gbk",
        "gb18030",
        "hz",
        "cp936",
        "iso2022_jp",
        "euc_jp",
        "shift_jis",
        "cp932",
    } or enc.startswith("cp125"):
        # Chinese exports: GB18030 is the superset of GB2312 / GBK; a Western single-byte guess on bytes that are
        # not UTF-8 is nearly always GBK misread
        enc = "gb18030"
    elif enc in {"big5", "big5hkscs", "cp950"}:
        enc = "big5hkscs"
    try:
        text = data.decode(enc, errors=_MARK)
    except LookupError as exc:
        raise ImportFileError(
            f"{where}: cannot decode the file (detected {enc!r}); save it as UTF-8"
        ) from exc
    logger.info("%s: decoded as %s (%d UTF-8 lines flagged as mixed)", where, enc, len(utf8_lines))
    return text, enc, utf8_lines


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    first = text[: text.find("\n")] if "\n" in text else text
    counts = {d: first.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _find_header(rows: list[tuple[int, list[Any]]], where: str) -> tuple[int, list[_Column]]:
    """Index in ``rows`` of the header row (the first with a name column among the first 10) and its columns.

    Raises ImportFileError naming the limit when the header has more than :data:`MAX_COLUMNS` columns or more
    than :data:`MAX_EXTRA_COLUMNS` unknown ones."""
    for i, (row_no, cells) in enumerate(rows[:10]):
        if len(cells) > MAX_COLUMNS:
            raise ImportLimitError(
                f"{where}: row {row_no} has {len(cells):,} columns; the limit is {MAX_COLUMNS} (列数超出上限)"
            )
        cols = map_headers(cells)
        if any(c.field == "name" for c in cols):
            extra = sum(1 for c in cols if c.field is None)
            if extra > MAX_EXTRA_COLUMNS:
                raise ImportLimitError(
                    f"{where}: header row {row_no} has {extra} unrecognised columns (kept in extra); "
                    f"the limit is {MAX_EXTRA_COLUMNS} (未识别列数超出上限)"
                )
            return i, cols
    raise _missing_name_error(rows[0][1] if rows else [], where)


def _read_csv(data: bytes, path: Path, report: ImportReport) -> _Source:
    where = path.name
    text, encoding, suspect_lines = _decode(data, where)
    report.encoding = encoding
    if not text.strip():
        raise ImportFileError(
            f"{where}: the file is empty (expected a header row with 企业名称 and data rows)"
        )
    delimiter = _sniff_delimiter(text, path.suffix.lower())
    old_limit = csv.field_size_limit()
    csv.field_size_limit(max(old_limit, 2**31 - 1 if sys.maxsize > 2**32 else 2**30))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)

    def records() -> Iterator[tuple[int, int, list[str] | None, str | None]]:
        last = 0
        while True:
            start = last + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = reader.line_num
                reason = f"malformed CSV ({exc})"
                if "end of data" in str(exc) or end > start + 1000:
                    reason += f"; an opening quote is never closed, lines {start}-{end} are unreadable"
                last = end
                yield start, end, None, reason
                continue
            last = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            yield start, last, cells, None

    it = records()
    head: list[tuple[int, list[Any]]] = []
    for start, _end, cells, reason in it:
        if cells is None:
            report.warnings.append(
                RowIssue(start, "-", f"unreadable line above the header skipped: {reason}")
            )
        else:
            head.append((start, cells))
        if len(head) >= 10 or (head and any(c.field == "name" for c in map_headers(head[-1][1]))):
            break
    if not head:
        raise ImportFileError(
            f"{where}: the file is empty (expected a header row with 企业名称 and data rows)"
        )
    idx, columns = _find_header(head, where)
    for skipped_row, _cells in head[:idx]:
        report.warnings.append(RowIssue(skipped_row, "-", "title row above the header skipped"))
    n_cols = len(columns)
    total_lines = text.count("\n") + 1

    def gen() -> Iterator[_Record]:
        pending = [(s, s, c, None) for s, c in head[idx + 1 :]]
        for start, end, cells, reason in itertools.chain(pending, it):
            if cells is None:
                yield _Record(start, None, RowIssue(start, "-", reason or "malformed CSV"))
                continue
            if suspect_lines and any(line in suspect_lines for line in range(start, end + 1)):
                yield _Record(
                    start,
                    None,
                    RowIssue(
                        start,
                        "-",
                        f"row is UTF-8 while the file is {encoding} (mixed encodings); save as UTF-8",
                    ),
                )
                continue
            if len(cells) != n_cols:
                yield _Record(
                    start,
                    None,
                    RowIssue(start, "-", f"malformed CSV row: {len(cells)} fields, the header has {n_cols}"),
                )
                continue
            yield _Record(start, list(zip(columns, cells, strict=True)))

    # whole-text scans once, so the per-cell checks can be skipped when they cannot find anything
    checks = (bool(_SURROGATE.search(text)), bool(_CONTROL.search(text)) or _SEP in text)
    return _Source(columns, gen(), total_lines, *checks)


def _check_unpacked_size(path: Path, where: str) -> None:
    """Refuse a workbook whose parts declare more than :data:`MAX_XLSX_UNPACKED_BYTES` uncompressed (a zip
    bomb); Python's zipfile never inflates a part beyond its declared size, so the check bounds the real work."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            declared = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ImportFileError(f"{where}: not a readable .xlsx workbook ({exc})") from exc
    if declared > MAX_XLSX_UNPACKED_BYTES:
        raise ImportLimitError(
            f"{where}: the workbook unpacks to {declared / 2**20:,.0f} MB; the limit is "
            f"{MAX_XLSX_UNPACKED_BYTES // 2**20} MB (解压后体积超出上限)"
        )
    _check_runs(path, where)


def _check_runs(path: Path, where: str, chunk: int = 1 << 20) -> None:
    """Refuse a workbook with a part whose XML holds more than :data:`MAX_XLSX_RUN_BYTES` between two tags (one
    giant cell: a zip bomb under the size limit), found while inflating in 1 MB chunks — the parser never
    sees it. A stretch inside one chunk is shorter than the limit, so only the stretches that cross chunk
    boundaries are measured."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".xml"):
                continue
            run = 0
            with zf.open(info) as part:
                while block := part.read(chunk):
                    first = block.find(b"<")
                    if first < 0:
                        run += len(block)
                    elif run + first <= MAX_XLSX_RUN_BYTES:
                        run = len(block) - block.rfind(b"<") - 1
                    else:
                        run += first
                    if run > MAX_XLSX_RUN_BYTES:
                        raise ImportLimitError(
                            f"{where}: {info.filename} holds more than {MAX_XLSX_RUN_BYTES // 2**20} MB of text "
                            "in one cell; the limit is 32,767 characters a cell (单元格内容超出上限)"
                        )


def _read_xlsx(path: Path, report: ImportReport) -> _Source:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    where = path.name
    _check_unpacked_size(path, where)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"{where}: not a readable .xlsx workbook ({exc})") from exc
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise ImportFileError(
            f"{where}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})"
        ) from exc
    report.encoding = "xlsx"
    first_headers: list[Any] = []
    for ws in wb.worksheets:
        rows_iter = ws.iter_rows(values_only=True)
        head: list[tuple[int, list[Any]]] = []
        for n, values in enumerate(rows_iter, start=1):
            values = list(values)
            while values and values[-1] in (None, ""):
                values.pop()
            if values:
                head.append((n, values))
            if len(head) >= 10:
                break
        if not head:
            continue
        first_headers = first_headers or head[0][1]
        try:
            idx, columns = _find_header(head, where)
        except ImportLimitError:
            wb.close()
            raise
        except ImportFileError:
            continue
        header_row = head[idx][0]
        for skipped_row, _ in head[:idx]:
            report.warnings.append(RowIssue(skipped_row, "-", "title row above the header skipped"))

        def gen(
            ws: Any = ws, columns: list[_Column] = columns, header_row: int = header_row
        ) -> Iterator[_Record]:
            try:
                for n, values in enumerate(
                    ws.iter_rows(min_row=header_row + 1, values_only=True), start=header_row + 1
                ):
                    values = list(values)
                    if all(v in (None, "") for v in values):
                        continue
                    cols = list(columns)
                    for j in range(len(cols), len(values)):  # cells right of the header: kept, never dropped
                        if values[j] not in (None, ""):
                            cols.append(_Column(j, f"column_{j + 1}", None))
                    yield _Record(n, [(c, values[c.index] if c.index < len(values) else None) for c in cols])
            finally:
                wb.close()

        total = (ws.max_row - header_row) if ws.max_row else None
        return _Source(columns, gen(), total)
    wb.close()
    if not first_headers:
        raise ImportFileError(
            f"{where}: the workbook is empty (expected a header row with 企业名称 and data rows)"
        )
    raise _missing_name_error(first_headers, where)


def _read_jsonl(data: bytes, path: Path, report: ImportReport) -> _Source:
    where = path.name
    text, encoding, suspect_lines = _decode(data, where)
    report.encoding = encoding
    lines = text.split("\n")
    if not any(line.strip() for line in lines):
        raise ImportFileError(f"{where}: the file is empty (expected one JSON object per line)")
    if text.lstrip().startswith("[") and path.suffix.lower() == ".json":
        raise ImportFileError(f"{where}: a JSON array; expected JSON lines (one object per line, .jsonl)")
    cache: dict[tuple[str, ...], list[_Column]] = {}
    seen_name = False
    first_keys: list[str] = []
    for line in lines:  # the name key must exist somewhere, like a CSV header
        if line.strip():
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict):
                first_keys = first_keys or list(obj)
                if any(c.field == "name" for c in map_headers(list(obj))):
                    seen_name = True
                    break
    if not seen_name:
        raise _missing_name_error(first_keys, where)

    def gen() -> Iterator[_Record]:
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if n in suspect_lines:
                yield _Record(
                    n, None, RowIssue(n, "-", f"line is UTF-8 while the file is {encoding} (mixed encodings)")
                )
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                yield _Record(n, None, RowIssue(n, "-", f"not valid JSON: {exc}", line[:80]))
                continue
            except RecursionError:
                issue = RowIssue(n, "-", "not valid JSON: nested too deeply to parse", line[:80])
                yield _Record(n, None, issue)
                continue
            if not isinstance(obj, dict):
                yield _Record(
                    n, None, RowIssue(n, "-", f"expected a JSON object, received {type(obj).__name__}")
                )
                continue
            keys = tuple(obj)
            if len(keys) > MAX_COLUMNS:
                issue = RowIssue(n, "-", f"{len(keys):,} keys; the limit is {MAX_COLUMNS} (字段数超出上限)")
                yield _Record(n, None, issue)
                continue
            cols = cache.get(keys)
            if cols is None:
                cols = cache[keys] = map_headers(list(keys))
                if sum(1 for c in cols if c.field is None) > MAX_EXTRA_COLUMNS:
                    del cache[keys]
                    reason = f"more than {MAX_EXTRA_COLUMNS} unrecognised keys (未识别字段超出上限)"
                    issue = RowIssue(n, "extra", reason)
                    yield _Record(n, None, issue)
                    continue
            yield _Record(n, [(c, obj[k]) for c, k in zip(cols, keys, strict=True)])

    return _Source(map_headers(first_keys), gen(), len(lines), bool(_SURROGATE.search(text)))


def _open(path: Path, report: ImportReport) -> _Source:
    if not path.exists():
        raise ImportFileError(f"{path}: file not found")
    if path.is_dir():
        raise ImportFileError(f"{path}: is a directory, expected a .csv, .xlsx or .jsonl file")
    suffix = path.suffix.lower()
    if suffix in _SUFFIXES_XLSX:
        report.format = "xlsx"
        if path.stat().st_size == 0:
            raise ImportFileError(f"{path.name}: the file is empty (0 bytes)")
        return _read_xlsx(path, report)
    if suffix == ".xls":
        raise ImportFileError(f"{path.name}: legacy .xls is not supported; save it as .xlsx or .csv")
    data = path.read_bytes()
    if not data.strip():
        raise ImportFileError(
            f"{path.name}: the file is empty (0 bytes of data; expected a header row with 企业名称)"
        )
    if b"\x00" in data[:65536] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(
            f"{path.name}: looks like a binary file, not text (NUL bytes); expected CSV or JSON lines "
            "(UTF-8 / GBK) with a 企业名称 column"
        )
    if suffix in _SUFFIXES_JSONL:
        report.format = "jsonl"
        return _read_jsonl(data, path, report)
    if suffix in _SUFFIXES_CSV or not suffix:
        report.format = "csv"
        return _read_csv(data, path, report)
    raise ImportFileError(
        f"{path.name}: unsupported file type {suffix!r}; expected .csv, .tsv, .xlsx or .jsonl"
    )
