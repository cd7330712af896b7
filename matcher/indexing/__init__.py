"""Saved indexes: `build` builds and updates the vector + lexical indexes from the store (and searches them);
`doctor` checks them against the store and repairs drift.
"""

from __future__ import annotations

from matcher.indexing.build import (
    CACHE_FILE,
    ENGINES,
    LEXICAL_DIR,
    RRF_K,
    VECTOR_DIR,
    IndexStatus,
    SearchHit,
    build_index,
    doc_tokens,
    fuse_rrf,
    index_dirs,
    index_status,
    load_vector_index,
    search_index,
    update_index,
)
from matcher.indexing.doctor import (
    DoctorReport,
    IndexCheck,
    RepairResult,
    check,
    expected_embedder_id,
    repair,
)

__all__ = [
    "CACHE_FILE",
    "DoctorReport",
    "ENGINES",
    "IndexCheck",
    "IndexStatus",
    "LEXICAL_DIR",
    "RRF_K",
    "RepairResult",
    "SearchHit",
    "VECTOR_DIR",
    "build_index",
    "check",
    "doc_tokens",
    "expected_embedder_id",
    "fuse_rrf",
    "index_dirs",
    "index_status",
    "load_vector_index",
    "repair",
    "search_index",
    "update_index",
]
