"""The char TF-IDF index counts each distinct word's n-grams once (:mod:`index._char_wb`); its matrices must
be scikit-learn's own, bit for bit, for a fit and for later transforms."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from index._char_wb import CharWbVectorizer
from index.char_tfidf import CharTfidfIndex

TEXTS = [
    "嘉润资源。主营: 电解铝液 50%、重熔用铝锭 40%。环节: 电解铝。新疆昌吉回族自治州",
    "容错j0b1号1。主营: 6063铝棒 70%、铝型材 20%。经营范围: 有色金属合金制造;有色金属压延加工。江苏常州市",
    "容错j0b2号7。主营: 6063铝棒 70%、铝型材 20%。经营范围: 有色金属合金制造;有色金属压延加工。江苏常州市",
    "多晶硅  光伏\tpv\n\n组件 a ab abc abcd",
    " ",
    "σας ΣΑΣ x",
]
KW = dict(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=1, dtype=np.float32)


def _same(a, b) -> None:
    assert type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))


@pytest.mark.parametrize("split", [2, 4, 6])
def test_word_memoised_counts_equal_scikit_learns(split: int) -> None:
    ours, theirs = CharWbVectorizer(**KW), TfidfVectorizer(**KW)
    _same(ours.fit_transform(TEXTS[:split]), theirs.fit_transform(TEXTS[:split]))
    assert ours.vocabulary_ == theirs.vocabulary_
    for _ in range(2):  # the second transform reads the memoised words
        _same(ours.transform(TEXTS), theirs.transform(TEXTS))
    again = pickle.loads(pickle.dumps(ours))
    assert "_word_cols" not in again.__dict__
    _same(again.transform(TEXTS[::-1]), theirs.transform(TEXTS[::-1]))


def test_other_configurations_use_scikit_learns_counting() -> None:
    kw = {**KW, "analyzer": "char"}
    _same(CharWbVectorizer(**kw).fit_transform(TEXTS), TfidfVectorizer(**kw).fit_transform(TEXTS))


def test_an_upserted_document_scores_as_scikit_learn_transforms_it() -> None:
    idx = CharTfidfIndex().build(["a", "b"], TEXTS[:2])
    idx.upsert(["c", "a"], TEXTS[2:4])
    ref = TfidfVectorizer(**KW).fit(TEXTS[:2])
    q, docs = ref.transform(["6063铝棒 常州"]), ref.transform(TEXTS[2:4])
    expected = (docs @ q.T).toarray().ravel()
    np.testing.assert_allclose(idx.scores("6063铝棒 常州", ["c", "a"]), expected, rtol=1e-6)
