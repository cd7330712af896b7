"""Product phrases cut into mappable segments: affixes stripped, quantities and bracketed notes dropped, and the
generic words and geography/sales-channel rows that never name a chain link."""

from __future__ import annotations

import re
from collections.abc import Container

from matcher.text import normalize_text, tokenize

__all__ = ["is_generic_segment", "split_segments"]

#: Words too generic to identify a link on their own (never a token seed, never a containment term),
#: including activity words (批发, 研发, 运营 …) that say what a firm does with a product, not which.
GENERIC_WORDS: frozenset[str] = frozenset(
    "其他 其它 材料 设备 产品 业务 服务 工程 商品 销售 加工 制造 生产 系统 项目 技术 配件 "
    "原料 原材料 制品 工业 贸易 行业 相关 综合 主营 收入 板块 系列 分部 合计 新材料 新能源 "
    "装备 器材 用品 零件 部件 组件 元件 器件 化工 化学 能源 电力 电子 机械 建材 金属 有色 "
    "材料类 其他类 物资 硬件 解决方案 方案 整体 专用 工业品 高端 高效 新型 智能 绿色 环保 "
    "节能 复合 特种 精细 功能 有限 公司 集团 批发 零售 出口 进口 研发 设计 应用 管理 运营 "
    "经营 开发 安装 施工 维修 检修 检测 咨询 代理 营销 中心 平台 集成 制作 供应 自动化 智能化 "
    "数字化 自产 外购 国内 国外 境内 境外 海外 内销 外销 基地 领域 产业 成套 装置 制造业 "
    "服务业 销售业务 电器".split()
)


#: Single characters that carry no meaning in a product name (kept out of token vectors).
_STOP_CHARS = frozenset("的和与及等用类型式性级个种各其含由为之所或并兼")


#: Whole rows that describe a segment type or a balancing entry, not a product.
_SEGMENT_ROWS: frozenset[str] = frozenset(
    "其他 其它 其他业务 其它业务 主营业务 主营业务收入 其他业务收入 其他主营业务 其他产品 "
    "其他业务小计 补充 其他(补充) 平衡项目 分部间抵销 抵销 内部抵销 调整项目 合并抵销 "
    "分部间抵消 抵消 合计 小计 总计 主营 非主营 主营收入 产品 商品 材料 设备 服务 业务 工程 "
    "销售 销售商品 商品销售 材料销售 销售材料 工业 商业 贸易 其他收入 营业收入 主营产品 "
    "其他主营 其他行业 其他产品销售 其他商品 其他服务 其他材料 国内贸易 国际贸易 国内外贸易 "
    "进出口 进出口贸易 贸易业务 商品贸易 服务业 制造业 工业产品".split()
)


_REGIONS = (
    "华东|华南|华北|华中|西南|西北|东北|华西|中南|华东南|东南|西部|东部|中部|北方|南方|南部|北部|"
    "国内|国外|境内|境外|海外|内销|外销|出口|进口|中国大陆|大陆|港澳台|港澳|香港|澳门|台湾|中国|全国|本地|"
    "北京|上海|天津|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|"
    "四川|贵州|云南|陕西|甘肃|青海|内蒙古|广西|宁夏|西藏|新疆|亚洲|欧洲|美洲|北美|南美|非洲|大洋洲|中东|东南亚|"
    "日本|韩国|美国|欧盟|印度|俄罗斯|其他国家|其他地区|其它地区|其他区域|海外地区|境外地区|境内地区|国际|一带一路"
)


_GEO_ROW = re.compile(
    rf"^(?:(?:{_REGIONS})(?:地区|区域|省|市|自治区|大区|片区|以外|以内|及其他|和其他|等)?)+"
    r"(?:销售|市场|收入|业务|客户|营业收入|主营业务收入|贸易|公司|子公司|分部|业务分部)?$"
)


_SALES_CHANNEL_ROW = re.compile(
    r"^(?:直销|经销|代销|分销|零售|批发|线上|线下|电商|自营|加盟|联营|代理)(?:模式|渠道|销售|收入)?$"
)


_LEADING_AFFIXES = (
    "其中:",
    "其中",
    "国内销售",
    "国外销售",
    "境内销售",
    "境外销售",
    "内销",
    "外销",
    "出口",
    "进口",
    "国内",
    "国外",
    "境内",
    "境外",
    "海外",
    "销售",
    "自产",
    "外购",
    "生产",
    "制造",
    "主营",
    "其他",
    "其它",
    "贸易",
    "代理",
    "纳米",  # 纳米磷酸铁锂 is 磷酸铁锂 made as a nano powder: the material, not another product
)


_TRAILING_AFFIXES = (
    "销售收入",
    "业务收入",
    "主营业务",
    "及其他",
    "及相关",
    "等产品",
    "系列产品",
    "类产品",
    "业务分部",
    "营销中心",
    "专业承包",
    "运营管理",
    "销售业务",
    "养殖业",
    "种植业",
    "销售",
    "业务",
    "收入",
    "产品",
    "系列",
    "板块",
    "行业",
    "产业",
    "制造",
    "生产",
    "加工",
    "项目",
    "分部",
    "批发",
    "零售",
    "出口",
    "进口",
    "贸易",
    "研发",
    "设计",
    "运营",
    "安装",
    "勘探",
    "开采",
    "采选",
    "种植",
    "养殖",
    "类",
    "等",
    "业",  # 番茄业, 纺织业: an industry-named segment (业务 and 制造业 are handled above)
)


_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|<[^<>]*>|《|》|\"|'")


_QUANTITY = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?:万|千)?(?:吨|t)(?:\/a|\/年)?")


_SPLIT = re.compile(
    r"[、,;/|&+]|以及|及|与|(?<![调饱中缓柔温])和(?!田)|(?<=[\u4e00-\u9fff])(?:-{1,2}|—{1,2}|–)(?=[\u4e00-\u9fff])"
)


#: Words after a term that leave the term as the head of the phrase (大数据**应用**, 火电**电力**).
_TRANSPARENT_TAILS = frozenset(
    "应用 工程 系统 服务 发电 电力 制品 运营 管理 开发 设计 技术 研发 供应 经营 业务 产品 销售 运维 建设 "
    "电费 热力 生产 加工 制造 预处理 品".split()
)


_TRANSPARENT_TAIL = re.compile(rf"(?:{'|'.join(sorted(_TRANSPARENT_TAILS, key=len, reverse=True))})+$")


#: A segment ending in one of these names equipment *for* what precedes it (光伏组件装备, PE管生产线).
_EQUIPMENT_SUFFIX = re.compile(r"(?:成套设备|专用设备|生产设备|设备|装备|生产线|机械)$")


_LEADING_RE = re.compile("^(?:" + "|".join(map(re.escape, _LEADING_AFFIXES)) + ")")


_TRAILING_RE = re.compile("(?:" + "|".join(map(re.escape, _TRAILING_AFFIXES)) + ")$")


def _strip_affixes(text: str, keep: Container[str] = ()) -> str:
    """Drop leading/trailing affixes (内销…, …销售业务) while two characters remain.

    Stops early once the text is in ``keep`` (catalogue terms such as 药品零售 stay whole).
    """
    while text not in keep:
        m = _LEADING_RE.match(text)
        if m and len(text) - m.end() >= 2:
            text = text[m.end() :]
            continue
        m = _TRAILING_RE.search(text)
        if m and m.start() >= 2:
            text = text[: m.start()]
            continue
        break
    return text


def is_generic_segment(text: str) -> bool:
    """True for rows that name no product: segment types, balancing rows, geography or sales channels.

    Example:
        >>> is_generic_segment("华东地区"), is_generic_segment("其他业务"), is_generic_segment("电解铝")
        (True, True, False)
    """
    key = normalize_text(text)
    if not key:
        return True
    if key in _SEGMENT_ROWS or key in GENERIC_WORDS:
        return True
    if _GEO_ROW.match(key) or _SALES_CHANNEL_ROW.match(key):
        return True
    return len(key) < 2 and not key.isascii()


def split_segments(text: str, keep: Container[str] = ()) -> list[str]:
    """Normalised product segments of a phrase: brackets dropped, split on 、/及/与/和, affixes stripped.

    Example:
        >>> split_segments("单晶硅片及组件销售")
        ['单晶硅片', '组件']
    """
    key = _QUANTITY.sub("", normalize_text(text))
    main = _BRACKETED.sub("", key)
    if not main:  # the whole phrase was in brackets
        main = re.sub(r"[()\[\]<>]", "", key)
    out: list[str] = []
    form = _FORM_NOTE.fullmatch(key)
    if form:  # 铝合金(圆棒): a material named with its form in brackets is the formed product (铝合金圆棒)
        out.append(form.group(1) + form.group(2))
    for part in _SPLIT.split(main):
        part = part.strip(" -_:.()")
        if not part:
            continue
        part = _strip_affixes(part, keep)
        if part and not is_generic_segment(part) and part not in out:
            out.append(part)
    return out


#: A short material name followed by a short bracketed form (铝合金(圆棒), 钢(方坯)); notes such as (含税), (注1) or
#: (其他) are not forms.
_FORM_NOTE = re.compile(r"([\u4e00-\u9fff]{1,4})\((?![含包不注其如即主自外内按])([\u4e00-\u9fff]{2,3})\)")


def _content_token(t: str) -> bool:
    return len(t) >= 2 and t not in GENERIC_WORDS and not t.isdigit()


_ASCII_RUN = re.compile(r"[a-z0-9]{2,}")
_LETTER_RUN = re.compile(r"[a-z]+")


_VARIANT_DROP = str.maketrans("", "", "式型用")


def _vector_tokens(text: str) -> frozenset[str]:
    """Tokens of a text's IDF vector: its finest words plus what no word covers (single characters such as
    钨 or 铜, Latin runs such as gpu).

    jieba's search mode also emits compounds (铝型材 beside 型材, or an added catalogue term as a
    whole); keeping only the finest words lets 铝工业型材 share its words with 铝型材 instead of missing
    one rare compound token. Generic words (系统, 自动化) stay whole and stay in the vector, where their
    low IDF weighs little; they never seed a match (see :func:`_content_token`).
    """
    words = [t for t in tokenize(text, keep_stop=True) if len(t) >= 2 and not t.isdigit()]
    # a Latin word is its whole letter run: jieba cuts ppp into pp + p (PPP项目 is not PP)
    letters = set(_LETTER_RUN.findall(text))
    words = [w for w in words if not (w.isascii() and w.isalpha()) or w in letters] + sorted(
        r for r in letters if len(r) >= 2 and r not in words
    )
    generic = [w for w in words if w in GENERIC_WORDS]
    words = [w for w in words if w in GENERIC_WORDS or not any(w in g for g in generic)]
    fine = [w for w in words if w in GENERIC_WORDS or not any(o != w and o in w for o in words)]
    # 聚 + monomer is the polymer, a different product (聚乙二醇 is not 乙二醇)
    fine = [f"聚{w}" if w[0] != "聚" and f"聚{w}" in text else w for w in fine]
    covered = [False] * len(text)
    for w in fine:
        start = text.find(w)
        while start >= 0:
            covered[start : start + len(w)] = [True] * len(w)
            start = text.find(w, start + 1)
    rest = "".join(c if not cov else " " for c, cov in zip(text, covered, strict=True))
    singles = {c for c in rest if "\u4e00" <= c <= "\u9fff" and c not in _STOP_CHARS}
    runs = {r for r in _ASCII_RUN.findall(rest) if not r.isdigit()}
    return frozenset(fine) | singles | runs


def _inside(seg: str, token: str, covered: list[tuple[int, int]]) -> bool:
    start = seg.find(token)
    while start >= 0:
        end = start + len(token)
        if not any(a <= start and end <= b for a, b in covered):
            return False
        start = seg.find(token, start + 1)
    return True
