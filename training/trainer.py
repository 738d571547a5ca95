"""The one training loop, minGPT-style: a task, its batches and its optimizers in, run() out, a callback per epoch.

Every model here trains through `Trainer`: the n-gram classifier and the heads over frozen sentence vectors
(`ClassifierTask`, below), contrastive fine-tuning of a transformer and joint fine-tuning of a transformer with
its head (the tasks in transformer.py). A task says what one batch's loss is, how it scores on held-out data and
what state early stopping keeps; the Trainer owns the rest: epochs, optimizer steps, early stopping, progress.
"""

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .data import Example

EpochCallback = Callable[[dict[str, Any]], None]
Plan = list[Sequence[Any]]  # per epoch, its batches (each a sized collection of rows)
Split = tuple[list[str], torch.Tensor]  # texts and their target indices (-1: out of scope)


class Task(Protocol):
    def train(self, mode: bool = True) -> Any: ...

    def loss(self, batch: Any) -> torch.Tensor: ...

    def evaluate(self) -> tuple[float | None, float | None]:
        """(held-out loss, held-out in-scope accuracy); (None, None) without held-out data."""
        ...

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


@dataclass
class TrainerConfig:
    stage: str  # names the run in progress reports: a component ("ngram", "transformer", "e5") or "finetune"
    patience: int = 1  # with held-out data: epochs without a better accuracy (then loss) before stopping


@dataclass
class Steps:
    """How the weights move: optimizers, their learning-rate schedules, and the parameters whose gradient norm
    is clipped to 1 (None: no clipping)."""

    optimizers: list[torch.optim.Optimizer]
    schedules: list[torch.optim.lr_scheduler.LRScheduler] = field(default_factory=list)
    clipped: Sequence[torch.Tensor] | None = None

    def take(self, loss: torch.Tensor) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clipped is not None:
            torch.nn.utils.clip_grad_norm_(self.clipped, 1.0)
        for optimizer in self.optimizers:
            optimizer.step()
        for schedule in self.schedules:
            schedule.step()


class Trainer:
    def __init__(
        self, task: Task, plan: Plan, steps: Steps, config: TrainerConfig, on_epoch: EpochCallback | None = None
    ) -> None:
        self.task, self.plan, self.steps, self.config, self.on_epoch = task, plan, steps, config, on_epoch
        self.best_epoch = 0

    def run(self) -> int:
        """Train for the plan's epochs; with held-out data stop after `patience` epochs without progress and keep
        the weights of the best epoch. Returns that epoch (1-based; the last one without held-out data)."""
        best: tuple[float, float] = (-math.inf, -math.inf)
        best_state, waited = None, 0
        for epoch, batches in enumerate(self.plan, start=1):
            train_loss = self._train_epoch(batches)
            val_loss, val_acc = self.task.evaluate()
            self._report(epoch, train_loss, val_loss, val_acc)
            if val_loss is None:
                self.best_epoch = epoch
                continue
            key = (val_acc if val_acc is not None else 0.0, -val_loss)
            if key > best:
                best, best_state, waited, self.best_epoch = key, copy.deepcopy(self.task.state_dict()), 0, epoch
            elif (waited := waited + 1) >= self.config.patience:
                break
        if best_state is not None:
            self.task.load_state_dict(best_state)
        self.task.train(False)
        return self.best_epoch

    def _train_epoch(self, batches: Sequence[Any]) -> float:
        """One pass over the batches (train mode), then eval mode; returns the mean loss per row."""
        self.task.train(True)
        total, rows = 0.0, 0
        for batch in batches:
            loss = self.task.loss(batch)
            self.steps.take(loss)
            total += float(loss.detach()) * len(batch)
            rows += len(batch)
        self.task.train(False)
        return total / max(rows, 1)

    def _report(self, epoch: int, train_loss: float, val_loss: float | None, val_acc: float | None) -> None:
        if self.on_epoch:
            stats = {
                "stage": self.config.stage,
                "epoch": epoch,
                "epochs": len(self.plan),
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
            }
            self.on_epoch(stats)


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


def held_out_scores(logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, float | None]:
    """(loss, in-scope accuracy) of held-out logits (n, L); accuracy None without in-scope rows."""
    in_scope = targets >= 0
    acc = float((logits[in_scope].argmax(-1) == targets[in_scope]).float().mean()) if in_scope.any() else None
    return float(classification_loss(logits, targets)), acc


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


def encode_targets(examples: list[Example], labels: list[str]) -> Split:
    """-> texts and target indices; oos (and labels the model does not know) -> -1."""
    index = {label: i for i, label in enumerate(labels)}
    targets = torch.tensor([index.get(label, -1) for _, label in examples], dtype=torch.long)
    return [text for text, _ in examples], targets


class ClassifierTask:
    """A classifier over features computed once, not every epoch (n-gram rows, frozen sentence vectors): the
    module has featurize(texts) -> items, collate(items) -> batch and forward(batch) -> logits (n, L)."""

    def __init__(self, module: Any, train: Split, val: Split | None, smoothing: float) -> None:
        self.module, self.smoothing = module, smoothing
        self.items, self.targets = module.featurize(train[0]), train[1]
        self.val = (module.featurize(val[0]), val[1]) if val and val[0] else None

    def train(self, mode: bool = True) -> None:
        self.module.train(mode)

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        logits = self.module(self.module.collate([self.items[i] for i in batch]))
        return classification_loss(logits, self.targets[batch], self.smoothing)

    @torch.no_grad()
    def evaluate(self) -> tuple[float | None, float | None]:
        if self.val is None:
            return None, None
        items, targets = self.val
        return held_out_scores(self.module(self.module.collate(items)), targets)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)


def train_classifier(
    module: nn.Module,
    config: ModelConfig,
    train: Split,
    val: Split | None,
    epochs: int,
    on_epoch: EpochCallback | None = None,
    stage: str = "train",
) -> int:
    """Mini-batches of `config.batch_size` in a fresh order every epoch (seeded), the optimizers of
    make_optimizers, early stopping with `config.patience`. Returns the best epoch."""
    task = ClassifierTask(module, train, val, config.label_smoothing)
    generator = torch.Generator().manual_seed(config.seed)
    plan: Plan = [torch.randperm(len(task.items), generator=generator).split(config.batch_size) for _ in range(epochs)]
    trainer = Trainer(
        task, plan, Steps(make_optimizers(module, config)), TrainerConfig(stage, config.patience), on_epoch
    )
    return trainer.run()
