"""Realistic promotion requests (demo regions and ad hoc prefectures in 云南, 内蒙古, 江西), as a promotion officer
would ask them: the set judged for issue 20's precision@10 and checked for list hygiene (issue 15: no fictional,
duplicate or delisted firm once the A-share corpus is loaded). Authored from the catalogue and the demo regions;
no request comes from a deal record."""

from __future__ import annotations

from typing import Any

__all__ = ["REALISTIC_REQUESTS"]

#: (label, region keywords of :class:`~matcher.ranking.recommendation.RecommendRequest`, chain, link or None)
REALISTIC_REQUESTS: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("玛纳斯县·铝棒", dict(region="manas"), "aluminium", "铝棒"),
    ("阜康市·PVC型材", dict(region="fukang"), "plastics", "PVC型材"),
    ("准东·煤制烯烃", dict(region="zhundong", text="煤制烯烃"), "coal_chemical", None),  # the officer's words as free text
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
    ("宜春·锂电原料 → 碳酸锂", dict(province="江西", prefecture="宜春市"), "lithium_battery", "碳酸锂"),
    ("赣州·稀土", dict(province="江西", prefecture="赣州市"), "rare_earth", None),
    ("上饶·光伏组件", dict(province="江西", prefecture="上饶市"), "photovoltaic", "光伏组件"),
    ("九江·有机硅", dict(province="江西", prefecture="九江市"), "organosilicon", None),
]
