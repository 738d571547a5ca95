"""AnswerModel: the object the Django side trains, saves, loads and queries."""

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .calibration import LANGUAGES, Calibration, CalibrationError, choose_weights, fit_temperature
from .components import component_names, component_shape, empty_component, train_component
from .config import ModelConfig
from .data import Example, holdout_split, label_list
from .rejection import Ranked, Rejection, choose_background, choose_rejection, language_rows
from .text import language
from .trainer import EpochCallback, encode_targets
from .transformer import save_backbone, transformer_folder

logger = logging.getLogger(__name__)

CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.pt"
Weights = dict[str, dict[str, float]]  # language -> component -> weight


class AnswerModel:
    """One or more encoders ("components"), each with a linear head, fused by per-language weights."""

    def __init__(
        self,
        config: ModelConfig,
        labels: list[str],
        components: dict[str, nn.Module],
        backbones: dict[str, Any],
        meta: dict[str, Any],
        calibration: Calibration | None = None,
    ) -> None:
        self.config, self.labels, self.meta = config, labels, meta  # meta: what training measured
        self.components = nn.ModuleDict(components).eval()
        self.backbones = backbones  # pretrained sentence encoders the components read from
        self.quantized = False
        self.calibration = calibration or Calibration.uncalibrated(list(components))

    @property
    def rejection(self) -> Rejection:
        return self.calibration.rejection

    @rejection.setter
    def rejection(self, value: Rejection) -> None:
        self.calibration.rejection = value

    # the operating point: the deployment gate and an operator move it on a trained model; setting the threshold
    # or the margin alone sets it for every language (per-language rules dropped; `rejection` sets them all)
    @property
    def threshold(self) -> float:
        return self.calibration.rejection.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.calibration.rejection = self.rejection.at(value, self.margin)

    @property
    def margin(self) -> float:
        return self.calibration.rejection.margin

    @margin.setter
    def margin(self, value: float) -> None:
        self.calibration.rejection = self.rejection.at(self.threshold, value)

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
        started, cpu_started = time.perf_counter(), time.process_time()
        labels = label_list(examples)
        if not labels:
            raise ValueError("need at least one in-scope example")
        held_out = val_examples is None
        if val_examples is None:
            train, val = holdout_split(examples, config.val_fraction, config.seed)
        else:
            train, val = examples, val_examples
        backbones: dict[str, Any] = {}
        trained = {
            n: train_component(n, config, labels, train, val, on_epoch, backbones) for n in component_names(config)
        }
        model = cls(config, labels, {n: m for n, (m, _) in trained.items()}, backbones, {})
        model._calibrate(val)
        if held_out and val and config.refit:  # calibration stays; weights learn from every example
            for name, (_, best) in trained.items():
                model.components[name] = train_component(name, config, labels, examples, [], None, backbones, best)[
                    0
                ].eval()
        model.end_fit()
        best_epochs = {n: b for n, (_, b) in trained.items()}
        model.meta.update(model._summary(examples, val, best_epochs, time.perf_counter() - started))
        # CPU seconds of this process (all its threads): close to the wall time a quiet machine would take
        model.meta["train_cpu_seconds"] = round(time.process_time() - cpu_started, 3)
        return model

    def end_fit(self) -> None:
        """Drop the text -> vector caches used while fitting; inference never writes shared state."""
        for name in [n for n in self.backbones if n.endswith((".cache", ".head"))]:
            del self.backbones[name]
        for component in self.components.values():
            if hasattr(component, "cache"):
                component.cache = None

    def recalibrate(self, val: list[Example]) -> None:
        """Refit temperatures, fusion weights and the rejection rule of a trained model on new held-out data."""
        self._calibrate(val)

    def _calibrate(self, val: list[Example]) -> None:
        if not val:
            return
        texts, targets = encode_targets(val, self.labels)
        langs = [language(t) for t in texts]
        in_scope = targets >= 0
        temperatures, log_probs, logsumexps = {}, {}, {}
        with torch.no_grad():
            for name, component in self.components.items():
                logits = component.logits(texts)
                temperatures[name] = fit_temperature(logits[in_scope], targets[in_scope])
                log_probs[name] = F.log_softmax(logits / temperatures[name], dim=-1)
                logsumexps[name] = torch.logsumexp(logits / temperatures[name], dim=-1)
                hits = logits[in_scope].argmax(-1) == targets[in_scope]
                self.meta.setdefault("val_accuracy_by_component", {})[name] = (
                    float(hits.float().mean()) if len(hits) else None
                )
        weights = self._choose_weights(log_probs, targets, langs)
        fused = self._fuse(weights, log_probs, langs)
        temperature = fit_temperature(fused[in_scope], targets[in_scope])
        scores = torch.softmax(fused / temperature, dim=-1)
        hits = scores[in_scope].argmax(-1) == targets[in_scope]
        self.meta["val_accuracy"] = float(hits.float().mean()) if len(hits) else None  # before any refit
        args = (targets, self.config.target_oos_precision, self.config.reject_rate, self.config.oos_prior)
        familiarity = self._familiarity(weights, logsumexps, langs)
        if self.config.reject_unfamiliar:
            rejection = choose_background(scores, familiarity, *args)
        else:
            rejection = choose_rejection(scores, *args)
        scores = rejection.discount(scores, familiarity)  # as served
        own = {
            lang: choose_rejection(scores[rows], targets[rows], *args[1:])
            for lang, rows in language_rows(targets, langs).items()
        }
        languages = {lang: (rule.threshold, rule.margin) for lang, rule in own.items()}
        self.calibration = Calibration(
            temperatures, weights, temperature, rejection.at(rejection.threshold, rejection.margin, languages)
        )

    def _choose_weights(self, log_probs: dict[str, torch.Tensor], targets: torch.Tensor, langs: list[str]) -> Weights:
        names = list(log_probs)
        overall = choose_weights(list(log_probs.values()), targets)
        weights = {}
        for lang in LANGUAGES:
            rows = torch.tensor([g == lang for g in langs])
            enough = bool((targets[rows] >= 0).sum() >= 20)  # too few rows: the overall weights generalise better
            chosen = choose_weights([lp[rows] for lp in log_probs.values()], targets[rows]) if enough else overall
            weights[lang] = dict(zip(names, chosen, strict=True))
        return weights

    def _summary(
        self, examples: list[Example], val: list[Example], best: dict[str, int], seconds: float
    ) -> dict[str, Any]:
        return {
            "encoder": self.config.encoder,
            "components": list(self.components),
            "n_labels": len(self.labels),
            "n_examples": len(examples),
            "n_val": len(val),
            "best_epochs": best,
            "train_seconds": round(seconds, 3),
            "val_accuracy": self.meta.get("val_accuracy"),
        }

    # --- inference ------------------------------------------------------------------------
    def _fuse(self, weights: Weights, log_probs: dict[str, torch.Tensor], langs: list[str]) -> torch.Tensor:
        """Per-row weighted sum of each component's calibrated log-probabilities -> (n, L)."""
        fused = torch.zeros(len(langs), len(self.labels))
        for name, lp in log_probs.items():
            w = torch.tensor([weights[g][name] for g in langs])
            fused += w[:, None] * lp
        return fused

    @staticmethod
    def _familiarity(weights: Weights, logsumexps: dict[str, torch.Tensor], langs: list[str]) -> torch.Tensor:
        """(n,) weighted logsumexp of each component's calibrated logits: low for unfamiliar messages."""
        familiarity = torch.zeros(len(langs))
        for name, value in logsumexps.items():
            familiarity += torch.tensor([weights[g][name] for g in langs]) * value
        return familiarity

    @torch.no_grad()
    def scores(self, texts: list[str]) -> torch.Tensor:
        """(n, n_labels) calibrated probabilities; a component is run only on rows where it has weight.

        With a background logit (Rejection.discount) they sum to p(in scope) <= 1 instead of 1.
        """
        langs, calibration = [language(t) for t in texts], self.calibration
        log_probs, logsumexps = {}, {}
        for name, component in self.components.items():
            rows = [i for i, g in enumerate(langs) if calibration.weights[g][name] > 0]
            lp, lse = torch.zeros(len(texts), len(self.labels)), torch.zeros(len(texts))
            if rows:
                logits = component.logits([texts[i] for i in rows]) / calibration.temperatures[name]
                lp[rows], lse[rows] = F.log_softmax(logits, dim=-1), torch.logsumexp(logits, dim=-1)
            log_probs[name], logsumexps[name] = lp, lse
        scores = torch.softmax(self._fuse(calibration.weights, log_probs, langs) / calibration.temperature, dim=-1)
        return self.rejection.discount(scores, self._familiarity(calibration.weights, logsumexps, langs))

    def predict(self, texts: list[str], k: int = 5) -> list[Ranked]:
        if not texts:
            return []
        values, index = self.scores(texts).topk(min(k, len(self.labels)), dim=-1)
        return [
            [(self.labels[i], round(v, 6)) for i, v in zip(ix, vs, strict=True)]
            for ix, vs in zip(index.tolist(), values.tolist(), strict=True)
        ]

    def decide(self, ranked: Ranked, language: str | None = None) -> bool:
        """True when the model is sure of `ranked` (one answer of predict) at its operating point: the rule of
        `language` (the message's, text.language) where it has one of its own, else the global one."""
        return self.rejection.accepts_ranked(ranked, language)

    @torch.no_grad()
    def embed(self, texts: list[str]) -> torch.Tensor:
        """(n, d) L2-normalised; fusion concatenates each encoder's vectors scaled by sqrt(its weight)."""
        langs = [language(t) for t in texts]
        parts = []
        for name, component in self.components.items():
            w = torch.tensor([self.calibration.weights[g][name] for g in langs]).sqrt()
            parts.append(component.embed(texts) * w[:, None])
        return F.normalize(torch.cat(parts, dim=-1), dim=-1) if texts else torch.zeros(0, 1)

    def keep(self, names: list[str]) -> "AnswerModel":
        """Restrict a fused model to some of its components (weights renormalised; recalibrate after)."""
        unknown = set(names) - set(self.components)
        if unknown or not names:
            raise ValueError(f"unknown components {sorted(unknown)}; this model has {list(self.components)}")
        self.components = nn.ModuleDict({n: self.components[n] for n in names}).eval()
        calibration = self.calibration
        calibration.temperatures = {n: calibration.temperatures[n] for n in names}
        for lang, weights in calibration.weights.items():
            total = sum(weights[n] for n in names)
            calibration.weights[lang] = {n: weights[n] / total if total > 0 else 1.0 / len(names) for n in names}
        self.meta["components"] = list(names)
        return self

    def quantize(self) -> "AnswerModel":
        """int8 dynamic quantisation of every Linear layer (pretrained encoders and heads), in place."""
        for module in [*self.backbones.values(), *self.components.values()]:
            torch.ao.quantization.quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8, inplace=True)
        self.quantized = True
        return self

    @property
    def info(self) -> dict[str, Any]:
        """What training measured and the calibration in force, flat (stored with each model version)."""
        return {**self.meta, **self.calibration.to_dict()}

    # --- persistence ----------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        if self.quantized:
            raise ValueError("save the float model; AnswerModel.load quantises when config.quantize is set")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        document = {
            "config": self.config.to_dict(),
            "labels": self.labels,
            "calibration": self.calibration.to_dict(),
            "meta": self.meta,
            "shapes": {n: component_shape(n, m) for n, m in self.components.items()},
        }
        (folder / CONFIG_FILE).write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
        torch.save(self.components.state_dict(), folder / WEIGHTS_FILE)
        for name, backbone in self.backbones.items():
            save_backbone(backbone, folder / name, transformer_folder(self.config.transformer_path))

    @classmethod
    def load(cls, folder: str | Path) -> "AnswerModel":
        """The model saved in `folder`; CalibrationError (a ValueError) when its calibration record is unusable."""
        folder = Path(folder)
        document = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        config, labels = ModelConfig.from_dict(document["config"]), document["labels"]
        meta, record = _calibration_record(document)
        try:
            calibration = Calibration.from_dict(record, list(document["shapes"]))
        except CalibrationError as error:
            raise CalibrationError(f"{folder / CONFIG_FILE}: {error}") from error
        backbones: dict[str, Any] = {}
        components = {
            n: empty_component(n, config, len(labels), shape, folder, backbones)
            for n, shape in document["shapes"].items()
        }
        model = cls(config, labels, components, backbones, meta, calibration)
        model.components.load_state_dict(torch.load(folder / WEIGHTS_FILE, weights_only=True, map_location="cpu"))
        return model.quantize() if config.quantize else model


def _calibration_record(document: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(meta, calibration record) of a saved config.json. Models saved before the record existed kept its
    values in meta, and are read the same way (a missing value: as before calibration)."""
    meta = document["meta"]
    if "calibration" in document:
        return meta, document["calibration"]
    defaults = Calibration.uncalibrated(list(document["shapes"])).to_dict()
    record = {key: meta.get(key, value) for key, value in defaults.items()}
    return {key: value for key, value in meta.items() if key not in defaults}, record
