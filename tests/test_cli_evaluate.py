"""``chainmatch evaluate`` through the real CLI: synthetic self-check and the deals_dev baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matcher.settings import get_settings
from service.cli import app

runner = CliRunner()


def test_evaluate_synthetic_passes_its_self_check_and_writes_outputs(tmp_path):
    result = runner.invoke(
        app, ["evaluate", "--synthetic", "--systems", "random,tfidf", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "synthetic self-check passed" in result.output
    assert "| oracle | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 |" in result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["systems"]) == {"oracle", "reversed", "stepped", "random", "tfidf"}
    assert metrics["n_cases"] > metrics["n_in_corpus"]
    assert (tmp_path / "report.html").stat().st_size > 1_000_000


def test_every_report_records_the_package_versions_and_embedder(tmp_path):
    from importlib import metadata

    result = runner.invoke(app, ["evaluate", "--synthetic", "--systems", "tfidf", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    env = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))["environment"]
    assert env["embedder"] == "hash"
    for pkg in ("torch", "sentence-transformers", "transformers", "faiss-cpu", "scikit-learn", "numpy"):
        assert env["packages"][pkg] == metadata.version(pkg)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "id='environment'" in html and f"<td>{metadata.version('transformers')}</td>" in html
    assert "environment: embedder hash" in result.output


def test_evaluate_deals_dev_with_baselines_caches_the_corpus(shared_data: Path, tmp_path):
    out = tmp_path / "out"
    args = [
        "evaluate",
        "--cases",
        str(shared_data / "deals" / "deals_dev.jsonl"),
        "--data-dir",
        str(shared_data),
        "--systems",
        "random,popularity,tfidf,bm25",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "59 cases, 34 evaluable, 25 not evaluable" in result.output
    assert "| tfidf |" in result.output and "(baseline)" in result.output
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert (metrics["n_cases"], metrics["n_in_corpus"]) == (59, 34)
    systems = metrics["systems"]
    assert systems["tfidf"]["recall@50"] > systems["random"]["recall@50"]
    assert systems["bm25"]["recall@50"] > systems["popularity"]["recall@50"]
    assert metrics["significance"]["random"]["vs"] == "tfidf"

    cache_files = list((get_settings().cache_dir / "evaluation").glob("corpus-*.json"))
    assert len(cache_files) == 1
    stamp = cache_files[0].stat().st_mtime_ns
    again = runner.invoke(app, [*args[:-1], str(tmp_path / "out2")])
    assert again.exit_code == 0, again.output
    assert cache_files[0].stat().st_mtime_ns == stamp  # read from the cache, not rebuilt
    rerun = json.loads((tmp_path / "out2" / "metrics.json").read_text(encoding="utf-8"))["systems"]
    for name, values in systems.items():
        assert {m: v for m, v in rerun[name].items() if m != "ms_per_query"} == {
            m: v for m, v in values.items() if m != "ms_per_query"
        }


def test_unknown_system_is_an_error_listing_the_valid_names(tmp_path):
    pytest.importorskip("evaluation.systems", reason="matcher systems cannot be imported in this tree")
    result = runner.invoke(
        app, ["evaluate", "--synthetic", "--systems", "tfidf,no-such-system", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert "unknown system(s): no-such-system" in result.output
    for name in ("random", "popularity", "tfidf", "bm25", "oracle", "all"):
        assert name in result.output


def test_empty_systems_list_is_an_error(tmp_path):
    result = runner.invoke(app, ["evaluate", "--synthetic", "--systems", " , ", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--systems is empty" in result.output


def test_cases_and_synthetic_are_mutually_exclusive(tmp_path):
    result = runner.invoke(app, ["evaluate", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--cases" in result.output and "--synthetic" in result.output


def test_missing_cases_file_is_a_clean_error(tmp_path):
    result = runner.invoke(app, ["evaluate", "--cases", str(tmp_path / "none.jsonl"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "file not found" in result.output and "Traceback" not in result.output
