"""Mapping quality: hand-labelled product -> link pairs (:func:`load_labels`) and precision/recall of the
:class:`~matcher.knowledge.mapping.LinkMapper` on them (:func:`evaluate_mapping`, ``chainmatch mapping eval``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matcher.errors import ImportFileError
from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.mapping import LinkMapper
from matcher.text import normalize_text

__all__ = ["LinkLabel", "MappingEvaluation", "evaluate_mapping", "is_catalogue_term", "load_labels"]

NONE_LABEL = "NONE"


@dataclass(frozen=True)
class LinkLabel:
    """One hand label: a product phrase and the link ids it belongs to (empty = no catalogue link)."""

    product: str
    gold: frozenset[str]
    note: str = ""


def load_labels(path: str | Path, catalogue: Catalogue | None = None) -> list[LinkLabel]:
    """Read a ``product<TAB>gold<TAB>note`` file (gold = link id, ``a|b`` if either is right, or ``NONE``).

    Lines starting with ``#`` and blank lines are skipped. With a catalogue, every gold id must exist in it.

    Raises:
        ImportFileError: a line without a gold column, or gold ids the catalogue does not know.
    """
    path = Path(path)
    labels: list[LinkLabel] = []
    unknown: list[str] = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
            raise ImportFileError(
                f"{path}:{no}: expected 'product<TAB>gold link id or NONE<TAB>note', got {line!r}"
            )
        gold_col = cols[1].strip()
        gold = (
            frozenset()
            if gold_col == NONE_LABEL
            else frozenset(g.strip() for g in gold_col.split("|") if g.strip())
        )
        if catalogue is not None:
            unknown += [f"{path.name}:{no}:{g}" for g in sorted(gold) if g not in catalogue.links]
        labels.append(LinkLabel(cols[0].strip(), gold, cols[2].strip() if len(cols) > 2 else ""))
    if unknown:
        raise ImportFileError(
            "gold link ids not in the catalogue (expected ids of `chainmatch catalog` links): "
            + ", ".join(unknown[:20])
        )
    return labels


@dataclass
class MappingEvaluation:
    """Top-1 precision / recall of a mapper against hand labels, with the errors listed."""

    n: int
    n_positive: int
    predicted: int
    correct: int
    wrong_link: list[tuple[str, str, str]]  # (product, predicted, gold)
    false_positive: list[tuple[str, str]]  # (product, predicted) for NONE labels
    missed: list[tuple[str, str]]  # (product, gold) with no prediction

    @property
    def precision(self) -> float:
        """Correct top-1 links / phrases given any link."""
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        """Correct top-1 links / phrases whose gold is a link."""
        return self.correct / self.n_positive if self.n_positive else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def is_catalogue_term(catalogue: Catalogue, text: str) -> bool:
    """True when ``text`` is verbatim (after normalisation) a link name, alias or typical product."""
    key = normalize_text(text)
    return any(normalize_text(t) == key for link in catalogue.links.values() for t in link.terms)


def evaluate_mapping(
    mapper: LinkMapper, labels: Sequence[LinkLabel], exclude_catalogue_terms: bool = False
) -> MappingEvaluation:
    """Score ``mapper.map_product`` top-1 against labels (a NONE label given a link is a false positive).

    Args:
        mapper: the mapper under test.
        labels: hand labels (:func:`load_labels`).
        exclude_catalogue_terms: drop labels whose product is verbatim a catalogue term (those are trivially
            mapped, so this measures how the mapper generalises beyond the catalogue's own wording).
    """
    if exclude_catalogue_terms:
        terms = {normalize_text(t) for link in mapper.catalogue.links.values() for t in link.terms}
        labels = [x for x in labels if normalize_text(x.product) not in terms]
    res = MappingEvaluation(len(labels), sum(1 for x in labels if x.gold), 0, 0, [], [], [])
    predictions = mapper.map_products([x.product for x in labels])
    for label, matches in zip(labels, predictions, strict=True):
        top = matches[0].link_id if matches else None
        gold = "|".join(sorted(label.gold)) or NONE_LABEL
        if top is not None:
            res.predicted += 1
            if top in label.gold:
                res.correct += 1
            elif label.gold:
                res.wrong_link.append((label.product, top, gold))
            else:
                res.false_positive.append((label.product, top))
        elif label.gold:
            res.missed.append((label.product, gold))
    return res
