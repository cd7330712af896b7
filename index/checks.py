"""Boundary checks shared by the vector backends: float32 (n, dim) matrices and unique string ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from index.errors import IndexDimensionError


def as_matrix(x: Any, dim: int, what: str) -> np.ndarray:
    """``x`` as a C-contiguous float32 ``(n, dim)`` array (a single vector becomes one row).

    Raises:
        ValueError: not 1-D/2-D, or NaN/inf values.
        IndexDimensionError: the second dimension is not ``dim``.
    """
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n, {dim}), received shape {arr.shape}")
    if arr.shape[1] != dim:
        raise IndexDimensionError(dim, arr.shape[1], what)
    if arr.size and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):  # NaN/inf propagate; no copy
        raise ValueError(f"{what} contain NaN or infinite values")
    return np.ascontiguousarray(arr)


def id_list(ids: Sequence[str], n: int) -> list[str]:
    """``ids`` as a list of ``n`` unique strings (TypeError for a bare str, ValueError otherwise)."""
    if isinstance(ids, str):
        raise TypeError("ids must be a sequence of strings, received one str (wrap it in a list)")
    out = [str(i) for i in ids]
    if len(out) != n:
        raise ValueError(f"{len(out)} ids for {n} vectors")
    if len(set(out)) != len(out):
        raise ValueError("ids must be unique within one call")
    return out
