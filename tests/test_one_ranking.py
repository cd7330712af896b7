"""Issue #17 item 3: the server (warm-up embeds catalogue needs in batches), the CLI / in-process call (one need at
a time) and the evaluation's fitted recommender return the same top 10 for the same request."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.systems import fitted_recommender
from matcher.ranking.engine import Engine
from matcher.ranking.recommendation import RecommendRequest
from models.embedders import get_embedder
from matcher.settings import Settings
from tests.api_support import seed_demo_store


def _top(result) -> list[tuple[str, str, float]]:
    """What an officer is shown, in order: the makers, then the expansion candidates and the leads (each apart)."""
    shown = [("c", c) for c in result.candidates] + [("e", c) for c in result.expansions] + [("l", c) for c in result.leads]
    return [(kind, c.enterprise_id, round(c.score, 6)) for kind, c in shown[:10]]


@pytest.mark.model
def test_server_cli_and_evaluation_rank_alike(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    emb = get_embedder("e5-int8", cache_dir=tmp_path_factory.mktemp("chainmatch-models-rank"))
    root = seed_demo_store(tmp_path, tmp_path_factory)
    settings = Settings(data_dir=root / "data", cache_dir=root / "cache", embedder="e5-int8")
    server = Engine.open(settings, embedder=emb)
    server.ensure_corpus()
    assert server.warm_queries() > 0  # batched need queries, as at server start
    requests = []
    for chain_id, chain in list(server.catalogue.chains.items())[:6]:
        requests.append(RecommendRequest(chain=chain_id, k=10))
        requests.extend(RecommendRequest(chain=chain_id, link=link, k=10) for link in list(chain.link_ids)[:3])
    requests.append(RecommendRequest(text="电解铝 铝棒 铝型材", k=10))
    served = [_top(server.recommend(r)) for r in requests]

    cli = Engine.open(settings, embedder=emb)  # a fresh in-process engine: no warm-up, one query per call
    evaluation = fitted_recommender(server.all_enterprises(), settings, embedder=emb)
    for req, want in zip(requests, served, strict=True):
        assert want, req
        assert _top(cli.recommend(req)) == want, req
        assert _top(evaluation.recommend(req, book=None)) == want, req
