"""A synthetic benchmark whose truth is known by construction, to test the metrics and the harness end to end.

Seeded generation of regions with chain gaps and one planted supplier per gap: each case asks for a
product link of a chain in a region; the planted supplier's main product is exactly that link (and
its name appears in the project text, so masking is exercised too). Distractors make other links of
the same chain and of other chains.
A few cases are not in the corpus, to exercise the not-evaluable accounting.

Three reference systems have closed-form scores (:func:`expected_metrics`):

- ``oracle``: the planted supplier first — every recall, nDCG, MRR and hit is 1.
- ``reversed``: the planted supplier last of the whole corpus — with more documents than ``k_max`` it never
  appears, every metric is 0.
- ``stepped``: the planted supplier of the i-th evaluable case at rank ``(i mod 20) + 1``.

Example:
    >>> bench = make_synthetic_benchmark(seed=0)
    >>> systems = reference_systems(bench)
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evaluation.cases import Case, CaseQuery, build_qrels

CHAINS: dict[str, tuple[str, list[str]]] = {
    "锂电池材料": (
        "电池化学品",
        ["磷酸铁锂材料", "人造石墨负极材料", "六氟磷酸锂电解液", "湿法隔膜", "锂电铜箔"],
    ),
    "风电装备": ("风电零部件", ["风电叶片", "风电塔筒", "风电齿轮箱", "风电主轴轴承"]),
    "光伏硅材料": ("硅料硅片", ["多晶硅料", "单晶硅片", "光伏组件", "光伏玻璃"]),
    "纺织服装": ("棉纺制品", ["精梳棉纱", "坯布织造", "印染面料", "针织服装"]),
    "煤基化工": ("煤化工", ["煤制烯烃", "煤制甲醇", "煤制乙二醇", "煤焦油深加工"]),
    "铝基新材料": ("铝", ["铝合金圆棒", "电子铝箔", "工业铝型材", "再生铝锭"]),
}
REGIONS: list[tuple[str, str, str]] = [
    ("新疆", "昌吉州", "准东经济技术开发区"),
    ("新疆", "哈密市", "巴里坤哈萨克自治县"),
    ("新疆", "阿克苏地区", "石河子经济技术开发区"),
    ("内蒙古", "包头市", "稀土高新区"),
    ("云南", "曲靖市", "曲靖高新技术产业开发区"),
    ("四川", "遂宁市", "射洪经济技术开发区"),
]
_BRAND_CHARS = "华锦瑞泰鼎盛恒远宏达隆晟鑫源昊航峰凯润誉博森弘嘉旭辰"
STEP = 20


@dataclass
class SyntheticBenchmark:
    """Cases, corpus documents and qrels of one synthetic benchmark."""

    cases: list[Case]
    docs: dict[str, dict[str, Any]]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    seed: int = 0


def make_synthetic_benchmark(
    n_cases: int = 30, n_docs: int = 240, n_not_in_corpus: int = 4, seed: int = 0
) -> SyntheticBenchmark:
    """Generate a seeded benchmark.

    Args:
        n_cases: evaluable cases (one planted supplier each).
        n_docs: corpus size (planted suppliers included); at least 2 × ``n_cases`` and above 100 so
            that ``reversed`` scores 0.
        n_not_in_corpus: extra cases whose investor is not in the corpus.
        seed: random seed.

    Returns:
        The benchmark; ``qrels`` covers the evaluable cases.

    Raises:
        ValueError: ``n_docs`` is too small.
    """
    if n_docs < max(n_cases * 2, 101):
        raise ValueError(
            f"n_docs must be at least max(2 × n_cases, 101) = {max(n_cases * 2, 101)}; received {n_docs}"
        )
    rng = random.Random(seed)
    brands: set[str] = set()

    def new_brand() -> str:
        while True:
            b = "".join(rng.sample(_BRAND_CHARS, 2))
            if b not in brands:
                brands.add(b)
                return b

    def doc(code: str, brand: str, chain: str, main: str, employees: int) -> tuple[str, dict[str, Any]]:
        industry, links = CHAINS[chain]
        side = rng.choice([lk for lk in links if lk != main])
        return f"ashare-{code}", {
            "name": f"{brand}{industry}股份有限公司",
            "short": f"{brand}股份",
            "industry": industry,
            "products": [(main, 0.7), (side, 0.3)],
            "employees": employees,
            "province": rng.choice(REGIONS)[0],
        }

    docs: dict[str, dict[str, Any]] = {}
    cases: list[Case] = []
    chain_names = sorted(CHAINS)
    for i in range(n_cases + n_not_in_corpus):
        chain = rng.choice(chain_names)
        link = rng.choice(CHAINS[chain][1])
        province, prefecture, county = rng.choice(REGIONS)
        brand = new_brand()
        in_corpus = i < n_cases
        code = f"9{i:05d}"
        if in_corpus:
            doc_id, d = doc(code, brand, chain, link, rng.randint(200, 5000))
            docs[doc_id] = d
        cases.append(
            Case(
                id=f"S{i + 1:03d}",
                region_province=province,
                region_prefecture=prefecture,
                region_county_or_park=county,
                chain=chain,
                gap_type=rng.choice(["补链", "延链", "强链", "unknown"]),
                product_link=link,
                project=f"{brand}股份年产{rng.randint(1, 30)}万吨{link}项目签约落户{county}",
                enterprise=f"{brand}{CHAINS[chain][0]}股份有限公司",
                listed_parent=f"{brand}股份" if in_corpus else None,
                stock_code=code if in_corpus else None,
                in_corpus=in_corpus,
                chain_master_self_expansion=rng.random() < 0.2,
                confidence=rng.choice(["high", "medium", "low"]),
            )
        )
    j = 0
    while len(docs) < n_docs:
        chain = rng.choice(chain_names)
        doc_id, d = doc(
            f"8{j:05d}", new_brand(), chain, rng.choice(CHAINS[chain][1]), rng.randint(50, 50_000)
        )
        docs[doc_id] = d
        j += 1
    return SyntheticBenchmark(cases=cases, docs=docs, qrels=build_qrels(cases), seed=seed)


class _QrelsRanker:
    """Ranks with knowledge of the qrels: the planted supplier at a chosen rank, others by doc id."""

    def __init__(self, bench: SyntheticBenchmark, mode: str) -> None:
        self.qrels = bench.qrels
        self.ids = sorted(bench.docs)
        self.order = {c.id: i for i, c in enumerate(c for c in bench.cases if c.id in bench.qrels)}
        self.mode = mode

    def __call__(self, query: CaseQuery, k: int) -> list[tuple[str, float, str]]:
        relevant = [d for d, r in self.qrels.get(query.case_id, {}).items() if r > 0]
        others = [d for d in self.ids if d not in relevant]
        if self.mode == "oracle":
            ranking = relevant + others
        elif self.mode == "reversed":
            ranking = others + relevant
        else:
            pos = planted_rank(self.order.get(query.case_id, 0)) - 1
            ranking = others[:pos] + relevant + others[pos:]
        return [(d, float(len(ranking) - r), f"{self.mode} rank {r + 1}") for r, d in enumerate(ranking[:k])]


def planted_rank(i: int) -> int:
    """Rank (1-based) of the planted supplier of the i-th evaluable case under the ``stepped`` system."""
    return (i % STEP) + 1


def reference_systems(bench: SyntheticBenchmark) -> dict[str, Any]:
    """The ``oracle``, ``reversed`` and ``stepped`` systems of a benchmark."""
    return {m: _QrelsRanker(bench, m) for m in ("oracle", "reversed", "stepped")}


def expected_metrics(bench: SyntheticBenchmark, k_max: int = 100) -> dict[str, dict[str, float]]:
    """Closed-form scores of the reference systems (one relevant document per case).

    ``stepped``: with r_i = (i mod 20) + 1 and rankings cut at ``k_max``, Recall@k = Hit@k = mean[r_i ≤ min(k,
    k_max)], MRR = mean([r_i ≤ k_max] / r_i), nDCG@10 = mean([r_i ≤ min(10, k_max)] / log2(r_i + 1)).
    """
    n = len(bench.qrels)
    ranks = [planted_rank(i) for i in range(n)]

    def mean(xs: list[float]) -> float:
        return sum(xs) / n if n else 0.0

    names = ("recall@10", "recall@50", "recall@100", "ndcg@10", "mrr", "hit@1")
    out: dict[str, dict[str, float]] = {
        "oracle": {m: 1.0 if n else 0.0 for m in names},
        "reversed": {m: 0.0 for m in names},
    }
    stepped: dict[str, float] = {}
    for m in names:
        if m.startswith(("recall@", "hit@")):
            k = int(m.split("@")[1])
            stepped[m] = mean([1.0 if r <= min(k, k_max) else 0.0 for r in ranks])
    stepped["mrr"] = mean([1.0 / r if r <= k_max else 0.0 for r in ranks])
    stepped["ndcg@10"] = mean([1.0 / math.log2(r + 1) if r <= min(10, k_max) else 0.0 for r in ranks])
    out["stepped"] = stepped
    return out


def check_against_expected(
    metrics: Mapping[str, Mapping[str, float | None]],
    expected: Mapping[str, Mapping[str, float]],
    tol: float = 1e-9,
) -> list[str]:
    """Differences between measured and expected scores, as readable lines (empty when everything matches)."""
    problems = []
    for system, values in expected.items():
        for m, want in values.items():
            got = metrics.get(system, {}).get(m)
            if got is None or abs(got - want) > tol:
                problems.append(f"{system} {m}: expected {want:.6f}, measured {got}")
    return problems
