"""What a trained model fits on held-out data (`Calibration`): temperatures, fusion weights and the rejection rule."""

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .rejection import Point, Rejection

LANGUAGES = ("en", "zh")  # fusion weighs its encoders per language (text.language)
OPTIONAL = ("languages",)  # record keys that calibrations saved before them lack


class CalibrationError(ValueError):
    """A calibration record that cannot be used (a damaged or hand-edited model folder)."""


@dataclass
class Calibration:
    """Fitted after training on held-out rows; saved with the model ("calibration" in its config.json).

    temperatures: per component, divides its logits; weights: per language, each component's share of the fused
    log-probabilities; temperature: divides the fused scores; rejection: when the model says it is not sure (with
    its per-language rules, "languages"; a record saved before they existed has none, and loads as it was).
    """

    temperatures: dict[str, float]
    weights: dict[str, dict[str, float]]
    temperature: float = 1.0
    rejection: Rejection = field(default_factory=Rejection)

    @classmethod
    def uncalibrated(cls, components: list[str]) -> "Calibration":
        """Before any held-out data: every temperature 1, components weighed equally, every answer accepted."""
        weights = {lang: dict.fromkeys(components, 1.0 / len(components)) for lang in LANGUAGES}
        return cls(dict.fromkeys(components, 1.0), weights)

    def to_dict(self) -> dict[str, Any]:
        """A flat, JSON-ready copy (the keys that from_dict reads)."""
        return {
            "temperatures": dict(self.temperatures),
            "weights": {lang: dict(weights) for lang, weights in self.weights.items()},
            "temperature": self.temperature,
            "threshold": self.rejection.threshold,
            "margin": self.rejection.margin,
            "background": self.rejection.background,
            "languages": language_rules_dict(self.rejection.languages),
        }

    @classmethod
    def from_dict(cls, data: Any, components: list[str]) -> "Calibration":
        """Read and check a record written by to_dict for a model made of `components`; CalibrationError names
        the first thing wrong."""
        if not isinstance(data, dict):
            raise CalibrationError(f"calibration must be an object, got {type(data).__name__}")
        missing = [key for key in cls.uncalibrated(["x"]).to_dict() if key not in data and key not in OPTIONAL]
        if missing:
            raise CalibrationError(f"calibration lacks {', '.join(missing)}")
        temperatures = _per_component(data["temperatures"], components, "temperatures", positive=True)
        if not isinstance(data["weights"], dict):
            raise CalibrationError("calibration weights must be an object of languages")
        weights = {lang: _per_component(data["weights"].get(lang), components, f"weights.{lang}") for lang in LANGUAGES}
        background = None if data["background"] is None else _number(data["background"], "background")
        rejection = Rejection(
            _number(data["threshold"], "threshold"),
            _number(data["margin"], "margin"),
            background,
            language_rules_read(data.get("languages") or {}),
        )
        return cls(temperatures, weights, _number(data["temperature"], "temperature", positive=True), rejection)


def language_rules_dict(rules: Mapping[str, Point]) -> dict[str, dict[str, float]]:
    """Per-language rules as JSON: {language: {"threshold": t, "margin": m}} (also ModelVersion.language_rules)."""
    return {lang: {"threshold": threshold, "margin": margin} for lang, (threshold, margin) in sorted(rules.items())}


def language_rules_read(data: Any) -> dict[str, Point]:
    """The rules written by language_rules_dict; CalibrationError names the first thing wrong."""
    if not isinstance(data, dict) or not set(data) <= set(LANGUAGES):
        raise CalibrationError(f"calibration languages must be an object of {LANGUAGES}, got {data!r}")
    rules = {}
    for lang, rule in data.items():
        if not isinstance(rule, dict) or not {"threshold", "margin"} <= set(rule):
            raise CalibrationError(f"calibration languages.{lang} must give a threshold and a margin, got {rule!r}")
        rules[lang] = (
            _number(rule["threshold"], f"languages.{lang}.threshold"),
            _number(rule["margin"], f"languages.{lang}.margin"),
        )
    return rules


def _number(value: Any, name: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CalibrationError(f"calibration {name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise CalibrationError(f"calibration {name} must be positive, got {value!r}")
    return float(value)


def _per_component(values: Any, components: list[str], name: str, positive: bool = False) -> dict[str, float]:
    if not isinstance(values, dict) or not set(components) <= set(values):
        raise CalibrationError(f"calibration {name} must give a number for each of {components}, got {values!r}")
    return {key: _number(value, f"{name}.{key}", positive) for key, value in values.items()}


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Temperature minimising the NLL of in-scope held-out rows (grid search, robust on tiny sets)."""
    if len(targets) == 0:
        return 1.0
    grid = torch.logspace(-1.5, 1.5, 61)
    nll = torch.stack([F.cross_entropy(logits / t, targets) for t in grid])
    return float(grid[int(nll.argmin())])


def simplex(n: int, step: float = 0.1) -> list[tuple[float, ...]]:
    """All weight vectors of length n on a grid, summing to 1."""
    units = round(1 / step)
    grid = itertools.product(range(units + 1), repeat=n - 1)
    return [(*(i * step for i in g), (units - sum(g)) * step) for g in grid if sum(g) <= units]


def choose_weights(log_probs: list[torch.Tensor], targets: torch.Tensor) -> tuple[float, ...]:
    """Fusion weights (one per encoder) maximising held-out accuracy, then likelihood; log_probs: (n, L) each."""
    in_scope = targets >= 0
    if len(log_probs) == 1 or not in_scope.any():
        return tuple(1.0 / len(log_probs) for _ in log_probs)
    stacked = torch.stack([lp[in_scope] for lp in log_probs])  # (C, n, L)
    best: tuple[float, ...] | None = None
    best_key = (-1.0, -float("inf"))
    for weights in simplex(len(log_probs)):
        fused = torch.einsum("c,cnl->nl", torch.tensor(weights), stacked)
        acc = float((fused.argmax(-1) == targets[in_scope]).float().mean())
        key = (round(acc, 6), -float(F.cross_entropy(fused, targets[in_scope])))
        if key > best_key:
            best, best_key = weights, key
    assert best is not None  # the first grid point always beats the initial key
    return tuple(round(w, 3) for w in best)
