"""LexicalIndex over bm25s: ranking, safe empty / unknown queries, filters, updates and persistence."""

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


def test_updated_returns_a_new_index_and_leaves_the_live_one_alone():
    live = LexicalIndex().build(["a", "b", "c"], [["多晶硅", "光伏"], ["电解铝"], ["铝棒", "电解铝"]])
    new = live.updated(["b", "d"], [["铝棒"], ["多晶硅"]], removals=["c"])
    assert sorted(i for i, _ in live.search(["电解铝"], k=5)) == ["b", "c"]  # untouched
    assert new.search(["电解铝"], k=5) == []
    assert sorted(i for i, _ in new.search(["铝棒"], k=5)) == ["b"]
    assert sorted(i for i, _ in new.search(["多晶硅"], k=5)) == ["a", "d"]
    assert len(new) == 3 and "c" not in new and len(live) == 3
    fresh = LexicalIndex().build(["a", "b", "d"], [["多晶硅", "光伏"], ["铝棒"], ["多晶硅"]])
    assert new.search(["多晶硅", "铝棒"], k=5) == fresh.search(["多晶硅", "铝棒"], k=5)


def test_updated_checks_only_its_input():
    live = LexicalIndex().build(["a"], [["多晶硅"]])
    with pytest.raises(TypeError, match="one str"):
        live.updated(["b"], [["x"]], removals="a")
    with pytest.raises(ValueError, match="2 ids for 1 token lists"):
        live.updated(["b", "c"], [["x"]])
