"""The chain catalogue must not contain evaluation data (issue #20 item 1).

``deals_dev.jsonl`` (outside the repository, in the shared data folder) holds real investment deals used ONLY to
measure the product. Earlier catalogue versions copied deal strings verbatim into chain/link aliases and typical
products, which inflates every measurement made on those deals. This test fails when a deal's ``product_link``,
``chain`` or ``project`` string (or one of its parts) is verbatim a catalogue chain name, chain alias, link name,
link alias or typical product — unless the term is a standard one on :data:`STANDARD_TERMS`.

What counts as "verbatim" (after :func:`matcher.text.normalize_text`):

* the whole deal string, or one of its parts split at ``/ 、 , ; + ( )``, 及/与/和/等 and whitespace, equals a
  catalogue term;
* a catalogue term of >= 5 characters occurs inside a deal's ``product_link`` or ``chain`` (catches the deal phrase
  with a qualifier dropped, e.g. "涤粘混纺涡流纺纱线" → "涡流纺纱线"), or a term of >= 6 characters occurs inside a
  deal's ``project`` sentence.

When this test fails, remove the term from the YAML. Add it to :data:`STANDARD_TERMS` only when it is a standard
term any domain source would use (GB/T 4754-2017 class names, national/industry product standards, textbooks, the
seed articles in ``shared/seeds``), with a one-line justification naming that source type. Never look at the deals
for vocabulary: they are for measuring only.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from matcher.knowledge.catalogue import load_catalogue
from matcher.text import normalize_text

REPO_ROOT = Path(__file__).resolve().parents[1]
DEALS_DEV = REPO_ROOT.parent / "shared/data/deals/deals_dev.jsonl"
DEAL_FIELDS = ("product_link", "chain", "project")
_PARTS = re.compile(r"[/、,，;；+＋|｜()\[\]\s]|及|与|和|等")
MIN_CONTAINED = {"product_link": 5, "chain": 5, "project": 6}

# Standard terms that are allowed to coincide with deal wording. One line each: term → the domain source type.
STANDARD_TERMS: dict[str, str] = {
    # --- chain names / industry names (GB/T 4754-2017 class names, national policy names, seed articles) ---
    "光伏": "seed articles 000/002 (昌吉州 光伏产业链); GB/T 4754-2017 3825 光伏设备及元器件制造",
    "硅基新材料": "seed article 002 (昌吉州 硅基新材料产业链)",
    "铝基新材料": "seed article 002 (昌吉州 铝基新材料产业链)",
    "铝产业": "seed article 002 (铝产业 as the 昌吉州 优势产业)",
    "现代煤化工": "seed articles; NDRC 《现代煤化工产业创新发展布局方案》 policy name",
    "化纤": "seed article 000/002; abbreviation of GB/T 4754-2017 28 化学纤维制造业",
    "纺织服装": "seed articles (棉花和纺织服装产业集群, Xinjiang cluster name)",
    "氢能": "seed article 002/004 (氢能产业链)",
    "风电装备": "seed articles 000/002 (风电装备产业链)",
    "风电装备制造": "seed article 002 (风电装备制造)",
    "新能源装备": "seed article 002 (新能源装备)",
    "新能源高端装备制造": "seed article 000 (新能源高端装备制造 chain name)",
    "新型建材": "national industry policy name (工信部 建材工业发展规划 新型建材)",
    "塑料管材": "GB/T 4754-2017 2922 塑料板、管、型材制造 (管材); seed article 001 (PVC/PE 管材)",
    "电子材料": "GB/T 4754-2017 398 电子元件及电子专用材料制造",
    "输变电": "textbook power-equipment industry name (输变电设备)",
    "锂电": "standard industry abbreviation of 锂离子电池 (GB/T 4754-2017 3841 锂离子电池制造)",
    "锂离子电池": "GB/T 4754-2017 3841 锂离子电池制造",
    # --- product / link names from GB/T 4754, national and industry product standards, textbooks ---
    "多晶硅": "GB/T 25074 太阳能级多晶硅; seed article 002",
    "单晶硅棒": "GB/T 25076 太阳电池用硅单晶 (硅单晶棒), PV textbooks",
    "单晶硅片": "GB/T 26071 太阳能电池用硅单晶片",
    "太阳能电池": "GB/T 2297 太阳光伏能源系统术语; PV textbooks",
    "光伏组件": "GB/T 9535 / IEC 61215 地面用晶体硅光伏组件",
    "铝棒": "YS/T 67 变形铝及铝合金圆铸锭 (铝棒), aluminium textbooks",
    "铝型材": "GB/T 6892 一般工业用铝及铝合金挤压型材",
    "再生铝": "GB/T 38472 再生铸造铝合金原料; aluminium-industry textbooks",
    "涤纶": "GB/T 4754-2017 2822 涤纶纤维制造",
    "离子膜烧碱": "GB/T 11199 离子交换膜法氢氧化钠 (离子膜烧碱), chlor-alkali textbooks",
    "聚氯乙烯树脂": "GB/T 5761 悬浮法通用型聚氯乙烯树脂",
    "烯烃": "coal-to-olefins textbook term (煤制烯烃); seed article 002",
    "甲醇": "GB/T 338 工业用甲醇",
    "二甲醚": "GB 25035 城镇燃气用二甲醚",
    "lng": "GB/T 38753 液化天然气 (LNG), standard abbreviation",
    "铝电解电容器": "GB/T 4754-2017 3981 电阻电容电感元件制造; GB/T 5993 电子设备用固定电容器",
    "电子铝箔": "GB/T 3615 电解电容器用铝箔 (电子铝箔), industry term",
    "腐蚀箔": "SJ/T electronics industry standard for 铝电解电容器用电极箔 (腐蚀箔/化成箔)",
    "化成箔": "SJ/T electronics industry standard for 铝电解电容器用电极箔; seed article 001",
    "电极箔": "SJ/T electronics industry standard for 铝电解电容器用电极箔",
    "碳酸锂": "GB/T 11075 碳酸锂; YS/T 582 电池级碳酸锂",
    "磷酸铁": "HG/T 4701 电池用磷酸铁",
    "磷酸铁锂": "GB/T 30835 锂离子电池用炭复合磷酸铁锂正极材料",
    "磷酸锰铁锂": "battery-materials textbook cathode name (LiMnxFe1-xPO4, LMFP)",
    "三元正极材料": "corpus product name (company_product.jsonl); YS/T 798 镍钴锰酸锂",
    "锂电铜箔": "GB/T 36146 锂离子电池用电解铜箔 (锂电铜箔)",
    "铜杆": "GB/T 3952 电工用铜线坯 (铜杆), copper textbooks",
    "钛合金": "GB/T 3620.1 钛及钛合金牌号和化学成分",
    "pe双壁波纹管": "GB/T 19472.1 聚乙烯双壁波纹管材; seed article 001",
    "双壁波纹管": "GB/T 19472.1 埋地用聚乙烯(PE)结构壁管道系统 双壁波纹管材; seed article 001",
    "pvc管": "GB/T 10002.1 给水用硬聚氯乙烯(PVC-U)管材; seed article 001",
    "服装": "GB/T 4754-2017 18 纺织服装、服饰业; seed articles",
    "棉纱": "GB/T 398 棉本色纱线",
    "纺纱": "GB/T 4754-2017 1711 棉纺纱加工",
    "纱线": "textile textbooks; GB/T 398 棉本色纱线",
    "织布": "GB/T 4754-2017 1712 棉织造加工; seed article 000",
    "印染": "GB/T 4754-2017 1713 棉印染精加工",
    "风电机组": "GB/T 18451.1 风力发电机组 (standard abbreviation)",
    "风电叶片": "GB/T 25383 风力发电机组 风轮叶片; seed articles",
    "风电塔筒": "GB/T 19072 风力发电机组 塔架 (塔筒)",
    "塔筒": "GB/T 19072 风力发电机组 塔架 (塔筒)",
    "风电齿轮箱": "GB/T 19073 风力发电机组 齿轮箱",
}


def _deals() -> list[dict]:
    if not DEALS_DEV.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"evaluation deals missing in CI: {DEALS_DEV}")
        pytest.skip(f"evaluation deals not available at {DEALS_DEV}")
    with DEALS_DEV.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _catalogue_terms() -> dict[str, list[str]]:
    """Normalised catalogue term → where it is defined (chain name/alias, link name/alias/product)."""
    cat = load_catalogue()
    where: dict[str, list[str]] = {}

    def add(term: str, place: str) -> None:
        key = normalize_text(term)
        if key:
            where.setdefault(key, []).append(place)

    for chain in cat.chains.values():
        add(chain.name, f"{chain.id}: chain name")
        for alias in chain.aliases:
            add(alias, f"{chain.id}: chain alias")
    for link in cat.links.values():
        add(link.name, f"{link.id}: link name")
        for alias in link.aliases:
            add(alias, f"{link.id}: link alias")
        for product in link.products:
            add(product, f"{link.id}: product")
    return where


def _deal_parts(text: str) -> set[str]:
    key = normalize_text(text)
    return {key, *(p for p in _PARTS.split(key) if p)} - {""}


def find_leaks(deals: list[dict], terms: dict[str, list[str]]) -> dict[str, set[str]]:
    """Catalogue term → ids/fields of the deals it was found in (allowlist not applied)."""
    leaks: dict[str, set[str]] = {}
    for deal in deals:
        for field in DEAL_FIELDS:
            text = deal.get(field)
            if not isinstance(text, str) or not text.strip():
                continue
            whole = normalize_text(text)
            parts = _deal_parts(text)
            for term in terms:
                if term in parts or (len(term) >= MIN_CONTAINED[field] and term in whole):
                    leaks.setdefault(term, set()).add(f"{deal.get('id', '?')}.{field}")
    return leaks


def test_the_deal_file_has_the_fields_this_check_reads():
    deals = _deals()
    assert deals, "deals_dev.jsonl is empty"
    for field in DEAL_FIELDS:
        assert any(isinstance(d.get(field), str) and d[field].strip() for d in deals), field


def test_no_deal_string_is_a_catalogue_term_beyond_the_standard_allowlist():
    terms = _catalogue_terms()
    leaks = find_leaks(_deals(), terms)
    allowed = {normalize_text(t) for t in STANDARD_TERMS}
    bad = {t: v for t, v in leaks.items() if t not in allowed}
    report = "\n".join(f"  {t}  in {sorted(terms[t])}  (deals: {', '.join(sorted(v)[:3])})" for t, v in sorted(bad.items()))
    assert not bad, f"catalogue terms copied from the evaluation deals (remove them from the YAML):\n{report}"


def test_every_allowlist_entry_is_justified_and_still_needed():
    """Each entry names its domain source; an entry no longer in the catalogue must be dropped (keeps it short)."""
    terms = _catalogue_terms()
    for term, why in STANDARD_TERMS.items():
        assert term == normalize_text(term), f"{term!r}: write allowlist entries in normalised form"
        assert len(why) >= 8 and "\n" not in why, f"{term!r}: needs a one-line source justification"
        assert term in terms, f"{term!r} is no longer a catalogue term: remove it from STANDARD_TERMS"


def test_the_checker_catches_a_copied_deal_phrase():
    deals = [{"id": "X1", "product_link": "示例/高端涡流纺示例纱线(试产)", "chain": "示例链", "project": "年产1万吨项目"}]
    terms = {normalize_text("高端涡流纺示例纱线"): ["toy"], normalize_text("示例"): ["toy"], "无关术语": ["toy"]}
    leaks = find_leaks(deals, terms)
    assert set(leaks) == {normalize_text("高端涡流纺示例纱线"), normalize_text("示例")}


def test_no_chain_file_header_cites_evaluation_deals():
    from matcher.knowledge.catalogue import CHAINS_DIR

    for path in sorted(CHAINS_DIR.glob("*.yaml")):
        header = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("#")]
        text = "\n".join(header).lower()
        assert "deal" not in text and "evaluation" not in text, f"{path.name}: header cites evaluation deals"


def test_every_chain_file_lists_the_domain_sources_it_was_built_from():
    """Issue #16 item 4: a top-level ``sources:`` list (GB/T 4754-2017 classes, standards, seed articles …)."""
    import yaml

    from matcher.knowledge.catalogue import CHAINS_DIR

    for path in sorted(CHAINS_DIR.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        sources = raw.get("sources")
        assert isinstance(sources, list) and sources, f"{path.name}: no 'sources:' list"
        assert all(isinstance(s, str) and s.strip() for s in sources), path.name
        assert any(s.startswith("GB/T 4754-2017") for s in sources), f"{path.name}: cite the GB/T 4754-2017 classes"
        assert not any("deal" in s.lower() for s in sources), f"{path.name}: evaluation deals are not a source"


# --- beyond the catalogue: every file of product data ---------------------------------------------------------------
#: Data the product ships or generates from: authored demo firms, regions, signals, aiding pairs, chain files (their
#: comments too), the synthetic benchmark and the README's examples.
PRODUCT_DATA = ("matcher/data/**/*.yaml", "matcher/data/**/*.jsonl", "evaluation/synthetic.py", "README.md")
PLACE_FIELD = "region_county_or_park"
#: Deal strings that name public geography or a standard product class, with the source they come from.
SOURCED_ELSEWHERE: dict[str, str] = {
    "图木舒克市": "GB/T 2260 administrative division (兵团第三师), named in the 产业援疆 pairing table",
    "胡杨河市": "GB/T 2260 administrative division (兵团第七师), named in the 产业援疆 pairing table",
    "电气装备": "part of 电气装备用电线电缆, the standard cable product class (GB/T 5023, JB/T 8734 titles)",
    "磷酸铁锂正极材料": "GB/T 30835 锂离子电池用炭复合磷酸铁锂正极材料 (the standard's title)",
    "开发区": "generic word of Chinese place names (经济技术开发区)",
    "氯碱化工": "corpus company short name (company.json 600618 氯碱化工 = 上海氯碱化工股份有限公司, a demo firm's alias)",
}


def _product_files() -> dict[str, str]:
    out: dict[str, str] = {}
    for pattern in PRODUCT_DATA:
        for path in sorted(REPO_ROOT.glob(pattern)):
            out[str(path.relative_to(REPO_ROOT))] = normalize_text(path.read_text(encoding="utf-8"))
    return out


def _corpus_products() -> set[str]:
    path = DEALS_DEV.parents[1] / "ChainKnowledgeGraph" / "company_product.jsonl"
    with path.open(encoding="utf-8") as fh:
        return {normalize_text(json.loads(line)["product_name"]) for line in fh if line.strip()}


def _seed_text() -> str:
    return "".join(normalize_text(p.read_text(encoding="utf-8")) for p in sorted((DEALS_DEV.parents[2] / "seeds").glob("*")))


def find_product_leaks(
    files: dict[str, str], deals: list[dict], allowed: set[str], seeds: str
) -> dict[str, set[str]]:
    """Deal string (or part) → files holding it verbatim, for the strings no other source names."""
    found: dict[str, set[str]] = {}
    for deal in deals:
        for field in (*DEAL_FIELDS, PLACE_FIELD):
            text = deal.get(field)
            if not isinstance(text, str) or not text.strip():
                continue
            for part in _deal_parts(text):
                if len(part) < 3 or not re.search(r"[\u4e00-\u9fff]", part) or part in allowed or part in seeds:
                    continue
                for name, body in files.items():
                    if part in body:
                        found.setdefault(part, set()).add(f"{name} ({deal.get('id')}.{field})")
    return found


def test_no_deal_string_appears_in_any_product_data_file():
    """Issue 20: deals measure the product; no deal string (chain, product link, project, park) may appear verbatim in
    data the product ships, unless a standard, a corpus product name or a seed article names it too."""
    allowed = {normalize_text(t) for t in (*STANDARD_TERMS, *SOURCED_ELSEWHERE)} | _corpus_products()
    found = find_product_leaks(_product_files(), _deals(), allowed, _seed_text())
    report = "\n".join(f"  {t}: {sorted(v)[:3]}" for t, v in sorted(found.items()))
    assert not found, f"deal strings copied into product data:\n{report}"


def test_the_product_data_checker_catches_a_copied_park_and_project():
    deals = [{"id": "X1", "chain": "示例链", "product_link": "示例产品", "project": "年产9万吨示例材料项目",
              "region_county_or_park": "示例经济开发区"}]  # fmt: skip
    files = {"a.yaml": "落户示例经济开发区", "b.jsonl": "年产9万吨示例材料项目", "c.py": "无关内容"}
    found = find_product_leaks(files, deals, allowed=set(), seeds="")
    assert set(found) == {"示例经济开发区", "年产9万吨示例材料项目"}
    assert find_product_leaks(files, deals, allowed={"示例经济开发区"}, seeds="年产9万吨示例材料项目") == {}
