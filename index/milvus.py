"""The :class:`~index.vector.VectorIndex` interface over Milvus (pymilvus): milvus-lite file or server.

``uri`` is a local file path ending in ``.db`` (milvus-lite, embedded, for tests and single machines) or a
server URI such as ``http://milvus:19530`` (production). Ids are the primary key (VARCHAR) so no id map is
needed; filters become ``id in [...]`` expressions. :meth:`MilvusVectorIndex.save` writes a manifest that
points at the collection (the vectors stay in Milvus); :meth:`MilvusVectorIndex.load` reconnects and checks
the embedder id and dimension. Needs the optional ``milvus`` extra (``pip install 'chainmatch[milvus]'``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.checks import as_matrix, id_list
from index.errors import IndexBackendError, IndexDimensionError, IndexManifestError
from index.faiss_utils import Metric
from index.storage import load_manifest, save_version

logger = logging.getLogger(__name__)

_MAX_ID = 512
_BATCH = 2000


class MilvusVectorIndex:
    """Vector index stored in a Milvus collection, with the same methods as :class:`index.vector.VectorIndex`.

    Args:
        dim: Vector dimension.
        uri: milvus-lite file (``/path/vectors.db``) or server URI.
        collection: Collection name (created if missing).
        metric: ``"ip"`` or ``"l2"``.
        embedder_id: Embedder of the vectors (saved in the manifest).
        index_type: Milvus index type (``"FLAT"``, ``"HNSW"``, ``"AUTOINDEX"`` …).
        token: Server credentials, if any.
        create: Create the collection when missing (False when loading a saved index: a missing collection is
            an :class:`~index.errors.IndexManifestError`).
    """

    def __init__(
        self,
        dim: int,
        uri: str,
        collection: str = "chainmatch_vectors",
        metric: str = "ip",
        *,
        embedder_id: str | None = None,
        index_type: str = "FLAT",
        token: str | None = None,
        create: bool = True,
    ) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:
            raise IndexBackendError(
                f"the Milvus backend needs pymilvus (pip install 'chainmatch[milvus]'): {exc}"
            ) from exc
        if dim <= 0:
            raise ValueError(f"dim must be > 0, received {dim}")
        self.dim = int(dim)
        self.uri = str(uri)
        self.collection = collection
        self.metric = Metric.parse(metric)
        self.embedder_id = embedder_id
        self.index_type = index_type
        if self.uri.endswith(".db"):
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        self._client = MilvusClient(self.uri, token=token or "")
        self._ensure_collection(create)

    def _ensure_collection(self, create: bool) -> None:
        from pymilvus import DataType, MilvusClient

        c = self._client
        if not create and not c.has_collection(self.collection):
            c.close()
            raise IndexManifestError(f"Milvus collection {self.collection!r} not found at {self.uri}")
        if c.has_collection(self.collection):
            desc = c.describe_collection(self.collection)
            for f in desc.get("fields", []):
                if f.get("name") == "vector":
                    found = int(f.get("params", {}).get("dim", self.dim))
                    if found != self.dim:
                        raise IndexDimensionError(self.dim, found, f"collection {self.collection!r} vectors")
            c.load_collection(self.collection)
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=_MAX_ID)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        params = c.prepare_index_params()
        params.add_index(field_name="vector", index_type=self.index_type, metric_type=self._milvus_metric)
        c.create_collection(self.collection, schema=schema, index_params=params)
        logger.info("created Milvus collection %s at %s (dim %d)", self.collection, self.uri, self.dim)

    @property
    def _milvus_metric(self) -> str:
        return "IP" if self.metric is Metric.IP else "L2"

    # --- checks -------------------------------------------------------------------------------------------
    def _matrix(self, x: Any, what: str) -> np.ndarray:
        return as_matrix(x, self.dim, what)

    @staticmethod
    def _id_list(ids: Sequence[str], n: int) -> list[str]:
        out = id_list(ids, n)
        too_long = [i for i in out if len(i.encode()) > _MAX_ID]
        if too_long:
            raise ValueError(f"ids longer than {_MAX_ID} bytes: {too_long[0][:40]!r}…")
        return out

    def _existing(self, ids: list[str]) -> list[str]:
        found: list[str] = []
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            expr = f"id in {json.dumps(chunk, ensure_ascii=False)}"
            rows = self._client.query(self.collection, filter=expr, output_fields=["id"])
            found += [r["id"] for r in rows]
        return found

    # --- mutation -----------------------------------------------------------------------------------------
    def add(self, ids: Sequence[str], vectors: Any) -> None:
        """Insert new ids; ValueError if one is already present (use :meth:`upsert`)."""
        x = self._matrix(vectors, "vectors")
        id_list = self._id_list(ids, len(x))
        present = self._existing(id_list)
        if present:
            raise ValueError(f"{len(present)} ids already in the index (e.g. {present[0]!r}); use upsert()")
        self._write("insert", id_list, x)

    def upsert(self, ids: Sequence[str], vectors: Any) -> None:
        """Insert ids, replacing existing vectors."""
        x = self._matrix(vectors, "vectors")
        self._write("upsert", self._id_list(ids, len(x)), x)

    def _write(self, op: str, ids: list[str], x: np.ndarray) -> None:
        fn = getattr(self._client, op)
        for start in range(0, len(ids), _BATCH):
            rows = [
                {"id": i, "vector": v.tolist()}
                for i, v in zip(ids[start : start + _BATCH], x[start : start + _BATCH], strict=True)
            ]
            fn(self.collection, rows)

    def remove(self, ids: Iterable[str]) -> int:
        """Delete ids (unknown ids are ignored); returns how many were present."""
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of strings, received one str (wrap it in a list)")
        id_list = list(dict.fromkeys(str(i) for i in ids))
        present = self._existing(id_list)
        if present:
            for start in range(0, len(present), _BATCH):
                self._client.delete(self.collection, ids=present[start : start + _BATCH])
        return len(present)

    def __len__(self) -> int:
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    @property
    def ids(self) -> list[str]:
        """Every id in the collection (read in pages; for consistency checks, not for request paths)."""
        it = self._client.query_iterator(self.collection, batch_size=_BATCH, filter="", output_fields=["id"])
        out: list[str] = []
        try:
            while page := it.next():
                out += [str(r["id"]) for r in page]
        finally:
            it.close()
        return out

    @property
    def resolved_factory(self) -> str:
        """The Milvus index in use, e.g. ``"milvus:FLAT"`` (the FAISS index reports its factory string)."""
        return f"milvus:{self.index_type}"

    def drop(self) -> None:
        """Drop the collection (a rebuild's predecessor once the new manifest is current)."""
        self._client.drop_collection(self.collection)

    def __contains__(self, item: object) -> bool:
        return bool(self._existing([str(item)]))

    # --- search -------------------------------------------------------------------------------------------
    def search(
        self, queries: Any, k: int, allow: Sequence[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        """The ``k`` nearest ids per query (inner product or L2 distance), optionally among ``allow`` only."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise ValueError(f"k must be a positive integer, received {k!r}")
        q = self._matrix(queries, "queries")
        kwargs: dict[str, Any] = {}
        if allow is not None:
            allowed = list(dict.fromkeys(str(i) for i in allow))
            if not allowed:
                return [[] for _ in range(len(q))]
            kwargs["filter"] = f"id in {json.dumps(allowed, ensure_ascii=False)}"
        res = self._client.search(
            self.collection,
            data=[row.tolist() for row in q],
            limit=int(k),
            output_fields=["id"],
            search_params={"metric_type": self._milvus_metric},
            **kwargs,
        )
        return [[(str(h["id"]), float(h["distance"])) for h in hits] for hits in res]

    # --- persistence --------------------------------------------------------------------------------------
    def save(self, path: Path | str, manifest_extra: dict[str, Any] | None = None) -> Path:
        """Flush the collection and write a manifest pointing at it under ``path``."""
        extra = dict(manifest_extra or {})
        embedder_id = extra.pop("embedder_id", self.embedder_id)
        flush = getattr(self._client, "flush", None)
        if flush is not None:
            flush(self.collection)
        manifest = {
            "kind": "milvus", "uri": self.uri, "collection": self.collection, "dim": self.dim,
            "metric": self.metric.value, "index_type": self.index_type, "embedder_id": embedder_id,
            "count": len(self), "extra": extra,
        }  # fmt: skip
        return save_version(Path(path), lambda folder: None, manifest)

    @classmethod
    def load(
        cls, path: Path | str, expected_embedder_id: str | None = None, verify: bool = True, token: str | None = None
    ) -> MilvusVectorIndex:
        """Reconnect to the collection a manifest under ``path`` names (embedder id checked)."""
        _, manifest = load_manifest(
            path, "milvus", expected_embedder_id, what="a Milvus index manifest", verify=verify
        )
        found = manifest.get("embedder_id")
        return cls(manifest["dim"], manifest["uri"], manifest["collection"], manifest["metric"],
                   embedder_id=found, index_type=manifest["index_type"], token=token, create=False)  # fmt: skip

    def close(self) -> None:
        """Close the client connection."""
        self._client.close()
