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


def test_updated_arrays_equal_a_fresh_fit():
    """Per-firm features reused for unchanged firms must equal what a fit from scratch computes."""
    ents = load_demo_enterprises()[:120]
    rec = Recommender(default_catalogue(), HashEmbedder()).fit(ents[:100])
    renamed = ents[5].model_copy(update={"name": "新疆重命名测试铝业有限公司", "parent_group": None, "employees": 5})
    rec.update([renamed, *ents[100:]], removals=[ents[9].id])
    expected = [renamed if e.id == renamed.id else e for e in ents if e.id != ents[9].id]
    fresh = Recommender(default_catalogue(), HashEmbedder()).fit(expected)
    order = [rec.id_to_idx_[e.id] for e in fresh.enterprises_]
    for name in ("province_", "group_", "norm_name_", "industry_tokens_", "tenant_"):
        assert [getattr(rec, name)[i] for i in order] == getattr(fresh, name), name
    assert rec.capacity_[order].tolist() == fresh.capacity_.tolist()
