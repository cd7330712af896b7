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
