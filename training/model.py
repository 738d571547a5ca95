"""AnswerModel: the object the Django side trains, saves, loads and queries."""

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import calibration
from .config import ModelConfig
from .data import Example, encode_targets, holdout_split, label_list
from .ngram import NgramClassifier, NgramEncoder
from .trainer import EpochCallback, Trainer

logger = logging.getLogger(__name__)

CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.pt"
Ranked = list[tuple[str, float]]


def build_module(config: ModelConfig, labels: list[str], texts: list[str]) -> nn.Module:
    torch.manual_seed(config.seed)
    encoder = NgramEncoder.from_texts(texts, config.ngram_dim, config.n_buckets)
    return NgramClassifier(encoder, len(labels), config.dropout)


def empty_module(config: ModelConfig, labels: list[str], meta: dict[str, Any]) -> nn.Module:
    vocab = torch.zeros(meta["n_features"], dtype=torch.long)
    return NgramClassifier(NgramEncoder(vocab, config.ngram_dim, config.n_buckets), len(labels), config.dropout)


class AnswerModel:
    def __init__(self, config: ModelConfig, labels: list[str], module: nn.Module, meta: dict[str, Any]) -> None:
        self.config, self.labels, self.module, self.meta = config, labels, module.eval(), meta
        self.temperature: float = meta.get("temperature", 1.0)
        self.threshold: float = meta.get("threshold", 0.0)
        self.margin: float = meta.get("margin", 0.0)

    # --- training -------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        examples: list[Example],
        config: ModelConfig | None = None,
        val_examples: list[Example] | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> "AnswerModel":
        config = config or ModelConfig()
        started = time.perf_counter()
        labels = label_list(examples)
        if not labels:
            raise ValueError("need at least one in-scope example")
        held_out = val_examples is None
        train, val = holdout_split(examples, config.val_fraction, config.seed) if held_out else (examples, val_examples)
        module, best_epoch = cls._train(config, labels, train, val, on_epoch, config.epochs)
        model = cls(config, labels, module, {})
        model._calibrate(val)
        if held_out and val and config.refit:
            model.module, _ = cls._train(config, labels, examples, [], None, best_epoch)
        model.meta.update(model._summary(examples, val, best_epoch, time.perf_counter() - started))
        return model

    @staticmethod
    def _train(config: ModelConfig, labels: list[str], train: list[Example], val: list[Example],
               on_epoch: EpochCallback | None, epochs: int) -> tuple[nn.Module, int]:
        module = build_module(config, labels, [t for t, _ in train])
        trainer = Trainer(module, config, encode_targets(train, labels), encode_targets(val, labels), on_epoch)
        return module, trainer.run(epochs)

    def _calibrate(self, val: list[Example]) -> None:
        if not val:
            return
        texts, targets = encode_targets(val, self.labels)
        with torch.no_grad():
            logits = self.module.logits(texts)
        in_scope = targets >= 0
        self.temperature = calibration.fit_temperature(logits[in_scope], targets[in_scope])
        scores = torch.softmax(logits / self.temperature, dim=-1)
        rule = calibration.choose_rejection(scores, targets, self.config.target_oos_precision, self.config.reject_rate)
        self.threshold, self.margin = rule.threshold, rule.margin

    def _summary(self, examples: list[Example], val: list[Example], best_epoch: int, seconds: float) -> dict[str, Any]:
        texts, targets = encode_targets(val, self.labels)
        in_scope = targets >= 0
        ranked = self.predict([t for t, ok in zip(texts, in_scope) if ok], k=1) if in_scope.any() else []
        hits = [r[0][0] == self.labels[int(t)] for r, t in zip(ranked, targets[in_scope])]
        return {
            "encoder": self.config.encoder, "n_labels": len(self.labels), "n_examples": len(examples),
            "n_val": len(val), "best_epoch": best_epoch, "temperature": self.temperature,
            "threshold": self.threshold, "margin": self.margin, "train_seconds": round(seconds, 3),
            "val_accuracy": sum(hits) / len(hits) if hits else None,
        }

    # --- inference ------------------------------------------------------------------------
    @torch.no_grad()
    def scores(self, texts: list[str]) -> torch.Tensor:
        """(n, n_labels) calibrated probabilities."""
        if not texts:
            return torch.zeros(0, len(self.labels))
        return torch.softmax(self.module.logits(texts) / self.temperature, dim=-1)

    def predict(self, texts: list[str], k: int = 5) -> list[Ranked]:
        values, index = self.scores(texts).topk(min(k, len(self.labels)), dim=-1)
        return [[(self.labels[i], round(v, 6)) for i, v in zip(ix.tolist(), vs.tolist())] for ix, vs in zip(index, values)]

    def decide(self, ranked: Ranked) -> bool:
        """True when confident: top-1 score >= threshold and top1 - top2 >= margin."""
        if not ranked:
            return False
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        return ranked[0][1] >= self.threshold and ranked[0][1] - second >= self.margin

    @torch.no_grad()
    def embed(self, texts: list[str]) -> torch.Tensor:
        """(n, d) L2-normalised sentence vectors."""
        return self.module.embed(texts)

    @property
    def info(self) -> dict[str, Any]:
        return dict(self.meta)

    # --- persistence ----------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "temperature": self.temperature, "threshold": self.threshold, "margin": self.margin}
        meta["n_features"] = int(self.module.encoder.vocab.numel())
        document = {"config": self.config.to_dict(), "labels": self.labels, "meta": meta}
        (folder / CONFIG_FILE).write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
        torch.save(self.module.state_dict(), folder / WEIGHTS_FILE)

    @classmethod
    def load(cls, folder: str | Path) -> "AnswerModel":
        folder = Path(folder)
        document = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        config, labels, meta = ModelConfig.from_dict(document["config"]), document["labels"], document["meta"]
        module = empty_module(config, labels, meta)
        module.load_state_dict(torch.load(folder / WEIGHTS_FILE, weights_only=True, map_location="cpu"))
        return cls(config, labels, module, meta)
