"""A chain-level need pools firms whose segment names the chain itself (番茄业 7.7%): no link posting lists them."""

from __future__ import annotations

from matcher.knowledge.catalogue import default_catalogue
from matcher.ranking.candidates import SourceDepth
from matcher.ranking.recommendation import RecommendRequest
from matcher.ranking.recommender import Recommender
from matcher.records import Enterprise, Product
from models.embedders import HashEmbedder


def test_a_chain_named_segment_brings_the_firm_into_a_chain_level_list():
    corpus = [
        Enterprise(id="a1", name="甲化工股份有限公司", province="新疆", employees=9000, sw_industry="氯碱",
                   products=[Product(name="聚氯乙烯树脂", share=0.5), Product(name="番茄业", share=0.077)]),
        Enterprise(id="b2", name="乙果业股份有限公司", province="新疆", employees=800,
                   products=[Product(name="番茄酱", share=0.6)]),
    ] + [Enterprise(id=f"z{i}", name=f"丙{i}塑料有限公司", province="浙江", employees=100,
                    products=[Product(name="PVC管材", share=0.9)]) for i in range(30)]  # fmt: skip
    # text sources pool one firm each: only the chain-named pooling can bring 甲化工 in
    depth = SourceDepth(dense=1, lexical=1, graph=300, tfidf=1, related=1)
    rec = Recommender(default_catalogue(), HashEmbedder(), depth=depth).fit(corpus)
    r = rec.recommend(RecommendRequest(chain="tomato", k=10))
    got = [c.enterprise_id for c in r.candidates]
    assert "a1" in got and "b2" in got
    a1 = next(c for c in r.candidates if c.enterprise_id == "a1")
    assert any("番茄业" in x for x in a1.reasons)


def test_a_firm_that_trades_the_link_is_no_maker_of_it():
    """万邦德: 铝锭 48% would clear the on-site bar for 铝棒 (铝水 → 铝棒), but its own 铝棒 line is 铝棒贸易."""
    corpus = [
        Enterprise(id="trader", name="甲新材股份有限公司", province="浙江", employees=1500,
                   products=[Product(name="铝锭", share=0.48), Product(name="铝棒贸易", share=0.47)]),
        Enterprise(id="smelter", name="乙铝业股份有限公司", province="河南", employees=5000,
                   products=[Product(name="电解铝", share=0.9)]),
        Enterprise(id="caster", name="丙铝材有限公司", province="广东", employees=800,
                   products=[Product(name="铝棒", share=0.7)]),
    ]  # fmt: skip
    rec = Recommender(default_catalogue(), HashEmbedder()).fit(corpus)
    r = rec.recommend(RecommendRequest(chain="aluminium", link="aluminium_rod", k=10))
    got = [c.enterprise_id for c in r.candidates]
    assert got == ["caster"]
    assert "smelter" in {c.enterprise_id for c in r.expansions}  # it could cast 铝棒 from its 铝水: an entrant

