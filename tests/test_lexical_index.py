"""LexicalIndex (bm25s Lucene scores from in-place postings): ranking, safe empty / unknown queries, filters, updates and persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.errors import IndexManifestError, IndexNotFoundError
from index.lexical import LexicalIndex
from index.storage import current_version

DOCS = {
    "silicon": ["多晶硅", "高纯", "晶硅", "光伏"],
    "wafer": ["单晶", "硅片", "光伏", "多晶硅"],
    "aluminium": ["电解铝", "铝水", "铝锭"],
    "tomato": ["番茄酱", "番茄", "罐头"],
    "empty": [],
}


@pytest.fixture
def lex() -> LexicalIndex:
    return LexicalIndex().build(list(DOCS), list(DOCS.values()))


def test_documents_with_the_query_terms_rank_first(lex: LexicalIndex) -> None:
    hits = lex.search(["多晶硅", "高纯"], k=10)
    assert [i for i, _ in hits] == ["silicon", "wafer"]
    assert hits[0][1] > hits[1][1] > 0


def test_empty_and_unknown_queries_return_nothing(lex: LexicalIndex) -> None:
    assert lex.search([], k=5) == []
    assert lex.search(["从未出现的词"], k=5) == []
    assert lex.search(["", "从未出现的词"], k=5) == []
    assert [i for i, _ in lex.search(["从未出现的词", "铝水"], k=5)] == ["aluminium"]


def test_k_and_argument_types_are_checked(lex: LexicalIndex) -> None:
    with pytest.raises(ValueError, match="k must be a positive integer"):
        lex.search(["番茄"], k=0)
    with pytest.raises(TypeError, match="tokenise it first"):
        lex.search("番茄", k=3)  # type: ignore[arg-type]
    assert len(lex.search(["光伏"], k=1)) == 1


def test_allow_restricts_results(lex: LexicalIndex) -> None:
    assert [i for i, _ in lex.search(["光伏"], k=5, allow=["wafer", "tomato"])] == ["wafer"]
    assert lex.search(["光伏"], k=5, allow=["nobody"]) == []


def test_upsert_and_remove_take_effect_on_the_next_search(lex: LexicalIndex) -> None:
    lex.upsert(["tomato", "new"], [["多晶硅", "多晶硅"], ["铝水"]])
    lex.remove(["silicon", "never-there"])
    assert len(lex) == 5
    assert "silicon" not in lex
    assert lex.search(["多晶硅"], k=5)[0][0] == "tomato"
    assert {i for i, _ in lex.search(["铝水"], k=5)} == {"aluminium", "new"}


def test_an_empty_index_answers_with_no_results() -> None:
    assert LexicalIndex().build([], []).search(["多晶硅"], k=3) == []


def test_save_and_load_round_trip(lex: LexicalIndex, tmp_path: Path) -> None:
    lex.save(tmp_path / "lex", {"build_id": "b1"})
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert loaded.search(["多晶硅", "高纯"], k=10) == lex.search(["多晶硅", "高纯"], k=10)
    assert loaded.tokens("tomato") == DOCS["tomato"]
    assert loaded.manifest["extra"] == {"build_id": "b1"}


def test_load_refuses_a_tampered_document_file(lex: LexicalIndex, tmp_path: Path) -> None:
    lex.save(tmp_path / "lex")
    docs = current_version(tmp_path / "lex") / "docs.jsonl"
    docs.write_text(docs.read_text(encoding="utf-8") + json.dumps(["x", ["y"]]) + "\n", encoding="utf-8")
    with pytest.raises(IndexManifestError, match="does not match the manifest"):
        LexicalIndex.load(tmp_path / "lex")
    with pytest.raises(IndexNotFoundError):
        LexicalIndex.load(tmp_path / "nothing-here")


def _bm25s_scores(docs: dict[str, list[str]], query: list[str]) -> dict[str, float]:
    import bm25s

    ids = list(docs)
    bm = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    bm.index([docs[i] or [""] for i in ids], show_progress=False)
    token_ids = [bm.vocab_dict[t] for t in query if t in bm.vocab_dict]
    scores = bm.get_scores_from_ids(token_ids) if token_ids else [0.0] * len(ids)
    return {i: float(s) for i, s in zip(ids, scores, strict=True) if s > 0}


QUERIES = [["多晶硅"], ["多晶硅", "高纯"], ["光伏", "光伏", "电解铝"], ["番茄", "铝锭", "单晶"]]


@pytest.mark.parametrize("query", QUERIES)
def test_scores_equal_bm25s_lucene(lex: LexicalIndex, query: list[str]) -> None:
    ours = dict(lex.search(query, k=10))
    assert ours.keys() == _bm25s_scores(DOCS, query).keys()
    for i, s in _bm25s_scores(DOCS, query).items():
        assert ours[i] == pytest.approx(s, rel=1e-5)


def test_updates_in_place_score_like_a_fresh_build(lex: LexicalIndex) -> None:
    lex.upsert(["tomato", "new", "later"], [["多晶硅", "番茄"], ["光伏", "铝水", "铝水"], ["单晶"]])
    lex.remove(["aluminium", "silicon"])
    lex.upsert(["again"], [["电解铝", "光伏"]])  # reuses a freed row
    docs = {**{k: v for k, v in DOCS.items() if k not in ("aluminium", "silicon")},
            "tomato": ["多晶硅", "番茄"], "new": ["光伏", "铝水", "铝水"], "later": ["单晶"], "again": ["电解铝", "光伏"]}  # fmt: skip
    fresh = LexicalIndex().build(list(docs), list(docs.values()))
    assert len(lex) == len(docs)
    for query in [*QUERIES, ["铝水"], ["电解铝", "单晶", "光伏"]]:
        ours, theirs = dict(lex.search(query, k=10)), dict(fresh.search(query, k=10))
        assert ours.keys() == theirs.keys() == _bm25s_scores(docs, query).keys(), query
        for i, s in theirs.items():
            assert ours[i] == pytest.approx(s, rel=1e-5)
