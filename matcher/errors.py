"""Errors raised by the matcher.

    ChainMatchError
    ├── CatalogueError          a chain file is malformed (file, entry, problem)
    ├── UnknownChainError       no chain by that id / name
    ├── UnknownLinkError        no link by that id / name
    ├── UnknownRegionError      no region by that id / name
    ├── UnknownEnterpriseError  no enterprise by that id / name
    ├── RegionFileError         a region file is malformed
    ├── ImportFileError         an import file cannot be read at all (encoding, format, missing column)
    ├── InvalidRequestError     a recommendation request is out of range (field, value, reason)
    └── NotFittedError          a model used before fit / load
"""

from __future__ import annotations


class ChainMatchError(Exception):
    """Base class of every error the product raises on purpose."""

    code = "chainmatch_error"


class CatalogueError(ChainMatchError):
    code = "catalogue_invalid"

    def __init__(self, file: str, entry: str, problem: str) -> None:
        self.file, self.entry, self.problem = file, entry, problem
        super().__init__(f"{file}: {entry}: {problem}")


class UnknownChainError(ChainMatchError, KeyError):
    code = "unknown_chain"

    def __init__(self, key: str, valid: list[str] | None = None) -> None:
        self.key = key
        hint = f"; known chains: {', '.join(valid[:40])}" if valid else ""
        super().__init__(f"unknown chain '{key}'{hint}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownLinkError(ChainMatchError, KeyError):
    code = "unknown_link"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"unknown link '{key}' (see `chainmatch catalog show CHAIN` for link ids)")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownRegionError(ChainMatchError, KeyError):
    code = "unknown_region"

    def __init__(self, key: str, valid: list[str] | None = None) -> None:
        self.key = key
        hint = f"; known regions: {', '.join(valid[:40])}" if valid else ""
        super().__init__(f"unknown region '{key}'{hint}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownEnterpriseError(ChainMatchError, KeyError):
    code = "unknown_enterprise"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"unknown enterprise '{key}'")

    def __str__(self) -> str:
        return str(self.args[0])


class RegionFileError(ChainMatchError):
    code = "region_file_invalid"

    def __init__(self, file: str, entry: str, problem: str) -> None:
        self.file, self.entry, self.problem = file, entry, problem
        super().__init__(f"{file}: {entry}: {problem}")


class ImportFileError(ChainMatchError):
    code = "import_file_invalid"


class ImportLimitError(ImportFileError):
    """A file over a size limit (columns, unknown columns, unpacked size): refused before its rows are read."""


class InvalidRequestError(ChainMatchError, ValueError):
    code = "invalid_request"

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"{field}={value!r}: {reason}")


class QueryTimeoutError(ChainMatchError, TimeoutError):
    """A store query ran past the statement timeout and was cancelled (the request's work is bounded)."""

    code = "query_timeout"


class NotFittedError(ChainMatchError, RuntimeError):
    code = "not_fitted"
