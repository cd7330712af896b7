"""The cost of keeping a fitted recommender current: an upsert of a few profiles must not re-tokenise the
whole corpus (it did: jieba over every profile on every API upsert, ~10 s per request at 4,600 A-share firms
under load, holding the index write lock that recommendations wait on)."""

from __future__ import annotations

import pytest

from matcher.catalogue import default_catalogue
from matcher.demo import load_demo_enterprises
from matcher.recommender import Recommender
from matcher.records import Product
from models.embedders import HashEmbedder


class CountingRecommender(Recommender):
    """A recommender that counts the profiles it tokenises for the lexical index."""

    tokenised = 0

    def _doc_tokens(self, e):
        self.tokenised += 1
        return super()._doc_tokens(e)


@pytest.fixture(scope="module")
def fitted() -> CountingRecommender:
    return CountingRecommender(default_catalogue(), HashEmbedder()).fit(load_demo_enterprises()[:200])


def test_update_tokenises_only_the_changed_profiles(fitted: CountingRecommender):
    ents = fitted.enterprises_
    before = {e.id: fitted.lindex_.tokens(e.id) for e in ents}
    changed = ents[3].model_copy(update={"products": [Product(name="钙钛矿叠层电池组件", share=0.9)]})
    removed = ents[4].id
    fitted.tokenised = 0
    fitted.update([changed], removals=[removed])
    assert fitted.tokenised == 1
    assert removed not in fitted.lindex_ and len(fitted.lindex_) == len(before) - 1
    assert "钙钛矿" in "".join(fitted.lindex_.tokens(changed.id))
    untouched = [e.id for e in fitted.enterprises_ if e.id not in (changed.id, removed)]
    assert all(fitted.lindex_.tokens(i) == before[i] for i in untouched)
    assert [i for i, _ in fitted.lindex_.search(fitted.lindex_.tokens(changed.id), 1)] == [changed.id]


def test_update_adds_a_new_profile_to_the_lexical_index(fitted: CountingRecommender):
    new = load_demo_enterprises()[300]
    fitted.tokenised = 0
    fitted.update([new])
    assert fitted.tokenised == 1 and new.id in fitted.lindex_
    assert fitted.lindex_.tokens(new.id) == fitted._doc_tokens(new)


def test_a_prepared_update_leaves_the_fitted_state_alone_until_applied(fitted: CountingRecommender):
    from matcher.recommendation import RecommendRequest

    ents = fitted.enterprises_
    target = ents[7]
    changed = target.model_copy(update={"name": "全新名称钙钛矿材料有限公司"})
    before = (list(fitted.enterprises_), fitted.vectors_.copy(), fitted.lindex_, len(fitted.vindex_))
    prepared = fitted.prepare_update([changed], removals=[ents[8].id])
    assert (
        fitted.enterprises_ == before[0] and fitted.lindex_ is before[2] and len(fitted.vindex_) == before[3]
    )
    assert (fitted.vectors_ == before[1]).all()  # rows are replaced in a copy, not under running searches
    fitted.recommend(RecommendRequest(chain="aluminium", k=5))  # searches work on the old state meanwhile
    fitted.apply_update(prepared)
    assert fitted.enterprises_[fitted.id_to_idx_[target.id]].name == "全新名称钙钛矿材料有限公司"
    assert ents[8].id not in fitted.id_to_idx_ and len(fitted.vindex_) == before[3] - 1
    assert fitted.n_ == len(fitted.enterprises_) == len(fitted.vectors_) == len(fitted.lindex_)


def test_refreshes_queued_during_a_refresh_are_merged_into_one(tmp_path):
    from api_support import Api, make_settings

    from matcher.records import Enterprise

    api = Api(make_settings(tmp_path))
    try:
        svc = api.svc
        calls: list[int] = []
        prepare = svc.engine.prepare_refresh

        def counting(changes):
            calls.append(len(changes))
            return prepare(changes)

        svc.engine.prepare_refresh = counting
        rod = [Product(name="铝棒", share=0.9)]
        firms = [Enterprise(id=f"q{i}", name=f"排队{i}号铝棒有限公司", products=rod) for i in range(12)]
        summary = svc.store.upsert_enterprises(firms, tenant="acme")
        futures = [svc.submit_refresh([eid], "acme") for eid in summary.ids]
        for f in futures:
            f.result(timeout=60)
        assert sum(calls) == len(firms) and len(calls) < len(firms)  # later ones were merged
        assert all(eid in svc.engine.recommender().id_to_idx_ for eid in summary.ids)
        assert svc.pending == 0
    finally:
        api.close()
