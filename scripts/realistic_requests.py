"""The 24 realistic requests judged for issue 20 (demo regions and ad hoc prefectures in 云南, 内蒙古, 江西): ranks each
with the product over the A-share corpus and writes the top 10 with products and reasons as JSON for a reviewer.

    CHAINMATCH_EMBEDDER=e5-int8 python scripts/realistic_requests.py OUT.json [DATA_DIR]
"""
import json
import logging
import sys
from pathlib import Path
from matcher.settings import get_settings
from matcher.store.ashare import load_ashare_corpus
from evaluation.systems import fitted_recommender
from matcher.knowledge.regions import default_regions
from matcher.ranking.recommendation import RecommendRequest


def main() -> None:
    """Rank the requests and write the JSON file named on the command line."""
    logging.basicConfig(level=logging.WARNING)
    s = get_settings()
    rec = fitted_recommender(load_ashare_corpus(Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data")), s)
    book = default_regions()
    R = [  # (label, region kwargs, chain, link)
     ("玛纳斯县·铝棒", dict(region="manas"), "aluminium", "铝棒"),
     ("阜康市·PVC型材", dict(region="fukang"), "plastics", "PVC型材"),
     ("准东·煤制烯烃", dict(region="zhundong"), "coal_chemical", None),
     ("木垒·风电塔筒", dict(region="mulei"), "wind_power", "风电塔筒"),
     ("昌吉高新区·锂电池", dict(region="changji_hitech"), "lithium_battery", None),
     ("巩留县·化成箔", dict(region="gongliu"), "electronic_materials", "化成箔"),
     ("克拉玛依·石化", dict(region="karamay"), "petrochemical", None),
     ("库车·乙烯下游", dict(region="kuqa"), "petrochemical", "聚乙烯"),
     ("阿克苏·纺织", dict(region="aksu"), "textile_apparel", None),
     ("吉木萨尔·硅基", dict(region="jimsar"), "photovoltaic", "多晶硅"),
     ("呼图壁·乳业", dict(region="hutubi"), "dairy", None),
     ("昌吉州·番茄", dict(region="changji"), "tomato", None),
     ("曲靖·磷酸铁", dict(province="云南", prefecture="曲靖市"), "lithium_battery", "磷酸铁"),
     ("曲靖·光伏硅片", dict(province="云南", prefecture="曲靖市"), "photovoltaic", "硅片"),
     ("玉溪·电解铝下游", dict(province="云南", prefecture="玉溪市"), "aluminium", "铝型材"),
     ("昆明·生物医药", dict(province="云南", prefecture="昆明市"), "biomedicine", None),
     ("包头·稀土永磁", dict(province="内蒙古", prefecture="包头市"), "rare_earth", "钕铁硼永磁材料"),
     ("鄂尔多斯·煤制甲醇", dict(province="内蒙古", prefecture="鄂尔多斯市"), "coal_chemical", "甲醇"),
     ("呼和浩特·乳制品", dict(province="内蒙古", prefecture="呼和浩特市"), "dairy", "液态奶"),
     ("乌兰察布·储能", dict(province="内蒙古", prefecture="乌兰察布市"), "energy_storage", None),
     ("宜春·锂电正极", dict(province="江西", prefecture="宜春市"), "lithium_battery", "碳酸锂"),
     ("赣州·稀土", dict(province="江西", prefecture="赣州市"), "rare_earth", None),
     ("上饶·光伏组件", dict(province="江西", prefecture="上饶市"), "photovoltaic", "光伏组件"),
     ("九江·有机硅", dict(province="江西", prefecture="九江市"), "organosilicon", None),
    ]
    out = []
    for label, kw, chain, link in R:
        try:
            r = rec.recommend(RecommendRequest(chain=chain, link=link, k=10, **kw), book)
        except Exception as e:
            out.append({"request": label, "error": str(e)})
            continue
        out.append({"request": label, "chain": chain, "link": link, "resolved_link": r.link_id, "note": r.note,
                    "candidates": [{"rank": c.rank, "name": c.name, "province": c.province,
                                    "products": [p.name + (f" {round((p.share or 0)*100)}%" if p.share is not None else "") for p in rec.enterprises_[rec.id_to_idx_[c.enterprise_id]].products[:6]],
                                    "industry": rec.enterprises_[rec.id_to_idx_[c.enterprise_id]].sw_industry,
                                    "reasons": c.reasons[:3]} for c in r.candidates]})
        logging.getLogger("realistic").warning("%s: %d listed %s", label, len(r.candidates), r.note or "")
    json.dump(out, open(sys.argv[1], "w"), ensure_ascii=False, indent=1)



if __name__ == "__main__":
    main()
