"""A small minGPT-style Trainer: config in, run() out, one callback per epoch."""

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

EpochCallback = Callable[[dict[str, Any]], None]


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy on in-scope rows; out-of-scope rows (target -1) are pushed to the uniform distribution.

    logits (n, L), targets (n,) label index or -1.
    """
    oos = targets < 0
    losses = []
    if (~oos).any():
        ce = F.cross_entropy(logits[~oos], targets[~oos], label_smoothing=smoothing, reduction="sum")
        losses.append(ce)
    if oos.any():
        losses.append(-F.log_softmax(logits[oos], dim=-1).mean(-1).sum())
    return torch.stack(losses).sum() / len(targets)


def make_optimizers(module: nn.Module, config: ModelConfig) -> list[torch.optim.Optimizer]:
    """SparseAdam for sparse embedding tables (only touched rows move), AdamW for the rest."""
    sparse = [m.weight for m in module.modules() if isinstance(m, nn.EmbeddingBag | nn.Embedding) and m.sparse]
    ids = {id(p) for p in sparse}
    dense = [p for p in module.parameters() if id(p) not in ids and p.requires_grad]
    optimizers: list[torch.optim.Optimizer] = []
    if sparse:
        optimizers.append(torch.optim.SparseAdam(sparse, lr=config.lr))
    if dense:
        optimizers.append(torch.optim.AdamW(dense, lr=config.lr, weight_decay=config.weight_decay))
    return optimizers


class Trainer:
    def __init__(
        self,
        module: nn.Module,
        config: ModelConfig,
        train: tuple[list[str], torch.Tensor],
        val: tuple[list[str], torch.Tensor] | None = None,
        on_epoch: EpochCallback | None = None,
        stage: str = "train",
    ) -> None:
        self.module, self.config, self.on_epoch, self.stage = module, config, on_epoch, stage
        self.train = (module.featurize(train[0]), train[1])  # featurised once, not every epoch
        self.val = (module.featurize(val[0]), val[1]) if val and val[0] else None
        self.optimizers = make_optimizers(module, config)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.best_epoch = 0

    def run(self, epochs: int) -> int:
        """Train; with val data keep the weights of the best epoch. Returns that epoch (1-based)."""
        best: tuple[float, float] = (-math.inf, -math.inf)
        best_state, waited = None, 0
        for epoch in range(1, epochs + 1):
            train_loss = self._train_epoch()
            val_loss, val_acc = self.evaluate()
            self._report(epoch, epochs, train_loss, val_loss, val_acc)
            if val_loss is None:
                self.best_epoch = epoch
                continue
            key = (val_acc if val_acc is not None else 0.0, -val_loss)
            if key > best:
                best, best_state, waited, self.best_epoch = key, copy.deepcopy(self.module.state_dict()), 0, epoch
            elif (waited := waited + 1) >= self.config.patience:
                break
        if best_state is not None:
            self.module.load_state_dict(best_state)
        self.module.eval()
        return self.best_epoch

    def _train_epoch(self) -> float:
        items, targets = self.train
        self.module.train()
        order = torch.randperm(len(items), generator=self.generator)
        total = 0.0
        for start in range(0, len(items), self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            logits = self.module(self.module.collate([items[i] for i in idx]))
            loss = classification_loss(logits, targets[idx], self.config.label_smoothing)
            for optimizer in self.optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for optimizer in self.optimizers:
                optimizer.step()
            total += float(loss.detach()) * len(idx)
        return total / len(items)

    @torch.no_grad()
    def evaluate(self) -> tuple[float | None, float | None]:
        if self.val is None:
            return None, None
        self.module.eval()
        items, targets = self.val
        logits = self.module(self.module.collate(items))
        in_scope = targets >= 0
        acc = float((logits[in_scope].argmax(-1) == targets[in_scope]).float().mean()) if in_scope.any() else None
        return float(classification_loss(logits, targets)), acc

    def _report(
        self, epoch: int, epochs: int, train_loss: float, val_loss: float | None, val_acc: float | None
    ) -> None:
        if self.on_epoch:
            stats = {
                "stage": self.stage,
                "epoch": epoch,
                "epochs": epochs,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
            }
            self.on_epoch(stats)
