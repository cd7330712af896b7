"""Province geography: short names, and great-circle distance between provincial capitals (km)."""

from __future__ import annotations

import math

from matcher.text import normalize_text

# Approximate coordinates (lat, lon) of each provincial capital.
CAPITALS: dict[str, tuple[float, float]] = {
    "北京": (39.90, 116.40), "天津": (39.13, 117.20), "河北": (38.04, 114.51), "山西": (37.87, 112.55),
    "内蒙古": (40.84, 111.75), "辽宁": (41.80, 123.43), "吉林": (43.82, 125.32), "黑龙江": (45.80, 126.53),
    "上海": (31.23, 121.47), "江苏": (32.06, 118.80), "浙江": (30.27, 120.15), "安徽": (31.82, 117.23),
    "福建": (26.07, 119.30), "江西": (28.68, 115.86), "山东": (36.65, 117.12), "河南": (34.75, 113.62),
    "湖北": (30.59, 114.31), "湖南": (28.23, 112.94), "广东": (23.13, 113.26), "广西": (22.82, 108.32),
    "海南": (20.04, 110.34), "重庆": (29.56, 106.55), "四川": (30.57, 104.07), "贵州": (26.65, 106.63),
    "云南": (25.04, 102.71), "西藏": (29.65, 91.14), "陕西": (34.34, 108.94), "甘肃": (36.06, 103.83),
    "青海": (36.62, 101.78), "宁夏": (38.49, 106.23), "新疆": (43.83, 87.62), "香港": (22.32, 114.17),
    "澳门": (22.20, 113.55), "台湾": (25.03, 121.57),
}
_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "特别行政区", "省", "市")


def province_short(name: str | None) -> str | None:
    """'江苏省' → '江苏', '新疆维吾尔自治区' → '新疆'; None if not a province."""
    if not name:
        return None
    key = normalize_text(name)
    for suffix in _SUFFIXES:
        if key.endswith(suffix) and key[: -len(suffix)] in CAPITALS:
            return key[: -len(suffix)]
    if key in CAPITALS:
        return key
    for prov in CAPITALS:  # '江苏苏州' and similar
        if key.startswith(prov):
            return prov
    return None


def distance_km(a: str | None, b: str | None) -> float | None:
    """Great-circle distance between two provinces' capitals, or None if either is unknown."""
    pa, pb = province_short(a), province_short(b)
    if pa is None or pb is None:
        return None
    (lat1, lon1), (lat2, lon2) = CAPITALS[pa], CAPITALS[pb]
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
