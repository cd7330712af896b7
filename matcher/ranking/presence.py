"""Groups and local presence: a region's residents exclude their whole group, and firms already on site are flagged.

- **Group**: two firms are one group when they share a normalised group name (``parent_group``, else the firm's own
  normalised name) or when a resident's name contains the firm's brand — its short name without generic words
  (隆基绿能 → 隆基, 德方纳米 stays 德方纳米), at least two characters and not a place or generic word. So 曲靖隆基硅材料
  excludes 隆基绿能 from 曲靖's lists, and 曲靖市德方纳米科技 excludes 德方纳米.
- **Local presence** (已在本地布局): the firm or its group is a resident of the region, of a sub-region or of its
  parent region, the firm is registered in the region's (or its parent's) city, or one of its known plants
  (``extra.sites``, from an import's 生产基地 column or the API's ``sites``) lies in the region or its parent
  (below province level), or the firm (or its group) runs a project of the region or its parent (the firm a
  ``projects:`` entry names first: a signed investor is not a newcomer to court). A need to fill a missing link
  (补链) or extend the chain (延链) leaves such firms out — they are already there; a 强链 need (增资扩产) keeps them,
  flagged.

A mixin of the recommender over its fitted corpus arrays.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from matcher.records import GapType, Region, RegionLevel, Resident
from matcher.text import normalize_company_name, normalize_text

__all__ = ["Presence", "brand"]

_GENERIC = re.compile(
    r"(股份|集团|控股|科技|实业|绿能|能源|电子|新材|材料|电气|电力|化工|化学|发展|投资|国际|技术|工业|产业|矿业|有限|公司|"
    r"高新|新能源|光伏|光电|智能|信息|网络|环保|生物|医药|制药|农业|食品|设备|机械|重工|钢铁|铝业|铜业|建设|建材)$"
)
_NOT_BRANDS = frozenset(
    "中国 中国中 国家 新疆 上海 北京 天津 重庆 广东 江苏 浙江 山东 四川 湖南 湖北 河南 河北 国际 东方 中华 华东 华南 西部 东北 "
    # industry words left when a short name is all industry (石化机械 → 石化): they would tie 中石化石油机械 to
    # 中国石油克拉玛依石化 by the word 石化
    "石化 石油 石油化工 化纤 纺织 煤业 煤电 有色 稀土 水泥 乳业 乳品 药业 电器 电缆 锂电 硅业 光电 新能".split()
)


def brand(short_or_name: str) -> str:
    """A firm's brand: its short name without generic trailing words (隆基绿能 → 隆基); '' when too generic."""
    b = normalize_company_name(normalize_text(short_or_name), strip_region=True)
    for _ in range(3):
        nb = _GENERIC.sub("", b)
        if nb == b or len(nb) < 2:
            break
        b = nb
    return b if len(b) >= 2 and b not in _NOT_BRANDS else ""


_PROJECT_SPLIT = re.compile(r"\s|年产|项目|（|\(")


def _project_firm(project) -> str:
    """The firm a region's project names first (南昌荣凯实业 年产20万吨铝棒…项目 → 南昌荣凯实业); '' when unclear."""
    head = _PROJECT_SPLIT.split(project.name, maxsplit=1)[0]
    return head if len(head) >= 4 else ""


class Presence:
    """Group exclusion and 已在本地布局 for :class:`~matcher.ranking.recommender.Recommender`."""

    def _brands(self) -> dict[str, list[int]]:
        """Brand → corpus rows, built once per fitted corpus (recomputed after an update)."""
        cached = self.__dict__.get("_brand_index")
        if cached is not None and cached[0] is self.enterprises_:
            return cached[1]
        index: dict[str, list[int]] = {}
        for i, e in enumerate(self.enterprises_):
            short = next((a for a in e.aliases if 2 <= len(a) <= 8), "") or e.name
            b = brand(short)
            if b:
                index.setdefault(b, []).append(i)
        self.__dict__["_brand_index"] = (self.enterprises_, index)
        return index

    def _city_rows(self) -> dict[str, list[int]]:
        cached = self.__dict__.get("_city_index")
        if cached is not None and cached[0] is self.enterprises_:
            return cached[1]
        index: dict[str, list[int]] = {}
        for i, e in enumerate(self.enterprises_):
            if e.city:
                index.setdefault(normalize_text(e.city), []).append(i)
        self.__dict__["_city_index"] = (self.enterprises_, index)
        return index

    def _group_rows(self, residents: Sequence[Resident]) -> dict[int, str]:
        """Corpus rows in a resident's group (the residents themselves included) → the resident's name."""
        out: dict[int, str] = {}
        groups: dict[str, str] = {}
        for r in residents:
            rows = set(self.by_norm_name_.get(normalize_company_name(r.name, strip_region=True), ()))
            if r.enterprise_id in self.id_to_idx_:
                rows.add(self.id_to_idx_[r.enterprise_id])
            for i in rows:
                out.setdefault(i, r.name)
                groups.setdefault(self.group_[i], r.name)
        brands = self._brands()
        for r in residents:  # every substring of the resident's name that is some firm's brand
            name = normalize_text(r.name)
            for a in range(len(name)):
                for b in range(a + 2, min(len(name), a + 8) + 1):
                    for i in brands.get(name[a:b], ()):
                        out.setdefault(i, r.name)
        if groups:
            for i, g in enumerate(self.group_):
                if g in groups:
                    out.setdefault(i, groups[g])
        return out

    def _present_rows(self, region: Region | None, residents: Sequence[Resident], book) -> dict[int, str]:
        """Rows already present in the region (group of a resident in scope or in the parent region unless that is
        a province, or registered in the region's / parent's city) → a short description of the presence."""
        if region is None:
            return {}
        scope = list(residents)
        names = {normalize_text(n) for n in (region.name, *region.aliases)}
        parent = book.get(region.parent, region.tenant) if (book is not None and region.parent) else None
        if parent is not None and parent.level == RegionLevel.PROVINCE:
            parent = None  # a province's residents sit elsewhere in it: investing here is still 招商 (新疆天业 for 昌吉州)
        if parent is not None:
            scope += parent.residents
            names |= {normalize_text(n) for n in (parent.name, *parent.aliases)}
        site_names = {normalize_text(n) for n in (region.name, *region.aliases)}
        if parent is not None and parent.level != RegionLevel.PROVINCE:
            site_names |= {normalize_text(n) for n in (parent.name, *parent.aliases)}
        out = {i: f"{who}所在企业集团" for i, who in self._group_rows(scope).items()}
        projects = [p for r in (region, parent) if r is not None for p in r.projects]
        for i, who in self._group_rows([Resident(name=n) for n in map(_project_firm, projects) if n]).items():
            out.setdefault(i, f"本地已有项目：{who}")
        if region.level != RegionLevel.PROVINCE:  # a province-wide "presence" would flag every local firm
            cities = self._city_rows()
            for n in names:
                for i in cities.get(n, ()):
                    out.setdefault(i, f"注册地在{self.enterprises_[i].city}")
            for i, sites in self._site_rows():
                site = next((x for x in sites if any(len(n) >= 2 and n in x for n in site_names)), None)
                if site:
                    out.setdefault(i, f"在{site}有生产基地")
        return out

    def _site_rows(self) -> list[tuple[int, list[str]]]:
        """(row, normalised known sites) of firms whose imports name plants (``extra.sites``)."""
        cached = self.__dict__.get("_site_index")
        if cached is not None and cached[0] is self.enterprises_:
            return cached[1]
        rows = [(i, [normalize_text(x) for x in e.extra["sites"]])
                for i, e in enumerate(self.enterprises_) if e.extra.get("sites")]  # fmt: skip
        self.__dict__["_site_index"] = (self.enterprises_, rows)
        return rows

    @staticmethod
    def keeps_present(gap_type: GapType | str | None) -> bool:
        """Whether a need keeps firms already on site: 补链 and 延链 (缺链, 短链: the link has no maker there) look for
        newcomers only; 强链 (弱链, 增资扩产) and a need of no stated type keep them, marked 已在本地布局 — an officer
        asking for 液态奶 in 呼和浩特 without saying 补链 is shown 伊利 as the local firm to grow, not left without it."""
        value = gap_type.value if isinstance(gap_type, GapType) else gap_type
        return value not in ("缺链", "短链", "补链", "延链")
