"""Errors raised by the index package.

VectorIndexError
├── IndexDimensionError   a vector's dimension differs from the index's (expected vs received)
├── IndexManifestError    a saved index is inconsistent: checksum, embedder id, dimension, count
├── IndexNotFoundError    no saved index at a path (also a FileNotFoundError)
├── IndexBackendError     the configured backend cannot be used (e.g. pymilvus not installed)
└── IndexTrainingError    a trained factory (IVF, PQ) got too few vectors to train on
"""

from __future__ import annotations


class VectorIndexError(Exception):
    """Base class of the index package's errors."""

    code = "index_error"


class IndexDimensionError(VectorIndexError, ValueError):
    """Vectors of the wrong dimension were given to an index."""

    code = "index_dimension"

    def __init__(self, expected: int, received: int, what: str = "vectors") -> None:
        self.expected, self.received = expected, received
        super().__init__(f"{what} have dimension {received}, expected {expected}")


class IndexManifestError(VectorIndexError):
    """A saved index does not match its manifest or the caller's expectation."""

    code = "index_manifest"


class IndexNotFoundError(VectorIndexError, FileNotFoundError):
    """No saved index where one was expected."""

    code = "index_not_found"

    def __init__(self, path: object, hint: str = "") -> None:
        self.path = path
        super().__init__(f"no saved index at {path}{'; ' + hint if hint else ''}")

    def __str__(self) -> str:
        return str(self.args[0])


class IndexTrainingError(VectorIndexError, ValueError):
    """A factory that needs training got too few vectors."""

    code = "index_training"


class IndexBackendError(VectorIndexError, RuntimeError):
    """The vector backend cannot be used here (its package is missing or its server unreachable)."""

    code = "index_backend"
