"""Matcher-backed ranking systems for ``chainmatch evaluate`` (full, hybrid, dense, bm25-matcher, graph, ablations).

Each system is a callable ``rank(query: evaluation.cases.CaseQuery, k: int) -> [(doc_id, score[, why])]`` whose
doc ids are the corpus enterprise ids (``ashare-<code>``). The matcher lead fills this module in; until then it
returns no systems and the evaluation runs the baselines only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from evaluation.cases import CaseQuery
from matcher.records import Enterprise
from matcher.settings import Settings

logger = logging.getLogger(__name__)

RankFn = Callable[[CaseQuery, int], list[tuple[Any, ...]]]


def matcher_systems(corpus: list[Enterprise], settings: Settings) -> dict[str, RankFn]:
    """Ranking systems built on the matcher over ``corpus``, by name.

    Args:
        corpus: the enterprises to rank (ids ``ashare-<code>`` for the A-share evaluation corpus).
        settings: product settings (embedder, cache dir …).

    Returns:
        Name → ranking callable; empty until the matcher systems are wired in.
    """
    logger.warning("matcher systems not available yet: evaluating the baselines only (%d corpus docs)", len(corpus))
    return {}
