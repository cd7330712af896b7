"""Errors raised by the offline evaluation.

    EvaluationError (ValueError)
    ├── CaseFileError          a deals/cases file cannot be read (file, line, problem)
    ├── UnknownMetricError     a metric string that is not one of the supported metrics
    ├── QueryIdMismatchError   qrels and run do not cover the same query ids
    ├── UnknownSystemError     a system name that is not registered
    └── SystemOutputError      a ranking system returned something that is not a ranking

The package imports nothing from the rest of the project, so these do not derive from
``matcher.errors.ChainMatchError``; the CLI maps both families to a clean message and exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class EvaluationError(ValueError):
    """Base class of every error the evaluation package raises on purpose."""


class CaseFileError(EvaluationError):
    """A cases file is missing or malformed."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file, self.line, self.problem = file, line, problem
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {problem}")


class UnknownMetricError(EvaluationError):
    """A metric name outside the supported set."""

    def __init__(self, name: str, valid: Iterable[str]) -> None:
        self.name = name
        super().__init__(f"unknown metric '{name}'; expected one of: {', '.join(valid)} (optionally with @k)")


class QueryIdMismatchError(EvaluationError):
    """Qrels and run are keyed by different query ids."""

    def __init__(self, missing_in_run: list[str], missing_in_qrels: list[str]) -> None:
        self.missing_in_run, self.missing_in_qrels = missing_in_run, missing_in_qrels
        parts = []
        if missing_in_run:
            parts.append(f"{len(missing_in_run)} qrels queries have no run entry (e.g. {missing_in_run[:5]})")
        if missing_in_qrels:
            parts.append(
                f"{len(missing_in_qrels)} run queries have no qrels entry (e.g. {missing_in_qrels[:5]})"
            )
        super().__init__("qrels and run must have the same query ids: " + "; ".join(parts))


class UnknownSystemError(EvaluationError):
    """A ranking system name that is not available."""

    def __init__(self, names: Iterable[str], valid: Iterable[str]) -> None:
        self.names = list(names)
        super().__init__(
            f"unknown system(s): {', '.join(self.names)}; "
            f"expected any of: {', '.join(sorted(valid)) or '(none)'}"
        )


class SystemOutputError(EvaluationError):
    """A ranking system returned a malformed ranking."""

    def __init__(self, system: str, case_id: str, problem: str) -> None:
        self.system, self.case_id = system, case_id
        super().__init__(f"system '{system}' on case {case_id}: {problem}")
