"""Persistence of the vector index: a new version folder per save (index, id map, manifest with sha256s) behind
the pointer of :mod:`index.storage`; loads verify checksums and the embedder id."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Self

import faiss

from index.errors import IndexManifestError
from index.faiss_utils import _extract_ivf, _supports_remove
from index.storage import load_manifest, save_version

logger = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"


class VectorPersistence:
    """Save/load of :class:`~index.vector.VectorIndex` (crash-safe version folders, verified on load)."""

    # --- persistence --------------------------------------------------------------------------------------
    def save(self, path: Path | str, manifest_extra: dict[str, Any] | None = None) -> Path:
        """Save atomically as a new version under ``path`` (see :mod:`index.storage`). Returns its folder."""
        extra = dict(manifest_extra or {})
        embedder_id = extra.pop("embedder_id", self.embedder_id)

        def write(folder: Path) -> None:
            if self._index is not None:
                faiss.write_index(self._index, str(folder / INDEX_FILE))
            ids = {
                "next_label": self._next_label,
                "labels": list(self._id_of.keys()),
                "ids": list(self._id_of.values()),
                "tombstones": sorted(self._tombstones),
            }
            with open(folder / IDS_FILE, "w", encoding="utf-8") as fh:
                json.dump(ids, fh, ensure_ascii=False, separators=(",", ":"))

        manifest = {
            "kind": "faiss",
            "embedder_id": embedder_id,
            "dim": self.dim,
            "metric": self.metric.value,
            "factory": self.factory,
            "resolved_factory": self._resolved,
            "index_kind": self._kind,
            "count": len(self),
            "ntotal": int(self._index.ntotal) if self._index is not None else 0,
            "index_file": INDEX_FILE if self._index is not None else None,
            "params": {
                "hnsw_threshold": self.hnsw_threshold, "hnsw_m": self.hnsw_m,
                "ef_construction": self.ef_construction, "ef_search": self.ef_search, "nprobe": self.nprobe,
                "ef_fixed": self._ef_fixed, "nprobe_fixed": self._nprobe_fixed,
                "target_recall": self.target_recall, "exact_filter_fraction": self.exact_filter_fraction,
                "exact_filter_min": self.exact_filter_min, "compact_fraction": self.compact_fraction,
            },
            "extra": extra,
        }  # fmt: skip
        return save_version(
            Path(path), write, manifest, primary=INDEX_FILE if self._index is not None else None
        )

    @classmethod
    def load(
        cls, path: Path | str, expected_embedder_id: str | None = None, verify: bool = True
    ) -> Self:
        """Load the current saved version under ``path``.

        Args:
            path: The directory given to :meth:`save`.
            expected_embedder_id: Refuse an index built with another embedder.
            verify: Check every file's sha256 against the manifest.

        Raises:
            IndexNotFoundError: nothing saved at ``path``.
            IndexManifestError: checksum, embedder id, dimension or count mismatch.
        """
        vdir, manifest = load_manifest(
            path, "faiss", expected_embedder_id, what="a FAISS vector index", verify=verify
        )
        found = manifest.get("embedder_id")
        p = manifest["params"]
        self = cls(
            manifest["dim"], manifest["factory"], manifest["metric"], p["hnsw_threshold"],
            embedder_id=found, hnsw_m=p["hnsw_m"], ef_construction=p["ef_construction"],
            ef_search=p["ef_search"], nprobe=p["nprobe"], target_recall=p["target_recall"],
            exact_filter_fraction=p["exact_filter_fraction"], exact_filter_min=p["exact_filter_min"],
            compact_fraction=p["compact_fraction"],
        )  # fmt: skip
        self._ef_fixed, self._nprobe_fixed = p["ef_fixed"], p["nprobe_fixed"]
        if manifest.get("index_file"):
            index = faiss.read_index(str(vdir / manifest["index_file"]))
            if index.d != self.dim:
                raise IndexManifestError(f"{vdir}: index dimension {index.d}, manifest says {self.dim}")
            if index.ntotal != manifest["ntotal"]:
                raise IndexManifestError(
                    f"{vdir}: index holds {index.ntotal} vectors, manifest says {manifest['ntotal']}"
                )
            self._index, self._kind, self._resolved = (
                index,
                manifest["index_kind"],
                manifest["resolved_factory"],
            )
            self._can_remove = self._kind != "hnsw" and (self._kind == "ivf" or _supports_remove(index))
            if self._kind == "hnsw":
                faiss.downcast_index(index.index).hnsw.efSearch = self.ef_search
            elif self._kind == "ivf":
                _extract_ivf(index).nprobe = self.nprobe
        ids = json.loads((vdir / IDS_FILE).read_text(encoding="utf-8"))
        if len(ids["ids"]) != manifest["count"]:
            raise IndexManifestError(
                f"{vdir}: id map has {len(ids['ids'])} ids, manifest says {manifest['count']}"
            )
        self._next_label = ids["next_label"]
        self._id_of = dict(zip(ids["labels"], ids["ids"], strict=True))
        self._label_of = {sid: label for label, sid in self._id_of.items()}
        self._tombstones = set(ids["tombstones"])
        self.manifest = manifest
        logger.info("loaded %s from %s", self, vdir)
        return self
