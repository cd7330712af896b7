"""Import enterprise lists (register exports, spreadsheets, JSON lines) into the store.

Formats, by extension: ``.csv`` / ``.tsv`` / ``.txt`` (UTF-8, UTF-8 with BOM, UTF-16 with BOM, GBK / GB18030 or
Big5 detected with charset-normalizer), ``.xlsx`` / ``.xlsm`` (openpyxl, read-only; the first sheet that has an
enterprise-name column) and ``.jsonl`` / ``.ndjson`` (one object per line, keys mapped like column headers).

Columns are mapped from the usual Chinese export headers (企业名称, 统一社会信用代码, 法定代表人, 注册资本, 成立日期,
所属省份, 所属城市, 所属区县, 国标行业门类/大类/中类/小类, 经营范围, 企业规模, 参保人数, 主营产品, 股票代码, 曾用名, 企业标签 …)
and their English equivalents (name, credit_code, province, city, products …); see :data:`COLUMNS`. Title rows
above the header are skipped. Unknown columns are kept in ``Enterprise.extra`` under their header, and known
fields that the profile has no attribute for (法定代表人, 成立日期, 企业规模, 国标行业门类) under an English key
(``legal_representative``, ``founded``, ``size``, ``gbt_section``) — nothing is silently dropped.

Rules:

- Text is normalised with :mod:`matcher.text` (OpenCC t2s, full → half width, brackets); ``name`` keeps the
  official name, ``normalized_name`` gets the matching key; provinces are written in short form (新疆, 江苏).
- Row ids: the 统一社会信用代码 when present, else ``ent-`` + a stable hash of normalised name + province.
- 主营产品 ``"多晶硅:0.6;硅片:0.3"``, ``"多晶硅(60%)、硅片"`` or ``"多晶硅、硅片"`` → products with revenue shares.
- Each row is rejected, with its row number, field and reason, when: the name is empty; a field is too long
  (:data:`MAX_LENGTH`, e.g. 200 characters for names, 20,000 for 经营范围); the credit code fails GB 32100-2015;
  its bytes are not valid in the file's encoding (mixed encodings); a CSV row has the wrong number of fields or
  broken quoting; a JSON line is not an object; it duplicates an earlier row with different values.
- Duplicates within a file (same credit code, else same normalised name + province): an identical repeat is
  merged into the first row (counted in ``duplicates``, listed as a warning); a repeat with different values is
  rejected as ``duplicate of row N``.
- Cells that look like spreadsheet formulas (``=``, ``@``, or ``+`` / ``-`` not followed by a number) are stored
  as plain text, never evaluated, listed in ``extra["formula_cells"]`` and reported as warnings.
- ``atomic=True`` (default): if any row is rejected nothing is written and the store stays exactly as it was
  (one transaction; on SQLite it holds the write lock for the whole import); ``atomic=False``: the good rows are
  written, committed batch by batch, and the bad ones reported.
- Row numbers are the line (CSV, JSONL) or sheet row (XLSX) where the record starts, header = its own row, so
  they match what a spreadsheet shows.

Every imported enterprise is mapped onto chain links (:class:`matcher.knowledge.mapping.LinkMapper`) before the upsert.
Good rows are mapped and written in batches of 5,000 inside one transaction, so memory stays flat and an atomic
import can still roll everything back; from the second batch on, mapping runs in a forked worker process while
this one parses and writes (``parallel=False`` keeps it in-process). Mapping results are memoised per distinct
(products, scope, GB/T codes), and the mapper itself caches per product phrase.

Modules: :mod:`~matcher.store.importer.formats` (readers), :mod:`~matcher.store.importer.rows` (header mapping,
row building), :mod:`~matcher.store.importer.cells` (cell parsers), :mod:`~matcher.store.importer.pipeline`
(mapping and upserts) and :mod:`~matcher.store.importer.report` (report and rejects file).
"""

from __future__ import annotations

from matcher.store.importer.cells import enterprise_id, parse_products
from matcher.store.importer.pipeline import default_mapper, import_file, read_enterprises
from matcher.store.importer.report import ImportReport, RowIssue, write_rejects
from matcher.store.importer.rows import (
    COLUMNS,
    MAX_COLUMNS,
    MAX_EXTRA_COLUMNS,
    MAX_LENGTH,
    MAX_XLSX_RUN_BYTES,
    MAX_XLSX_UNPACKED_BYTES,
    map_headers,
)

__all__ = [
    "COLUMNS",
    "MAX_COLUMNS",
    "MAX_EXTRA_COLUMNS",
    "MAX_LENGTH",
    "MAX_XLSX_RUN_BYTES",
    "MAX_XLSX_UNPACKED_BYTES",
    "ImportReport",
    "RowIssue",
    "default_mapper",
    "enterprise_id",
    "import_file",
    "map_headers",
    "parse_products",
    "read_enterprises",
    "write_rejects",
]
