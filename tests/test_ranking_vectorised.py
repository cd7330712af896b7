"""Issue #17 item 2: link postings as cached arrays, province filters as masks — the same results as the loops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from matcher.knowledge.catalogue import default_catalogue
from matcher.ranking.recommendation import Filters, RecommendRequest
from matcher.ranking.recommender import Recommender
from models.embedders import HashEmbedder
from service.cli.bench_recommend import _needs, _synthetic_corpus


def _loop_link_fit(rec: Recommender, target_links: dict[str, float]):
    """The per-posting Python loop the arrays replaced (the reference)."""
    link_fit: dict[int, float] = {}
    share: dict[int, float] = {}
    for lid, w in target_links.items():
        for i, s, sh in rec.postings_.get(lid, ()):
            v = w * s
            if v > link_fit.get(i, 0.0):
                link_fit[i] = v
            if w >= 0.99:
                share[i] = max(share.get(i, 0.0), sh)
    graph = [i for i in link_fit if link_fit[i] >= 0.45]
    graph.sort(key=lambda i: (-link_fit[i], -share.get(i, 0.0), -rec.capacity_[i]))
    return link_fit, share, graph


def test_link_fit_arrays_and_province_masks_match_the_loops() -> None:
    catalogue = default_catalogue()
    rec = Recommender(catalogue, HashEmbedder()).fit(_synthetic_corpus(catalogue, 3000, 7))
    chains = list(catalogue.chains.values())
    for round_ in range(2):
        for j, chain in enumerate(chains[:12]):
            links = list(chain.link_ids)
            targets = {lid: (1.0 if t == 0 else 0.5 if t == 1 else 0.2) for t, lid in enumerate(links[j % 3 :])}
            lf, sh, graph = rec._link_fit(targets)
            ref_lf, ref_sh, ref_graph = _loop_link_fit(rec, targets)
            assert graph == ref_graph
            for i in range(rec.n_):
                assert lf[i] == ref_lf.get(i, 0.0) and sh[i] == ref_sh.get(i, 0.0)
        allowed = {"新疆", "甘肃", "不存在"}
        np.testing.assert_array_equal(rec._province_mask(allowed), [p in allowed for p in rec.province_])
        if round_ == 0:  # the cached arrays follow an update of the corpus
            moved = _synthetic_corpus(catalogue, 40, 99)
            for k, e in enumerate(moved):
                e.id = f"syn-{k * 7:06d}"
            rec.update(moved, [])


def test_a_province_filter_keeps_only_those_provinces() -> None:
    catalogue = default_catalogue()
    rec = Recommender(catalogue, HashEmbedder()).fit(_synthetic_corpus(catalogue, 2000, 3))
    province = dict(zip((e.id for e in rec.enterprises_), rec.province_, strict=True))
    for chain_id, link_id in _needs(catalogue, 10, 1):
        req = RecommendRequest(chain=chain_id, link=link_id, k=20, filters=Filters(provinces=["新疆", "甘肃"]))
        got = rec.recommend(req, None).candidates
        assert all(province[c.enterprise_id] in {"新疆", "甘肃"} for c in got)


GOLDEN = Path(__file__).parent / "fixtures" / "ranking_golden.json"


def test_vectorised_ranking_gives_the_top_10_and_scores_of_the_loop_version() -> None:
    """Top 10 and scores of 30 requests on a fixed synthetic corpus (regenerated for the blend scorer, for the makers/expansions split of session 7, for the 风力发电机组 link name of session 8, and in session 10 for the catalogue edits (hydrogen edges shift the sampled requests) and the maker bar without its on-site criterion, and for the 煤制合成天然气 link name; first recorded before the ranking was vectorised
    #17 item 2). A deliberate change of the scoring regenerates the file with the same requests."""
    catalogue = default_catalogue()
    rec = Recommender(catalogue, HashEmbedder()).fit(_synthetic_corpus(catalogue, 5000, 1))
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for j, ((chain_id, link_id), expected) in enumerate(zip(_needs(catalogue, 30, 2), want, strict=True)):
        f = Filters(provinces=["新疆", "甘肃"]) if j % 3 == 0 else Filters()
        req = RecommendRequest(province="新疆", chain=chain_id, link=link_id if j % 4 else None, k=20, filters=f)
        got = rec.recommend(req, None).candidates[:10]
        assert [c.enterprise_id for c in got] == [e[0] for e in expected], j
        np.testing.assert_allclose([c.score for c in got], [e[1] for e in expected], atol=2e-4)  # scores are rounded to 4 decimals
