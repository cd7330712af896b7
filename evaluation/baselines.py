"""Reference ranking systems over a corpus of plain documents: random, popularity, TF-IDF n-grams, BM25.

A *system* is any callable ``rank(query, k) -> [(doc_id, score)]`` or ``[(doc_id, score, why)]``, best first,
where ``query`` is a :class:`evaluation.cases.CaseQuery`. The corpus is a dict of plain documents::

    {doc_id: {"name": str, "short": str, "industry": str | None, "products": [(name, share)],
              "employees": int | None, "province": str | None}}

Text baselines read only ``chain + product_link + project`` of the query (``CaseQuery.text``) and
``name + short + industry + products`` of a document.

Example:
    >>> systems = make_baselines(docs, ["tfidf", "bm25"])
    >>> systems["tfidf"](case.query, 10)[0]  # (doc_id, score, shared n-grams)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from evaluation.cases import CaseQuery
from evaluation.errors import UnknownSystemError
from matcher.text import clean_text, tokenize

logger = logging.getLogger(__name__)

Doc = Mapping[str, Any]
Ranking = list[tuple[str, float]] | list[tuple[str, float, str]]
BASELINES = ("random", "popularity", "tfidf", "bm25")


class RankingSystem(Protocol):
    """Anything that ranks corpus documents for a query."""

    def __call__(self, query: CaseQuery, k: int) -> Ranking: ...


def _norm(text: str | None) -> str:
    """The matcher's clean form (Simplified, half-width, brackets, whitespace), lower-cased; keeps spaces."""
    return clean_text(text).lower()


def doc_text(doc: Doc) -> str:
    """Text a text baseline indexes: name, short name, industry and product names."""
    parts = [doc.get("name"), doc.get("short"), doc.get("industry")]
    parts += [p[0] if isinstance(p, (list, tuple)) else str(p) for p in doc.get("products") or []]
    return " ".join(_norm(p) for p in parts if p)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first (ties by index, i.e. corpus order)."""
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < scores.shape[0]:
        part = np.argpartition(-scores, k - 1)[:k]
        # include every element tied with the k-th score so the stable sort below decides ties by index
        kth = scores[part].min()
        part = np.flatnonzero(scores >= kth)
    else:
        part = np.arange(scores.shape[0])
    order = part[np.lexsort((part, -scores[part]))]
    return order[:k]


def _stable_seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "little")


class RandomRanker:
    """Uniformly random ranking, reproducible per (seed, query): the floor every system must beat."""

    def __init__(self, docs: Mapping[str, Doc], seed: int = 0) -> None:
        self.ids = sorted(docs)
        self.seed = seed

    def __call__(self, query: CaseQuery, k: int) -> list[tuple[str, float]]:
        rng = np.random.default_rng([self.seed, _stable_seed(query.case_id, query.text)])
        k = min(k, len(self.ids))
        picks = rng.choice(len(self.ids), size=k, replace=False)
        return [(self.ids[i], float(k - r)) for r, i in enumerate(picks)]


class PopularityRanker:
    """The same ranking for every query: largest companies (employees) first, unknown size last."""

    def __init__(self, docs: Mapping[str, Doc]) -> None:
        size = {d: float(doc.get("employees") or 0) for d, doc in docs.items()}
        self.order = sorted(size, key=lambda d: (-size[d], d))
        self.size = size

    def __call__(self, query: CaseQuery, k: int) -> list[tuple[str, float]]:
        return [(d, self.size[d]) for d in self.order[:k]]


class TfidfRanker:
    """Cosine similarity of character n-gram TF-IDF vectors (sklearn ``TfidfVectorizer``, ``char_wb``).

    Unigrams are kept (range 1–3 by default) because single characters name the materials chains turn on
    (锂, 铝, 铜, 硅, 钛); on deals_dev, ranges 1–3, 1–4, 2–3 and 2–4 differ by one or two cases only.

    Args:
        docs: the corpus.
        ngram_range: character n-gram lengths.
        sublinear_tf: use 1 + log(tf).
        explain: return ``(doc_id, score, why)`` where ``why`` lists the shared n-grams that weigh most.
    """

    def __init__(
        self,
        docs: Mapping[str, Doc],
        ngram_range: tuple[int, int] = (1, 3),
        sublinear_tf: bool = True,
        explain: bool = True,
    ) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.ids = list(docs)
        self.vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=ngram_range, sublinear_tf=sublinear_tf, min_df=1, dtype=np.float32
        )
        self.matrix_ = self.vectorizer.fit_transform([doc_text(docs[d]) for d in self.ids]).tocsr()
        self.features_ = self.vectorizer.get_feature_names_out()
        self.explain = explain

    def __call__(self, query: CaseQuery, k: int) -> Ranking:
        q = self.vectorizer.transform([_norm(query.text)])
        scores = np.asarray((self.matrix_ @ q.T).todense()).ravel()
        top = _top_k(scores, k)
        if not self.explain:
            return [(self.ids[i], float(scores[i])) for i in top]
        shared = self.matrix_[top].multiply(q).tocsr()  # per returned doc: weight of each shared n-gram
        out: list[tuple[str, float, str]] = []
        for row, i in enumerate(top):
            lo, hi = shared.indptr[row], shared.indptr[row + 1]
            data, cols = shared.data[lo:hi], shared.indices[lo:hi]
            grams = (self.features_[cols[j]].strip() for j in np.argsort(-data))
            why = "|".join(list(dict.fromkeys(g for g in grams if g))[:5])
            out.append((self.ids[i], float(scores[i]), why))
        return out


# deal-text vocabulary that says nothing about the enterprise (on top of the usual function words)
DEAL_STOP_WORDS = frozenset(
    "的 和 与 及 等 其他 其它 业务 产品 销售 生产 制造 加工 服务 相关 项目 年产 万吨 吨 亿元 万元 "
    "有限公司 公司 股份 集团 "
    "某企业 企业 签约 建设 投资 协议 基地 一期 二期 开工 投产".split()
)


def jieba_tokens(text: str) -> list[str]:
    """The matcher's tokenizer (:func:`matcher.text.tokenize`) with the deal stop words, lone digits dropped."""
    return tokenize(text, stop_words=DEAL_STOP_WORDS, drop_digits=True)


class BM25Ranker:
    """Okapi BM25 (bm25s, Lucene variant) over jieba tokens.

    Args:
        docs: the corpus.
        k1: term-frequency saturation.
        b: length normalisation.
        tokenizer: text → tokens (jieba search mode by default).
        doc_tokens: precomputed tokens per doc id (e.g. from a cache); computed when absent.
        explain: return ``(doc_id, score, why)`` where ``why`` lists query tokens found in the document.
    """

    def __init__(
        self,
        docs: Mapping[str, Doc],
        k1: float = 1.2,
        b: float = 0.75,
        tokenizer: Callable[[str], list[str]] = jieba_tokens,
        doc_tokens: Mapping[str, Sequence[str]] | None = None,
        explain: bool = True,
    ) -> None:
        import bm25s

        self.ids = list(docs)
        self.tokenizer = tokenizer
        tokenizer("锂电池正极材料")  # load the tokenizer's dictionary now, not inside the first timed query
        logging.getLogger("bm25s").setLevel(max(logging.getLogger("bm25s").level, logging.INFO))
        if doc_tokens is None:
            doc_tokens = {d: tokenizer(doc_text(docs[d])) for d in self.ids}
        # bm25s cannot index an empty document; a placeholder token keeps ids aligned
        corpus = [list(doc_tokens.get(d) or ["<empty>"]) for d in self.ids]
        self.token_sets_ = [frozenset(t) for t in corpus]
        self.retriever_ = bm25s.BM25(k1=k1, b=b, method="lucene")
        self.retriever_.index(corpus, show_progress=False)
        self.explain = explain

    def __call__(self, query: CaseQuery, k: int) -> Ranking:
        tokens = [t for t in self.tokenizer(query.text) if t in self.retriever_.vocab_dict]
        if not tokens:
            scores = np.zeros(len(self.ids), dtype=np.float32)
        else:
            scores = np.asarray(self.retriever_.get_scores(tokens))
        top = _top_k(scores, k)
        if not self.explain:
            return [(self.ids[i], float(scores[i])) for i in top]
        uniq = list(dict.fromkeys(tokens))
        return [
            (self.ids[i], float(scores[i]), "|".join(t for t in uniq if t in self.token_sets_[i])[:60])
            for i in top
        ]


def make_baselines(
    docs: Mapping[str, Doc],
    names: Iterable[str] | None = None,
    seed: int = 0,
    doc_tokens: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, RankingSystem]:
    """Build the named baselines (all of :data:`BASELINES` by default) over ``docs``.

    Raises:
        UnknownSystemError: a name is not a baseline.
    """
    wanted = list(BASELINES if names is None else names)
    unknown = [n for n in wanted if n not in BASELINES]
    if unknown:
        raise UnknownSystemError(unknown, BASELINES)
    factories: dict[str, Callable[[], RankingSystem]] = {
        "random": lambda: RandomRanker(docs, seed=seed),
        "popularity": lambda: PopularityRanker(docs),
        "tfidf": lambda: TfidfRanker(docs),
        "bm25": lambda: BM25Ranker(docs, doc_tokens=doc_tokens),
    }
    out: dict[str, RankingSystem] = {}
    for n in wanted:
        out[n] = factories[n]()
        logger.debug("baseline %s ready over %d docs", n, len(docs))
    return out
