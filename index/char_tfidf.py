"""Character n-gram TF-IDF over short documents, with string ids, filters and upserts.

Chinese product names share characters more reliably than words (锂, 铝, 硅 name the chains; jieba splits
磷酸铁锂正极材料 one way in a query and another in a profile), so a char 1–3-gram TF-IDF is a strong and
robust text signal. The vocabulary and IDF are fixed at :meth:`CharTfidfIndex.build`; upserts transform new
texts with them and append rows in small blocks (the old row is retired), so a write costs the new rows only.
Texts come already normalised from the caller (the matcher owns Chinese text handling).

Example:
    >>> idx = CharTfidfIndex().build(["a", "b"], ["多晶硅 光伏", "电解铝 铝棒"])
    >>> idx.search("铝棒", k=1)   # [("b", 0.6…)]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

__all__ = ["CharTfidfIndex"]


class CharTfidfIndex:
    """Cosine similarity of ``char_wb`` n-gram TF-IDF vectors (scikit-learn's, counted by
    :class:`~index._char_wb.CharWbVectorizer`), sublinear tf.

    Args:
        ngram_range: character n-gram lengths.
        max_blocks: appended blocks kept before they are merged into one matrix.
    """

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), max_blocks: int = 8) -> None:
        self.ngram_range = ngram_range
        self.max_blocks = max_blocks
        self._ids: list[str | None] = []
        self._row: dict[str, int] = {}
        self._blocks: list[sp.csr_matrix] = []
        self._matrix: sp.csr_matrix | None = None

    def __len__(self) -> int:
        return len(self._row)

    def build(self, ids: Sequence[str], texts: Sequence[str]) -> CharTfidfIndex:
        """Fit the vocabulary and IDF on ``texts`` and index them under ``ids``."""
        from index._char_wb import CharWbVectorizer

        if len(ids) != len(texts):
            raise ValueError(f"ids and texts differ in length: {len(ids)} != {len(texts)}")
        self.vectorizer_ = CharWbVectorizer(
            analyzer="char_wb", ngram_range=self.ngram_range, sublinear_tf=True, min_df=1, dtype=np.float32
        )
        m = self.vectorizer_.fit_transform([t or " " for t in texts]).tocsr()
        self._ids = list(ids)
        self._row = {d: i for i, d in enumerate(ids)}
        self._blocks = [m]
        self._matrix = m
        return self

    def upsert(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Add or replace documents (the vocabulary stays the one fitted at :meth:`build`)."""
        if not ids:
            return
        self._check()
        m = self.vectorizer_.transform([t or " " for t in texts]).tocsr()
        start = len(self._ids)
        for d in ids:
            old = self._row.get(d)
            if old is not None:
                self._ids[old] = None
        for j, d in enumerate(ids):
            self._row[d] = start + j
        self._ids.extend(ids)
        self._blocks.append(m)
        self._matrix = None
        if len(self._blocks) > self.max_blocks:
            self._blocks = [sp.vstack(self._blocks, format="csr")]

    def remove(self, ids: Sequence[str]) -> None:
        """Retire documents (their rows stop matching)."""
        for d in ids:
            old = self._row.pop(d, None)
            if old is not None:
                self._ids[old] = None

    def _full(self) -> sp.csr_matrix:
        if self._matrix is None:
            self._blocks = [sp.vstack(self._blocks, format="csr")] if len(self._blocks) > 1 else self._blocks
            self._matrix = self._blocks[0]
        return self._matrix

    def query_vector(self, text: str) -> sp.csr_matrix:
        """The query's TF-IDF row (1 × vocabulary)."""
        self._check()
        return self.vectorizer_.transform([text or " "]).tocsr()

    def scores(self, text: str, ids: Sequence[str]) -> np.ndarray:
        """Cosine of the query with each of ``ids`` (0 for an unknown id)."""
        self._check()
        q = self.query_vector(text)
        rows = np.array([self._row.get(d, -1) for d in ids], dtype=np.int64)
        out = np.zeros(len(ids), dtype=np.float32)
        ok = rows >= 0
        if ok.any():
            out[ok] = np.asarray((self._full()[rows[ok]] @ q.T).todense()).ravel()
        return out

    def search(self, text: str, k: int, allow: set[str] | None = None) -> list[tuple[str, float]]:
        """The ``k`` most similar live documents (optionally only ids in ``allow``), best first."""
        self._check()
        q = self.query_vector(text)
        s = np.asarray((self._full() @ q.T).todense()).ravel()
        live = np.array([d is not None and (allow is None or d in allow) for d in self._ids], dtype=bool)
        return [(self._ids[i], float(s[i])) for i in _top(s, live, k)]  # type: ignore[misc]

    def search_rows(self, text: str, k: int, row_of: dict[str, int], mask: np.ndarray) -> list[tuple[int, float]]:
        """Like :meth:`search` but in the caller's row space: ``row_of`` maps ids to caller rows and ``mask``
        (over caller rows) says which are allowed. Returns (caller row, score), best first."""
        self._check()
        q = self.query_vector(text)
        s = np.asarray((self._full() @ q.T).todense()).ravel()
        caller = self._caller_rows(row_of)
        ok = caller >= 0
        ok[ok] = mask[caller[ok]]
        return [(int(caller[i]), float(s[i])) for i in _top(s, ok, k)]

    def caller_scores(self, text: str, row_of: dict[str, int], n: int) -> np.ndarray:
        """Cosine of the query with every live document, placed at the caller's rows (``row_of``: id → row
        in ``range(n)``); rows the index does not hold score 0."""
        self._check()
        q = self.query_vector(text)
        s = np.asarray((self._full() @ q.T).todense()).ravel()
        caller = self._caller_rows(row_of)
        ok = (caller >= 0) & (caller < n)
        out = np.zeros(n, dtype=np.float32)
        out[caller[ok]] = s[ok]
        return out

    def _caller_rows(self, row_of: dict[str, int]) -> np.ndarray:
        cached = self.__dict__.get("_caller_cache")  # (the caller's map itself, live ids at the time, rows)
        if cached is not None and cached[0] is row_of and cached[1] == self._version():
            return cached[2]
        caller = np.array([row_of.get(d, -1) if d is not None else -1 for d in self._ids], dtype=np.int64)
        self.__dict__["_caller_cache"] = (row_of, self._version(), caller)
        return caller

    def _version(self) -> tuple[int, int]:
        return len(self._ids), len(self._row)

    def _check(self) -> None:
        if not hasattr(self, "vectorizer_"):
            raise RuntimeError("CharTfidfIndex.build() must run before searches or upserts")


def _top(scores: np.ndarray, allowed: np.ndarray, k: int) -> list[int]:
    """Rows of the ``k`` best positive scores among ``allowed`` rows, best first (ties by row)."""
    s = np.where(allowed, scores, -1.0)
    k = min(k, int(allowed.sum()))
    if k <= 0:
        return []
    top = np.argpartition(-s, k - 1)[:k]
    top = top[np.lexsort((top, -s[top]))]
    return [int(i) for i in top if s[i] > 0]
