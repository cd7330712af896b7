"""Choose the evidence thresholds by 5-fold cross-validation grouped by investing firm on deals_dev.

The expansion bar's thresholds (延伸候选: vertical revenue share next to the link, product-space relatedness, industry
relatedness), the industry-majority rule of the maker bar (IND_MAKER_SHARE, 0 = off) and the maker bar's on-site,
relatedness and industry-majority criteria (MAKER_VERTICAL, MAKER_RELATED, MAKER_IND_RELATED; 2.0 = off: such a firm
is then an expansion candidate) are searched on the training
folds (objective R@10 + R@50 + MRR of what an officer is shown: makers, expansions,
leads), each held-out case ranked with its fold's choice. Prints the out-of-fold metrics beside the shipped bar's.

    CHAINMATCH_EMBEDDER=e5-int8 python scripts/cv_bar.py ../shared/data
"""

import json
import logging
import sys
from pathlib import Path

from evaluation.cases import load_cases, split_evaluable
from evaluation.protocol import firm_groups, rank_metrics, rank_of_truth, select_by_grouped_cv
from evaluation.systems import _ranker, fitted_recommender
from matcher.knowledge.catalogue import default_catalogue
from matcher.ranking import scoring
from matcher.settings import get_settings
from matcher.store.ashare import load_ashare_corpus

GRID = {"vertical": [0.3, 0.1, 0.05], "related": [0.3, 0.2], "ind_related": [0.3, 0.2], "IND_MAKER_SHARE": [0.5, 0.0],
        "MAKER_VERTICAL": [0.3, 2.0],  # the maker bar's on-site criterion (铝水 → 铝棒); 2.0 = off (such firms expand)
        "MAKER_RELATED": [0.5, 2.0],  # the maker bar's relatedness criterion; off: related-only firms are expansions
        "MAKER_IND_RELATED": [0.5, 2.0]}  # the maker bar's industry-majority criterion; off: expansions
#: maker-bar dimensions → the EVIDENCE_BAR key each sets (2.0 = the criterion is off)
MAKER_BAR = {"MAKER_VERTICAL": "vertical", "MAKER_RELATED": "related", "MAKER_IND_RELATED": "ind_related"}
MAKER_KEYS = ("IND_MAKER_SHARE", *MAKER_BAR)
SIG_CHAIN = scoring.EXPANSION_BAR["sig_chain"]  # not searched here (#19 signals; kept as shipped)


def _apply(params) -> None:
    """Set the thresholds in the scoring module (the recommender reads them at request time)."""
    scoring.IND_MAKER_SHARE = params["IND_MAKER_SHARE"]
    for dim, key in MAKER_BAR.items():
        if params[dim] > 1.0:
            scoring.EVIDENCE_BAR.pop(key, None)
        else:
            scoring.EVIDENCE_BAR[key] = params[dim]
    scoring.EXPANSION_BAR.clear()
    scoring.EXPANSION_BAR.update({"sig_chain": SIG_CHAIN})
    scoring.EXPANSION_BAR.update({k: v for k, v in params.items() if k not in MAKER_KEYS})


def main() -> None:
    """Run the grouped CV and print the per-fold choices and out-of-fold metrics as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    cases, _ = split_evaluable(load_cases(data / "deals" / "deals_dev.jsonl"))
    rec = fitted_recommender(load_ashare_corpus(data), get_settings())
    rank = _ranker(rec, default_catalogue())
    by_id = {c.id: c for c in cases}
    shipped = {**{k: v for k, v in scoring.EXPANSION_BAR.items() if k != "sig_chain"},
               "IND_MAKER_SHARE": scoring.IND_MAKER_SHARE,
               **{dim: scoring.EVIDENCE_BAR.get(key, 2.0) for dim, key in MAKER_BAR.items()}}
    memo: dict[tuple, float] = {}

    def rank_of(case_id: str, params) -> float:
        key = (case_id, *sorted(params.items()))
        if key not in memo:
            _apply(params)
            case = by_id[case_id]
            order = [doc for doc, *_ in rank(case.query, 100)]
            memo[key] = rank_of_truth(order, {case.doc_id})
        return memo[key]

    ids = [c.id for c in cases]
    cv = select_by_grouped_cv(ids, firm_groups(cases), rank_of, shipped, GRID)
    base = rank_metrics([rank_of(i, shipped) for i in ids])
    _apply(shipped)
    print(json.dumps({"shipped": shipped, "shipped_metrics": base, "oof_metrics": cv.metrics(),
                      "fold_params": cv.fold_params, "final_params": cv.final_params}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
