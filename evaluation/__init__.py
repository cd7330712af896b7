"""Offline evaluation of enterprise rankings on real deals: cases, metrics, significance, baselines, reports.

The harness (`harness`, `results`, `report`, `metrics`, `significance`) works on plain dicts and callables, so
any ranking system can be measured; `cases` (deal cases, masking) and `baselines` use only `matcher.text`.
The systems under test built on the matcher live in `systems` (with `requests`: a case as a matcher request)
and the reranker's training pools in `training`; they are imported on demand, not from here.
Layering: service -> evaluation -> matcher.
"""

from __future__ import annotations

from evaluation.cases import Case, CaseQuery, build_qrels, load_cases, mask_names, split_evaluable
from evaluation.errors import (
    CaseFileError,
    EvaluationError,
    QueryIdMismatchError,
    SystemOutputError,
    UnknownMetricError,
    UnknownSystemError,
)
from evaluation.harness import run_evaluation
from evaluation.metrics import catalogue_coverage, evaluate, evaluate_per_query, intra_list_diversity
from evaluation.report import write_outputs
from evaluation.results import EvaluationResult
from evaluation.significance import paired_t_test, randomization_test

__all__ = [
    "Case",
    "CaseFileError",
    "CaseQuery",
    "EvaluationError",
    "EvaluationResult",
    "QueryIdMismatchError",
    "SystemOutputError",
    "UnknownMetricError",
    "UnknownSystemError",
    "build_qrels",
    "catalogue_coverage",
    "evaluate",
    "evaluate_per_query",
    "intra_list_diversity",
    "load_cases",
    "mask_names",
    "paired_t_test",
    "randomization_test",
    "run_evaluation",
    "split_evaluable",
    "write_outputs",
]
