"""The gate: a candidate against the active model on the held-out set, and the threshold trade-off."""

import math
from dataclasses import dataclass
from typing import Any

from training import AnswerModel

Example = tuple[str, str]
OUT_OF_SCOPE = "oos"
MAX_DISAGREEMENTS = 200


@dataclass(frozen=True)
class Decision:
    label: str  # what the model answers with: a pair id, or "oos" when it says it is not sure
    top: str  # its best guess, even when not sure
    score: float


def decisions(model: AnswerModel, examples: list[Example]) -> list[Decision]:
    if not examples:
        return []
    ranked = model.predict([text for text, _ in examples], k=2)
    return [Decision(r[0][0] if model.decide(r) else OUT_OF_SCOPE, r[0][0], round(r[0][1], 4)) for r in ranked]


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def metrics(gold: list[str], predicted: list[Decision]) -> dict[str, Any]:
    """In-scope accuracy (not sure = wrong) and out-of-scope precision, recall and F1 of saying "not sure"."""
    in_scope = [(g, d) for g, d in zip(gold, predicted, strict=True) if g != OUT_OF_SCOPE]
    n_oos = len(gold) - len(in_scope)
    rejected = [g for g, d in zip(gold, predicted, strict=True) if d.label == OUT_OF_SCOPE]
    true_rejected = rejected.count(OUT_OF_SCOPE)
    precision, recall = _share(true_rejected, len(rejected)), _share(true_rejected, n_oos)
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


def gate_compare(
    candidate: AnswerModel, active: AnswerModel, holdout: list[Example], margin: float, confidence_z: float = 1.64
) -> dict[str, Any]:
    """Passed when the candidate is not worse than the active model by more than `margin` on in-scope accuracy
    and out-of-scope F1, unless the held-out set is too small to tell (the paired z below `confidence_z`);
    with the rows where the two decide differently."""
    gold = [label for _, label in holdout]
    ours, theirs = decisions(candidate, holdout), decisions(active, holdout)
    scores = {"candidate": metrics(gold, ours), "active": metrics(gold, theirs)}
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
        "confidence_z": confidence_z,
        "checks": checks,
        **scores,
        "n_disagreements": len(disagreements),
        "disagreements": disagreements[:MAX_DISAGREEMENTS],
    }


def calibrate_threshold(model: AnswerModel, holdout: list[Example], steps: int = 200) -> float | None:
    """The threshold (at the model's margin) with the best decisions on the held-out set: a right answer or "not sure"
    to an out-of-scope question count 1, "not sure" instead of a wrong answer 0.5 (the suggestions may still help).
    None without both in-scope and out-of-scope rows."""
    gold = [label for _, label in holdout]
    if OUT_OF_SCOPE not in gold or all(label == OUT_OF_SCOPE for label in gold):
        return None
    ranked = model.predict([text for text, _ in holdout], k=2)
    rows = [
        (r[0][1], r[0][1] - (r[1][1] if len(r) > 1 else 0.0), r[0][0] == label)
        for r, label in zip(ranked, gold, strict=True)
    ]
    best, best_value = 0.0, -1.0
    for i in range(steps + 1):
        threshold = i / steps
        value = sum(
            float(ok)
            if top >= threshold and gap >= model.margin
            else (0.0 if ok else 0.5 + 0.5 * (label == OUT_OF_SCOPE))
            for (top, gap, ok), label in zip(rows, gold, strict=True)
        )
        if value > best_value:
            best, best_value = threshold, value
    return best


def tradeoff_curve(model: AnswerModel, holdout: list[Example], steps: int = 40) -> dict[str, Any]:
    """Per threshold: coverage (share of in-scope questions answered) and precision (share of answers that are
    right, out-of-scope questions answered count as wrong), at the model's margin."""
    if not holdout:
        return {}
    ranked = model.predict([text for text, _ in holdout], k=2)
    rows = [
        (r[0][1], r[0][1] - (r[1][1] if len(r) > 1 else 0.0), r[0][0] == gold, gold != OUT_OF_SCOPE)
        for r, (_, gold) in zip(ranked, holdout, strict=True)
    ]
    n_in_scope = sum(1 for *_, in_scope in rows if in_scope)
    points = []
    for i in range(steps + 1):
        threshold = i / steps
        answered = [(right, in_scope) for top, gap, right, in_scope in rows if top >= threshold and gap >= model.margin]
        right = sum(1 for ok, in_scope in answered if ok and in_scope)
        covered = sum(1 for _, in_scope in answered if in_scope)
        points.append(
            {
                "threshold": round(threshold, 4),
                "coverage": _share(covered, n_in_scope),
                "precision": _share(right, len(answered)),
                "answered": len(answered),
            }
        )
    return {
        "points": points,
        "n": len(rows),
        "n_in_scope": n_in_scope,
        "margin": model.margin,
        "calibrated_threshold": model.threshold,
    }
