"""A ``char_wb`` TF-IDF vectorizer that counts each distinct word's n-grams once.

scikit-learn's ``char_wb`` analyzer cuts every whitespace-separated word into padded character n-grams and
looks each one up in the vocabulary, document by document, in Python. Profile passages share most of their
words (主营:, 有色金属压延加工, the place names), so :class:`CharWbVectorizer` keeps, per word, the
vocabulary columns of its n-grams and builds a document's counts from those. The matrix is the one
:class:`~sklearn.feature_extraction.text.TfidfVectorizer` makes — same vocabulary, same column order, same
counts and floats (``tests/test_char_tfidf.py``); any other configuration runs scikit-learn's own code.
"""

from __future__ import annotations

import array
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

try:  # scikit-learn ≥ 1.8 returns sparse arrays or matrices as configured
    from sklearn.feature_extraction.text import _align_api_if_sparse
except ImportError:  # pragma: no cover - older scikit-learn: csr_matrix
    _align_api_if_sparse = None

__all__ = ["CharWbVectorizer"]

MAX_CACHED_WORDS = 500_000


class CharWbVectorizer(TfidfVectorizer):
    """:class:`~sklearn.feature_extraction.text.TfidfVectorizer` counting each word's n-gram columns once."""

    def _count_vocab(self, raw_documents, fixed_vocab):  # noqa: ANN001, ANN202 — scikit-learn's signature
        if not self._memoisable():
            return super()._count_vocab(raw_documents, fixed_vocab)
        if fixed_vocab:
            vocabulary = self.vocabulary_
            words = self.__dict__.get("_word_cols")
            if words is None or words[0] is not vocabulary or len(words[1]) > MAX_CACHED_WORDS:
                words = (vocabulary, {})
                self.__dict__["_word_cols"] = words
            cols = words[1]
        else:
            vocabulary = defaultdict()
            vocabulary.default_factory = vocabulary.__len__
            cols = {}
        preprocess, white = self.build_preprocessor(), self._white_spaces
        min_n, max_n = self.ngram_range
        j_indices: list[int] = []
        values = array.array("i")
        indptr = [0]
        for doc in raw_documents:
            ids: list[int] = []
            for w in white.sub(" ", preprocess(doc)).split():
                found = cols.get(w)
                if found is None:
                    found = cols[w] = _columns(_grams(w, min_n, max_n), vocabulary, fixed_vocab)
                ids.extend(found)
            counts = Counter(ids)  # first-seen order, as scikit-learn's per-document counter
            j_indices.extend(counts.keys())
            values.extend(counts.values())
            indptr.append(len(j_indices))
        if not fixed_vocab:
            vocabulary = dict(vocabulary)
            if not vocabulary:
                raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        dtype = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
        parts = (np.frombuffer(values, dtype=np.intc), np.asarray(j_indices, dtype=dtype))
        parts += (np.asarray(indptr, dtype=dtype),)
        shape = (len(indptr) - 1, len(vocabulary))
        if _align_api_if_sparse is None:  # pragma: no cover
            X = sp.csr_matrix(parts, shape=shape, dtype=self.dtype)
            X.sort_indices()
            return vocabulary, X
        X = sp.csr_array(parts, shape=shape, dtype=self.dtype)
        X.sort_indices()
        return vocabulary, _align_api_if_sparse(X)

    def _memoisable(self) -> bool:
        """The configuration this counting reproduces exactly: plain ``char_wb`` over strings."""
        return (
            self.analyzer == "char_wb" and self.input == "content" and self.preprocessor is None
            and self.strip_accents is None and not callable(self.analyzer)
        )  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_word_cols", None)  # a cache: rebuilt on use
        return state


def _grams(word: str, min_n: int, max_n: int) -> list[str]:
    """scikit-learn's ``_char_wb_ngrams`` for one word: its n-grams padded with a space at each end."""
    w = f" {word} "
    out: list[str] = []
    for n in range(min_n, max_n + 1):
        offset = 0
        out.append(w[offset : offset + n])
        while offset + n < len(w):
            offset += 1
            out.append(w[offset : offset + n])
        if offset == 0:  # a short word (shorter than n) counts once
            break
    return out


def _columns(grams: list[str], vocabulary: dict[str, int], fixed: bool) -> tuple[int, ...]:
    """Vocabulary columns of ``grams`` in order; unknown grams are dropped (``fixed``) or added (a fit)."""
    if fixed:
        return tuple(vocabulary[g] for g in grams if g in vocabulary)
    return tuple(vocabulary[g] for g in grams)
