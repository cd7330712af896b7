"""What an import reports: rejected rows and warnings (:class:`RowIssue`), counts (:class:`ImportReport`) and the
rejects file (:func:`write_rejects`)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass
from matcher.store.importer.cells import _is_formula

__all__ = ["ImportReport", "RowIssue"]

@dataclass
class RowIssue:
    """One problem with one row: ``row`` as a spreadsheet shows it, ``field`` the column header (or ``-``)."""

    row: int
    field: str
    reason: str
    value: str = ""

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.reason}"


@dataclass
class ImportReport:
    """The outcome of :func:`import_file`.

    ``inserted`` / ``updated`` / ``unchanged`` count stored rows; ``rejected`` counts rejected input rows;
    ``duplicates`` counts identical repeated rows merged into their first occurrence. ``committed`` is False when
    nothing was written (an atomic import with rejects).
    """

    path: str
    format: str
    encoding: str | None = None
    tenant: str | None = None
    atomic: bool = True
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # of ``unchanged``: rows skipped by their source hash, never rebuilt (importer.skip)
    duplicates: int = 0
    merged: int = 0  # stored rows of another source that this import's rows were merged into (field by field)
    conflicts: dict[str, int] = field(default_factory=dict)  # field -> rows where the two sources disagreed
    committed: bool = False
    rejects: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    changed_ids: list[str] = field(default_factory=list)
    change_seqs: list[int] = field(default_factory=list)  # change-feed entries appended (see UpsertSummary)
    columns: dict[str, str] = field(default_factory=dict)  # header -> canonical field (or "extra")
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # read / map / write seconds

    @property
    def rejected(self) -> int:
        return len({r.row for r in self.rejects})

    @property
    def ok(self) -> bool:
        return not self.rejects

    def summary(self) -> str:
        """One line: what was read, written and rejected."""
        stored = self.inserted + self.updated + self.unchanged
        if not self.committed:
            state = "NOTHING written (atomic import with rejected rows)"
        elif self.rejected and not stored:
            state = f"NOTHING written (all {self.rejected} rows rejected)"
        elif self.rejected:
            state = f"written {stored} rows, rejected {self.rejected}"
        else:
            state = "written"
        return (
            f"{self.path}: {self.rows} rows ({self.format}, {self.encoding or '-'}) → "
            f"inserted {self.inserted}, updated {self.updated}, unchanged {self.unchanged}"
            f"{f' ({self.skipped} skipped by hash)' if self.skipped else ''}, "
            f"rejected {self.rejected}, merged duplicates {self.duplicates}, warnings {len(self.warnings)}; "
            f"{state}; {self.seconds:.1f} s"
            + (f"\nmerge report: merged into records of other sources {self.merged}; conflicting fields kept from "
               f"the more trusted source: {self._conflicts()}" if self.merged or self.conflicts else "")
        )

    def _conflicts(self) -> str:
        return ", ".join(f"{f} ×{n}" for f, n in sorted(self.conflicts.items(), key=lambda x: -x[1])) or "none"


def write_rejects(path: str | Path, rejects: list[RowIssue]) -> Path:
    """Write rejected rows as CSV (UTF-8 with BOM so spreadsheet programs open it): row, field, reason, value.

    Values that look like formulas are prefixed with ``'`` so a spreadsheet shows them as text.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "field", "reason", "value"])
        for r in sorted(rejects, key=lambda r: (r.row, r.field)):
            value = r.value[:200]
            if _is_formula(value):
                value = "'" + value
            w.writerow([r.row, "'" + r.field if _is_formula(r.field) else r.field, r.reason, value])
    return path
