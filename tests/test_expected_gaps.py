"""Reviewed expectations (issue #16 item 5): each demo region's top-5 gaps as a 招商 reviewer signed them.

``tests/fixtures/expected_gaps/<region>.yaml`` lists the signed links (``top5``), each with a one-line reason, and
any known wrong row the diagnosis still ranks there (``rejected``, with why it is wrong). A change in the top 5
fails here until the file is reviewed again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from matcher.knowledge.catalogue import default_catalogue
from matcher.knowledge.gaps import diagnose
from matcher.knowledge.regions import default_regions

FIXTURES = Path(__file__).parent / "fixtures" / "expected_gaps"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_every_demo_region_has_a_reviewed_file():
    assert {p.stem for p in FIXTURES.glob("*.yaml")} == {r.id for r in default_regions()}


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.stem)
def test_top5_gaps_are_the_reviewed_ones(path: Path):
    spec = _load(path)
    cat, book = default_catalogue(), default_regions()
    top5 = [g.link_id for g in diagnose(book.get(spec["region"]), cat, book=book).gaps[:5]]
    signed = [e["link"] for e in spec["top5"]]
    rejected = [e["link"] for e in spec.get("rejected", [])]
    assert all(e["reason"].strip() for e in spec["top5"] + spec.get("rejected", []))
    assert set(signed) <= set(top5), f"signed gaps left the top 5: {set(signed) - set(top5)}; top 5 now {top5}"
    assert set(top5) - set(signed) <= set(rejected), f"unreviewed gaps in the top 5: {set(top5) - set(signed)}"
