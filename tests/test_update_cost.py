"""The cost of keeping a fitted recommender current: an upsert of a few profiles must not re-tokenise the
whole corpus (it did: jieba over every profile on every API upsert, ~10 s per request at 4,600 A-share firms
under load, holding the index write lock that recommendations wait on)."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.knowledge.catalogue import default_catalogue
from matcher.ranking.recommendation import Filters
from matcher.ranking.recommender import Recommender
from matcher.records import Product
from matcher.store.demo import load_demo_enterprises
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
    from matcher.ranking.recommendation import RecommendRequest

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


def _assert_same_arrays(rec: Recommender, fresh: Recommender) -> None:
    """Every per-firm structure of ``rec`` equals a fresh fit's, position for position."""
    assert [e.id for e in rec.enterprises_] == [e.id for e in fresh.enterprises_]
    for name in ("province_", "group_", "norm_name_", "industry_tokens_", "tenant_", "posted_links_"):
        assert getattr(rec, name) == getattr(fresh, name), name
    for name in ("capacity_", "listed_"):
        assert getattr(rec, name).tolist() == getattr(fresh, name).tolist(), name
    np.testing.assert_array_equal(rec.employees_, fresh.employees_)
    assert rec.postings_ == fresh.postings_ and rec.by_norm_name_ == fresh.by_norm_name_ and rec.n_ == fresh.n_
    np.testing.assert_allclose(rec.vectors_, fresh.vectors_, rtol=0, atol=1e-6)
    for tenant in (None, "acme", "beta", "nobody"):  # the same firms are visible to each tenant
        mine = rec._mask(Filters(), tenant, [], set())[0]
        theirs = fresh._mask(Filters(), tenant, [], set())[0]
        assert mine.tolist() == theirs.tolist(), tenant


def test_upserts_patch_the_arrays_like_a_fresh_fit():
    """Upserts without removals take the O(changed) path: replaced and appended firms, twice, equal a fit."""
    ents = load_demo_enterprises()[:150]
    rec = Recommender(default_catalogue(), HashEmbedder()).fit(ents[:100])
    expected = list(ents[:100])
    for round_ in range(2):
        replaced = [
            ents[3 + round_].model_copy(update={"name": f"新疆改名{round_}铝业有限公司", "employees": 7 + round_}),
            ents[40].model_copy(update={"products": [Product(name="钙钛矿叠层电池组件", share=0.9)], "tenant": "acme"}),
        ]
        added = [e.model_copy(update={"tenant": "beta"}) for e in ents[100 + 25 * round_ : 125 + 25 * round_]]
        rec.update([*replaced, *added, replaced[0]])  # a firm twice in one batch: one upsert
        for e in replaced:
            expected[next(i for i, x in enumerate(expected) if x.id == e.id)] = e
        expected += added
        fresh = Recommender(default_catalogue(), HashEmbedder()).fit([e.model_copy() for e in expected])
        _assert_same_arrays(rec, fresh)
    assert len(rec.vindex_) == len(expected)


def test_an_update_with_removals_takes_the_full_path_and_equals_a_fresh_fit():
    ents = load_demo_enterprises()[:80]
    rec = Recommender(default_catalogue(), HashEmbedder()).fit(ents[:60])
    rec.update([ents[61], ents[5].model_copy(update={"employees": 3})], removals=[ents[0].id, ents[30].id])
    expected = [e for e in ents[:60] if e.id not in (ents[0].id, ents[30].id)]
    expected[[e.id for e in expected].index(ents[5].id)] = ents[5].model_copy(update={"employees": 3})
    expected.append(ents[61])
    _assert_same_arrays(rec, Recommender(default_catalogue(), HashEmbedder()).fit(expected))


def test_memoised_search_cut_equals_jiebas_own():
    """:class:`matcher.jieba_cut.SearchCutter` (memoised blocks, a leaner route) against jieba's own cut."""
    import random

    from matcher.ranking.profile_text import profile_text
    from matcher.text import _jieba, _search_tokens, normalize_text

    jb = _jieba()
    texts = []
    for e in load_demo_enterprises()[:300]:
        texts += [normalize_text(" ".join([e.name, *(p.name for p in e.products), e.scope])), profile_text(e)]
    links = default_catalogue().links.values()
    terms = [t for link in links for t in (link.name, *link.aliases, *link.products)]
    rng = random.Random(7)
    texts += ["".join(rng.choice(terms) for _ in range(rng.randint(1, 6))) for _ in range(500)]
    for _ in range(200):
        texts.append(f"容错j{rng.randint(0, 9)}b{rng.randint(0, 99)}号{rng.randint(0, 600)}有限公司6063铝棒")
    texts += ["", "a", "，。", "ab12.5%铝 合金\t锭", "𠀋中文"]
    for text in texts * 2:  # the second pass reads memoised blocks
        assert _search_tokens(text) == jb.lcut_for_search(text), text
