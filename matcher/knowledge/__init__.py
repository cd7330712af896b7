"""Domain knowledge: what a chain, a region and a product are.

- `catalogue`: the industry-chain catalogue (chains, links, edges; `matcher/data/chains/*.yaml`), GB/T codes;
- `regions`: regions, parks and their residents (`matcher/data/regions`); `aiding`: 援疆 pairings;
- `geo`: province short names and distances; `gaps`: gap diagnosis (缺链 / 短链 / 弱链) with priorities;
- `mapping`: products and scope text -> chain links (`LinkMapper`), with `segments` (phrase segmentation)
  and `mapping_eval` (labelled mapping quality).
"""

from __future__ import annotations

from matcher.knowledge.aiding import (
    AIDING_FILE,
    AidingEntry,
    AidingTable,
    aiding_for,
    default_aiding_table,
    load_aiding,
    parse_aiding,
)
from matcher.knowledge.catalogue import (
    CHAINS_DIR,
    DATA_DIR,
    GBT_FILE,
    Catalogue,
    default_catalogue,
    load_catalogue,
    load_gbt_codes,
)
from matcher.knowledge.gap_view import concise, format_gap_map
from matcher.knowledge.gaps import PRIORITY_WEIGHTS, diagnose, residents_in_scope
from matcher.knowledge.geo import CAPITALS, distance_km, province_short
from matcher.knowledge.mapping import LinkMapper, TextEmbedder
from matcher.knowledge.mapping_eval import (
    LinkLabel,
    MappingEvaluation,
    evaluate_mapping,
    is_catalogue_term,
    load_labels,
)
from matcher.knowledge.regions import (
    REGIONS_DIR,
    RegionBook,
    check_region,
    default_regions,
    load_regions,
    parse_regions,
)
from matcher.knowledge.segments import is_generic_segment, split_segments

__all__ = [
    "AIDING_FILE",
    "AidingEntry",
    "AidingTable",
    "CAPITALS",
    "CHAINS_DIR",
    "Catalogue",
    "DATA_DIR",
    "GBT_FILE",
    "LinkLabel",
    "LinkMapper",
    "MappingEvaluation",
    "PRIORITY_WEIGHTS",
    "REGIONS_DIR",
    "RegionBook",
    "TextEmbedder",
    "aiding_for",
    "check_region",
    "default_aiding_table",
    "default_catalogue",
    "default_regions",
    "diagnose",
    "distance_km",
    "evaluate_mapping",
    "concise",
    "format_gap_map",
    "is_catalogue_term",
    "is_generic_segment",
    "load_aiding",
    "load_catalogue",
    "load_gbt_codes",
    "load_labels",
    "load_regions",
    "parse_aiding",
    "parse_regions",
    "province_short",
    "residents_in_scope",
    "split_segments",
]
