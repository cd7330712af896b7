"""A BM25 index over pre-tokenised documents (bm25s), with string ids, filters and crash-safe saves.

Tokens come from the caller (the matcher tokenises Chinese with jieba); this module only counts them. The
documents' tokens are kept so that :meth:`LexicalIndex.upsert` / :meth:`LexicalIndex.remove` can rebuild the
BM25 matrix (lazily, on the next search or save) without tokenising anything again. An empty query, or one
made only of tokens the index has never seen, returns no results.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import IndexManifestError
from index.storage import load_current, save_version

logger = logging.getLogger(__name__)

DOCS_FILE = "docs.jsonl"


class LexicalIndex:
    """BM25 (Lucene variant) over token lists.

    Args:
        k1: Term-frequency saturation.
        b: Length normalisation.

    Example:
        >>> lex = LexicalIndex().build(["a", "b"], [["多晶硅", "光伏"], ["电解铝"]])
        >>> lex.search(["多晶硅"], k=5)   # [("a", 0.69)]
    """

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._docs: dict[str, list[str]] = {}
        self._ids: list[str] = []  # row order of the built matrix
        self._row: dict[str, int] = {}
        self._bm25: Any = None
        self._dirty = False

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, item: object) -> bool:
        return item in self._docs

    @staticmethod
    def _pairs(ids: Sequence[str], token_lists: Sequence[Sequence[str]]) -> list[tuple[str, list[str]]]:
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of strings, received one str (wrap it in a list)")
        if len(ids) != len(token_lists):
            raise ValueError(f"{len(ids)} ids for {len(token_lists)} token lists")
        pairs = []
        for i, toks in zip(ids, token_lists, strict=True):
            if isinstance(toks, str):
                raise TypeError(f"tokens of {i!r} must be a list of strings, received a str")
            pairs.append((str(i), [str(t) for t in toks if str(t).strip()]))
        if len({p[0] for p in pairs}) != len(pairs):
            raise ValueError("ids must be unique within one call")
        return pairs

    def build(self, ids: Sequence[str], token_lists: Sequence[Sequence[str]]) -> LexicalIndex:
        """Index these documents, replacing any previous content. Returns self."""
        self._docs = dict(self._pairs(ids, token_lists))
        self._rebuild()
        return self

    def upsert(self, ids: Sequence[str], token_lists: Sequence[Sequence[str]]) -> None:
        """Add or replace documents (the BM25 matrix is rebuilt on the next search or save)."""
        for i, toks in self._pairs(ids, token_lists):
            self._docs[i] = toks
        self._dirty = True

    def updated(
        self, ids: Sequence[str], token_lists: Sequence[Sequence[str]], removals: Iterable[str] = ()
    ) -> LexicalIndex:
        """A new index with these documents added / replaced and ``removals`` dropped, built now.

        This index is untouched (searches may go on meanwhile) and only the changed documents are checked;
        the unchanged ones are shared, not copied token by token. Rebuilding the BM25 matrix stays linear in
        the corpus (~70 ms at 4.6k documents)."""
        if isinstance(removals, str):
            raise TypeError("removals must be a sequence of strings, received one str (wrap it in a list)")
        out = LexicalIndex(k1=self.k1, b=self.b)
        out._docs = dict(self._docs)
        for i in removals:
            out._docs.pop(str(i), None)
        out._docs.update(self._pairs(ids, token_lists))
        out._rebuild()
        return out

    def remove(self, ids: Iterable[str]) -> int:
        """Remove documents (unknown ids are ignored); returns how many were removed."""
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of strings, received one str (wrap it in a list)")
        n = 0
        for i in ids:
            if self._docs.pop(str(i), None) is not None:
                n += 1
        self._dirty = self._dirty or n > 0
        return n

    def _rebuild(self) -> None:
        import bm25s

        t0 = time.perf_counter()
        self._ids = list(self._docs)
        self._row = {i: n for n, i in enumerate(self._ids)}
        self._bm25 = None
        if self._ids:
            bm = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
            corpus = [self._docs[i] or [""] for i in self._ids]
            bm.index(corpus, show_progress=False)
            self._bm25 = bm
        self._dirty = False
        if len(self._ids) >= 10_000:
            logger.info("built BM25 over %d documents in %.1f s", len(self._ids), time.perf_counter() - t0)

    def _ready(self) -> None:
        if self._dirty:
            self._rebuild()

    def search(
        self, tokens: Sequence[str], k: int, allow: Iterable[str] | None = None
    ) -> list[tuple[str, float]]:
        """Documents matching the query tokens, best BM25 score first (only scores > 0).

        Args:
            tokens: Query tokens (same tokeniser as the documents).
            k: Maximum number of results.
            allow: Ids a result may have; None = all.

        Raises:
            ValueError: ``k <= 0``.
        """
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise ValueError(f"k must be a positive integer, received {k!r}")
        if isinstance(tokens, str):
            raise TypeError("tokens must be a list of strings, received one str (tokenise it first)")
        self._ready()
        if self._bm25 is None:
            return []
        vocab = self._bm25.vocab_dict
        token_ids = [vocab[t] for t in tokens if t and t in vocab]
        if not token_ids:
            return []
        scores = np.asarray(self._bm25.get_scores_from_ids(token_ids), dtype=np.float32)
        if allow is not None:
            rows = [self._row[i] for i in allow if i in self._row]
            if not rows:
                return []
            mask = np.zeros(len(scores), dtype=bool)
            mask[rows] = True
            scores = np.where(mask, scores, 0.0)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        hits = hits[np.lexsort((hits, -scores[hits]))]
        return [(self._ids[r], float(scores[r])) for r in hits]

    def tokens(self, doc_id: str) -> list[str]:
        """The stored tokens of a document (KeyError if absent)."""
        return list(self._docs[doc_id])

    # --- persistence ----------------------------------------------------------------------------------------
    def save(self, path: Path | str, manifest_extra: dict[str, Any] | None = None) -> Path:
        """Save atomically as a new version under ``path`` (see :mod:`index.storage`)."""
        self._ready()

        def write(folder: Path) -> None:
            with open(folder / DOCS_FILE, "w", encoding="utf-8") as fh:
                for i in self._ids:
                    fh.write(json.dumps([i, self._docs[i]], ensure_ascii=False) + "\n")
            if self._bm25 is not None:
                self._bm25.save(str(folder), show_progress=False)

        manifest = {
            "kind": "bm25",
            "count": len(self._ids),
            "params": {"k1": self.k1, "b": self.b, "method": "lucene"},
            "extra": dict(manifest_extra or {}),
        }
        return save_version(Path(path), write, manifest, primary=DOCS_FILE)

    @classmethod
    def load(cls, path: Path | str, verify: bool = True) -> LexicalIndex:
        """Load the current saved version under ``path`` (checksums verified).

        Raises:
            IndexNotFoundError: nothing saved at ``path``.
            IndexManifestError: checksum or count mismatch, or not a lexical index.
        """
        import bm25s

        vdir, manifest = load_current(Path(path), verify=verify)
        if manifest.get("kind") != "bm25":
            raise IndexManifestError(f"{vdir}: not a lexical index (kind {manifest.get('kind')!r})")
        p = manifest["params"]
        self = cls(k1=p["k1"], b=p["b"])
        with open(vdir / DOCS_FILE, encoding="utf-8") as fh:
            for line in fh:
                i, toks = json.loads(line)
                self._docs[i] = toks
        if len(self._docs) != manifest["count"]:
            raise IndexManifestError(
                f"{vdir}: {len(self._docs)} documents, manifest says {manifest['count']}"
            )
        self._ids = list(self._docs)
        self._row = {i: n for n, i in enumerate(self._ids)}
        if self._ids:
            self._bm25 = bm25s.BM25.load(str(vdir), load_corpus=False)
        self.manifest = manifest
        return self
