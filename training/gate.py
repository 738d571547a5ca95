"""The deployment gate's statistics: a candidate against the active model on held-out rows, and the threshold
trade-off. Plain PyTorch; chatbot/registry/gate.py supplies the settings and the registry stores the results.

Operating point. A model says "not sure" by its `Rejection` rule; the gate chooses the rule's threshold and margin
together on the held-out set (`operating_point`), with the trainer's own choice (`choose_rejection`: best in-scope
accuracy + out-of-scope recall among the points whose out-of-scope precision reaches the configured target).
Changing one without the other is what broke the learning curve: a threshold chosen at the trainer's margin
collapsed out-of-scope F1. A language whose held-out rows are enough (rejection.language_rows) gets its own
threshold and margin, chosen the same way on its rows; the other languages use the pair chosen on all rows.
Each row is decided by its language's rule, for the candidate and the active model alike. Out-of-scope rows are weighed as `share` of the traffic (precision depends on it, and
the held-out set's own share only says how many examples were curated and reviewed), when choosing the point and
when scoring out-of-scope F1.

Fair comparison. The gate scores the candidate and the active model on the same held-out rows, each at its
own operating point calibrated on that held-out set; to keep the calibration from grading its own homework,
it is cross-fitted: the rows are cut into folds (by a hash of the text), and each fold is decided at the
operating point chosen on the other folds.
"""

import math
import zlib
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from .config import ModelConfig
from .data import OUT_OF_SCOPE, Example
from .rejection import Point, Ranked, Rejection, choose_rejection, language_rows, oos_weight
from .text import language, normalise

MAX_DISAGREEMENTS = 200
FOLDS = 5
MIN_ROWS_PER_FOLD = 20  # fewer held-out rows: one fold, decided at the point chosen on all of them
MAX_REPEAT = 50
FALLBACK_RECALL_RATIO = 0.5
RIGHT, OOS_ROW, WRONG = 0, -1, -2  # targets for choose_rejection on (top-1, top-2) score columns


class Gated(Protocol):
    """What the gate reads of a model (an AnswerModel): its answers, its rule and its configuration."""

    config: ModelConfig

    @property
    def rejection(self) -> Rejection: ...

    def predict(self, texts: list[str], k: int = 5) -> list[Ranked]: ...


@dataclass(frozen=True)
class Decision:
    label: str  # what the model answers with: a pair id, or OUT_OF_SCOPE when it says it is not sure
    top: str  # its best guess, even when not sure
    score: float


@dataclass(frozen=True)
class Scored:
    """A model's top-2 answers to the held-out rows, in the form the trainer's calibration reads."""

    top: list[str]  # best label per row
    scores: torch.Tensor  # (n, 2): top-1 and top-2 scores, exactly as served (model.predict)
    targets: torch.Tensor  # (n,): RIGHT when the best label is the gold one, OOS_ROW for oos rows, else WRONG
    languages: list[str]  # each row's (text.language): its language's rule decides it


def score_rows(model: Gated, examples: list[Example]) -> Scored:
    ranked = model.predict([text for text, _ in examples], k=2) if examples else []
    top = [r[0][0] for r in ranked]
    scores = torch.tensor([[r[0][1], r[1][1] if len(r) > 1 else 0.0] for r in ranked], dtype=torch.float64)
    targets = torch.tensor(
        [
            OOS_ROW if gold == OUT_OF_SCOPE else (RIGHT if best == gold else WRONG)
            for best, (_, gold) in zip(top, examples, strict=True)
        ],
        dtype=torch.long,
    )
    return Scored(top, scores.reshape(-1, 2), targets, [language(text) for text, _ in examples])


def _can_calibrate(targets: torch.Tensor) -> bool:
    return bool((targets == OOS_ROW).any() and (targets != OOS_ROW).any())


def _choose(model: Gated, scored: Scored, rows: torch.Tensor, share: float) -> Rejection:
    """The model's rule at the point chosen on the rows (`rows`: a boolean per row), and for each language whose
    rows are enough (rejection.language_rows), at the point chosen the same way on that language's rows."""
    languages = {
        lang: _point(model, scored, mask, share)
        for lang, mask in language_rows(scored.targets, scored.languages, rows).items()
    }
    return model.rejection.at(*_point(model, scored, rows, share), languages)


def _point(model: Gated, scored: Scored, rows: torch.Tensor, share: float) -> Point:
    """choose_rejection on the rows, the out-of-scope ones repeated (or the in-scope ones, when out-of-scope
    rows are already over their share) so that they weigh `share` of traffic.

    A model that cannot tell out-of-scope questions from its own mistakes reaches the precision target only
    by rejecting almost nothing (the demo knowledge base: 5 % out-of-scope recall). When the target's point
    catches less than half of the out-of-scope rows that the trainer's rule without out-of-scope examples
    catches (reject at most `reject_rate` of the right answers), that rule is used instead."""
    index = rows.nonzero().flatten()
    oos = scored.targets[index] == OOS_ROW
    weight = oos_weight(oos, share)
    repeats = torch.ones(len(index), dtype=torch.long)
    if weight >= 1:
        repeats[oos] = min(MAX_REPEAT, round(weight))
    else:
        repeats[~oos] = min(MAX_REPEAT, round(1 / weight))
    index = index.repeat_interleave(repeats)
    scores, targets = scored.scores[index].float(), scored.targets[index]
    config = model.config
    rule = choose_rejection(scores, targets, config.target_oos_precision, config.reject_rate)
    budget = choose_rejection(scores, torch.where(targets == OOS_ROW, WRONG, targets), 1.0, config.reject_rate)
    if _oos_caught(rule, scores, targets) < FALLBACK_RECALL_RATIO * _oos_caught(budget, scores, targets):
        rule = budget
    return rule.threshold, rule.margin


def _oos_caught(rule: Rejection, scores: torch.Tensor, targets: torch.Tensor) -> int:
    return int((~rule.accepts(scores) & (targets == OOS_ROW)).sum())


def operating_point(
    model: Gated, holdout: list[Example], *, share: float, scored: Scored | None = None
) -> Rejection | None:
    """The model's rule at the threshold and margin chosen together on the held-out set; None without both
    in-scope and oos rows. `scored`: the model's score_rows on `holdout`, when the caller has them already."""
    scored = scored if scored is not None else score_rows(model, holdout)
    if not _can_calibrate(scored.targets):
        return None
    return _choose(model, scored, torch.ones(len(holdout), dtype=torch.bool), share)


def folds(holdout: list[Example]) -> list[int]:
    """A stable fold per row (hash of the text): the same rows fall together for every model compared."""
    k = max(1, min(FOLDS, len(holdout) // MIN_ROWS_PER_FOLD))
    return [zlib.crc32(normalise(text).encode()) % k for text, _ in holdout]


def decisions_at(scored: Scored, rule: Rejection) -> list[Decision]:
    """Each row decided by `rule`, at its language's threshold and margin."""
    sure = rule.accepts(scored.scores, scored.languages).tolist()
    return [
        Decision(top if ok else OUT_OF_SCOPE, top, round(float(score), 4))
        for top, ok, score in zip(scored.top, sure, scored.scores[:, 0].tolist(), strict=True)
    ]


def decisions_calibrated(model: Gated, scored: Scored, fold_of: list[int], share: float) -> list[Decision]:
    """Each row (scored by `score_rows`) decided at the operating point calibrated on the other folds
    (cross-fitted); at the model's own operating point when the held-out set cannot calibrate one (no oos or
    no in-scope rows)."""
    if not _can_calibrate(scored.targets):
        return decisions_at(scored, model.rejection)
    fold = torch.tensor(fold_of)
    n_folds = int(fold.max()) + 1
    by_fold = []
    for f in range(n_folds):
        rest = fold != f if n_folds > 1 else torch.ones(len(fold_of), dtype=torch.bool)
        rule = _choose(model, scored, rest, share) if _can_calibrate(scored.targets[rest]) else model.rejection
        by_fold.append(decisions_at(scored, rule))
    return [by_fold[f][i] for i, f in enumerate(fold_of)]


def decisions(model: Gated, examples: list[Example]) -> list[Decision]:
    """The model's decisions at its own operating point (as it answers in service)."""
    if not examples:
        return []
    return decisions_at(score_rows(model, examples), model.rejection)


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def metrics(gold: list[str], predicted: list[Decision], oos_weight: float = 1.0) -> dict[str, Any]:
    """In-scope accuracy (not sure = wrong) and out-of-scope precision, recall and F1 of saying "not sure";
    with `oos_weight`, each out-of-scope row counts that many times in the precision (see the module's `share`)."""
    in_scope = [(g, d) for g, d in zip(gold, predicted, strict=True) if g != OUT_OF_SCOPE]
    n_oos = len(gold) - len(in_scope)
    rejected = [g for g, d in zip(gold, predicted, strict=True) if d.label == OUT_OF_SCOPE]
    true_rejected = rejected.count(OUT_OF_SCOPE)
    weighted_rejected = oos_weight * true_rejected + len(rejected) - true_rejected
    precision = oos_weight * true_rejected / weighted_rejected if rejected else None
    recall = _share(true_rejected, n_oos)
    f1 = None
    if n_oos:
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {
        "n": len(gold),
        "n_in_scope": len(in_scope),
        "n_oos": n_oos,
        "accuracy": _share(sum(d.label == g for g, d in in_scope), len(in_scope)),
        "oos_precision": precision,
        "oos_recall": recall,
        "oos_f1": f1,
        **({"oos_weight": round(oos_weight, 3)} if oos_weight != 1.0 else {}),
    }


def paired_z(ours: list[bool], theirs: list[bool]) -> float:
    """McNemar's statistic on paired right/wrong decisions: > 0 when the candidate loses more rows than it wins."""
    wins = sum(a and not b for a, b in zip(ours, theirs, strict=True))
    losses = sum(b and not a for a, b in zip(ours, theirs, strict=True))
    return (losses - wins) / math.sqrt(losses + wins) if losses + wins else 0.0


def _check(
    name: str, candidate: float | None, active: float | None, margin: float, z: float, confidence_z: float
) -> dict[str, Any]:
    """Failed when the candidate is worse by more than the margin and the loss is not chance (paired test)."""
    if candidate is None or active is None:
        return {"metric": name, "candidate": candidate, "active": active, "passed": True, "note": "no held-out rows"}
    worse = candidate < active - margin
    return {
        "metric": name,
        "candidate": round(candidate, 4),
        "active": round(active, 4),
        "delta": round(candidate - active, 4),
        "z": round(z, 2),
        "passed": not (worse and z >= confidence_z),
    }


def compare(
    candidate: Gated,
    active: Gated,
    holdout: list[Example],
    *,
    margin: float,
    share: float,
    confidence_z: float = 1.64,
    candidate_scored: Scored | None = None,
) -> dict[str, Any]:
    """Passed when the candidate is not worse than the active model by more than `margin` on in-scope accuracy
    and out-of-scope F1, unless the held-out set is too small to tell (the paired z below `confidence_z`);
    with the rows where the two decide differently. Out-of-scope rows weigh `share` of the traffic."""
    gold = [label for _, label in holdout]
    fold_of = folds(holdout)
    weight = oos_weight(torch.tensor([label == OUT_OF_SCOPE for label in gold], dtype=torch.bool), share)
    active_scored = score_rows(active, holdout)  # once: calibrated and as in service
    candidate_scored = candidate_scored if candidate_scored is not None else score_rows(candidate, holdout)
    ours = decisions_calibrated(candidate, candidate_scored, fold_of, share)
    theirs = decisions_calibrated(active, active_scored, fold_of, share)
    scores = {"candidate": metrics(gold, ours, weight), "active": metrics(gold, theirs, weight)}
    in_scope = [i for i, label in enumerate(gold) if label != OUT_OF_SCOPE]
    answer_z = paired_z([ours[i].label == gold[i] for i in in_scope], [theirs[i].label == gold[i] for i in in_scope])
    oos_z = paired_z(
        [(d.label == OUT_OF_SCOPE) == (g == OUT_OF_SCOPE) for d, g in zip(ours, gold, strict=True)],
        [(d.label == OUT_OF_SCOPE) == (g == OUT_OF_SCOPE) for d, g in zip(theirs, gold, strict=True)],
    )
    checks = [
        _check(name, scores["candidate"][name], scores["active"][name], margin, z, confidence_z)
        for name, z in (("accuracy", answer_z), ("oos_f1", oos_z))
    ]
    disagreements = [
        {
            "text": text,
            "gold": label,
            "candidate": mine.label,
            "candidate_score": mine.score,
            "active": other.label,
            "active_score": other.score,
        }
        for (text, label), mine, other in zip(holdout, ours, theirs, strict=True)
        if mine.label != other.label
    ]
    return {
        "passed": all(check["passed"] for check in checks),
        "margin": margin,
        "operating_point": "each model calibrated on the held-out set, cross-fitted over "
        f"{max(fold_of, default=0) + 1} fold(s)",
        "oos_share": share,
        "active_in_service": metrics(gold, decisions_at(active_scored, active.rejection), weight),
        "confidence_z": confidence_z,
        "checks": checks,
        **scores,
        "n_disagreements": len(disagreements),
        "disagreements": disagreements[:MAX_DISAGREEMENTS],
    }


def tradeoff_curve(
    model: Gated, holdout: list[Example], steps: int = 40, scored: Scored | None = None
) -> dict[str, Any]:
    """Per threshold: coverage (share of in-scope questions answered) and precision (share of answers that are
    right, out-of-scope questions answered count as wrong), at the model's margin, the same threshold for every
    language (what an operator's threshold does: it replaces the per-language rules)."""
    if not holdout:
        return {}
    scored = scored if scored is not None else score_rows(model, holdout)
    right, in_scope = scored.targets == RIGHT, scored.targets != OOS_ROW
    n_in_scope = int(in_scope.sum())
    points = []
    for i in range(steps + 1):
        threshold = i / steps
        answered = model.rejection.at(threshold, model.rejection.margin).accepts(scored.scores)
        points.append(
            {
                "threshold": round(threshold, 4),
                "coverage": _share(int((answered & in_scope).sum()), n_in_scope),
                "precision": _share(int((answered & right).sum()), int(answered.sum())),
                "answered": int(answered.sum()),
            }
        )
    return {
        "points": points,
        "n": len(scored.top),
        "n_in_scope": n_in_scope,
        "margin": model.rejection.margin,
        "calibrated_threshold": model.rejection.threshold,
    }
