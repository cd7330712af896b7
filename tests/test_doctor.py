"""``chainmatch doctor``: store vs persisted index drift (missing, orphaned, stale ids, embedder mismatch,
checksum failure), its repair, and the CLI's exit codes — on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from index.lexical import LexicalIndex
from index.storage import current_version
from index.vector_io import INDEX_FILE
from matcher.indexing.build import build_index, index_dirs
from matcher.indexing.doctor import check, repair
from matcher.records import Product
from matcher.settings import Settings, get_settings
from matcher.store.demo import load_demo_enterprises
from models.embedders import HashEmbedder, get_embedder
from service.cli import app as cli

pytest_plugins = ["store_backends"]  # store / store_url / open_store on SQLite and PostgreSQL

N = 80


@pytest.fixture
def settings(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CHAINMATCH_DATABASE_URL", store_url)
    get_settings.cache_clear()
    s = get_settings()
    s.ensure_dirs()
    return s


@pytest.fixture
def built(store, settings: Settings):
    """A store with N demo enterprises and a fresh index of them (hash embedder)."""
    store.upsert_enterprises(load_demo_enterprises()[:N])
    build_index(store, get_embedder("hash"), settings)
    return store


def test_no_drift_right_after_a_build(built, settings: Settings):
    report = check(built, settings)
    assert not report.drift and report.problems() == []
    assert report.store_count == report.vector.count == report.lexical.count == N
    assert report.vector.embedder_id == get_embedder("hash").id
    assert "OK" in report.format()


def test_missing_stale_and_orphaned_ids_are_reported_and_repaired(built, settings: Settings):
    ents = load_demo_enterprises()
    new = ents[N : N + 3]
    built.upsert_enterprises(new)  # never indexed
    changed = ents[0].model_copy(update={"products": [Product(name="六氟磷酸锂", share=0.9)]})
    built.upsert_enterprises([changed])  # indexed, then changed
    built.delete_enterprise(ents[1].id)  # indexed, then deleted

    report = check(built, settings)
    assert report.drift
    assert report.vector.missing == report.lexical.missing == sorted(e.id for e in new)
    assert report.vector.orphans == report.lexical.orphans == [ents[1].id]
    assert report.stale == [ents[0].id]
    text = report.format()
    assert "3 store ids missing" in text and new[0].id in text and "1 ids no longer in the store" in text

    result = repair(built, settings, get_embedder("hash"))
    assert result.action == "update"
    assert result.status is not None and result.status.removed == 1
    assert result.status.embedded + result.status.cached == 4  # 3 new + 1 changed, nothing else re-embedded
    assert not result.after.drift and result.after.vector.count == N + 3 - 1
    assert not check(built, settings).drift


def test_no_index_yet_is_drift_and_repair_builds_one(store, settings: Settings):
    store.upsert_enterprises(load_demo_enterprises()[:20])
    report = check(store, settings)
    assert report.drift and report.vector.error_kind == report.lexical.error_kind == "not_found"
    result = repair(store, settings, get_embedder("hash"))
    assert result.action == "rebuild" and not result.after.drift and result.after.vector.count == 20


def test_a_corrupted_index_file_is_a_checksum_failure_and_repair_rebuilds(built, settings: Settings):
    vdir = current_version(index_dirs(settings)[0])
    data = bytearray((vdir / INDEX_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (vdir / INDEX_FILE).write_bytes(bytes(data))

    report = check(built, settings)
    assert report.drift and report.vector.error_kind == "checksum" and report.lexical.readable
    assert "sha256" in report.problems()[0]
    result = repair(built, settings, get_embedder("hash"))
    assert result.action == "rebuild" and not result.after.drift
    assert result.status is not None and result.status.embedded == 0  # every vector came from the cache


def test_an_index_of_another_embedder_is_a_mismatch_and_repair_rebuilds(store, settings: Settings):
    class OlderHash(HashEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.id = "hash-ngram-384-old"

    store.upsert_enterprises(load_demo_enterprises()[:20])
    build_index(store, OlderHash(), settings)
    report = check(store, settings)
    assert report.drift and report.embedder_mismatch == "hash-ngram-384-old"
    assert report.stale == []  # everything is re-embedded by the rebuild anyway
    result = repair(store, settings, get_embedder("hash"))
    assert result.action == "rebuild"
    assert result.after.vector.embedder_id == get_embedder("hash").id and not result.after.drift


def test_lexical_index_behind_the_vector_index_is_drift(built, settings: Settings):
    """A crash between the vector save and the lexical save of an update leaves the lexical index behind."""
    ldir = index_dirs(settings)[1]
    lex = LexicalIndex.load(ldir)
    victim = load_demo_enterprises()[5].id
    lex.remove([victim])
    lex.save(ldir, {"build_id": "older"})

    report = check(built, settings)
    assert report.drift and report.lexical.missing == [victim] and report.vector.missing == []
    assert report.build_mismatch and report.notes()
    assert not repair(built, settings, get_embedder("hash")).after.drift


def test_cli_exits_1_on_drift_0_after_repair(built, settings: Settings):
    runner = CliRunner()
    clean = runner.invoke(cli, ["doctor"])
    assert clean.exit_code == 0, clean.output
    assert "OK" in clean.output

    built.delete_enterprise(load_demo_enterprises()[2].id)
    drift = runner.invoke(cli, ["doctor", "--json"])
    assert drift.exit_code == 1, drift.output
    body = json.loads(drift.output)
    assert body["drift"] and body["vector"]["orphans"] == [load_demo_enterprises()[2].id]

    fixed = runner.invoke(cli, ["doctor", "--repair"])
    assert fixed.exit_code == 0, fixed.output
    assert "repair: update" in fixed.output and fixed.output.rstrip().splitlines()[-1].startswith("OK")
    assert runner.invoke(cli, ["doctor"]).exit_code == 0


def test_cli_rejects_an_unknown_embedder_name(built, settings: Settings, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CHAINMATCH_EMBEDDER", "bert-huge")
    get_settings.cache_clear()
    out = CliRunner().invoke(cli, ["doctor"])
    assert out.exit_code == 2 and "unknown embedder 'bert-huge'" in out.output


def test_repair_reports_progress_and_keeps_the_chunks_it_finished(built, settings: Settings):
    """Issue 18 item 5: a long repair shows progress and an interruption keeps what was done."""
    ents = load_demo_enterprises()
    built.upsert_enterprises(ents[N : N + 7])  # 7 never indexed
    calls: list[tuple[int, int]] = []

    class Failing(HashEmbedder):
        """Embeds the first chunk, then the process 'dies' (raises) on the next one."""

        n = 0

        def encode_passages(self, texts, **kw):
            Failing.n += 1
            if Failing.n > 1:
                raise KeyboardInterrupt("killed during the repair")
            return super().encode_passages(texts, **kw)

    emb = Failing()
    with pytest.raises(KeyboardInterrupt):
        repair(built, settings, embedder=emb, progress=lambda d, t: calls.append((d, t)), chunk=3)
    assert calls == [(3, 7)]
    assert len(check(built, settings).vector.missing) == 4  # the first chunk of 3 stayed saved
    calls.clear()
    done = repair(built, settings, embedder=HashEmbedder(), progress=lambda d, t: calls.append((d, t)), chunk=3)
    assert calls == [(3, 4), (4, 4)] and not done.after.drift and done.status.embedded == 4
