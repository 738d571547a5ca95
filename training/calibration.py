"""Temperature scaling and the rejection rule (threshold on top-1 score, margin on top1 - top2)."""

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Temperature minimising the NLL of in-scope held-out rows (grid search, robust on tiny sets)."""
    if len(targets) == 0:
        return 1.0
    grid = torch.logspace(-1.5, 1.5, 61)
    nll = torch.stack([F.cross_entropy(logits / t, targets) for t in grid])
    return float(grid[int(nll.argmin())])


@dataclass
class Rejection:
    threshold: float
    margin: float


def top2(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """scores (n, L) probabilities -> top-1 score, top1 - top2, top-1 index."""
    k = min(2, scores.shape[1])
    values, index = scores.topk(k, dim=1)
    second = values[:, 1] if k == 2 else torch.zeros(len(scores))
    return values[:, 0], values[:, 0] - second, index[:, 0]


def _grid(values: torch.Tensor, n: int) -> torch.Tensor:
    if len(values) == 0:
        return torch.zeros(1)
    quantiles = torch.quantile(values, torch.linspace(0, 1, n))
    return torch.unique(torch.cat([torch.zeros(1), quantiles, values.max().view(1) + 1e-6]))


def choose_rejection(
    scores: torch.Tensor, targets: torch.Tensor, target_precision: float, reject_rate: float
) -> Rejection:
    """Pick (threshold, margin) on held-out rows; targets == -1 marks out-of-scope rows.

    With oos rows: maximise in-scope accuracy (rejected = wrong) + oos recall, among the
    pairs whose oos precision (share of rejected rows that are oos) >= target_precision.
    Without oos rows (or when no pair rejecting anything meets the precision): reject as many
    wrong answers (oos rows included) as possible while rejecting at most `reject_rate` of the
    correct ones, then use the whole budget (catches off-topic input).
    """
    top, gap, pred = top2(scores)
    thresholds, margins = _grid(top, 200), _grid(gap, 20)
    reject = (top[None, None] < thresholds[:, None, None]) | (gap[None, None] < margins[None, :, None])
    oos = targets == -1
    correct = (pred == targets) & ~oos
    score = _oos_objective(reject, oos, correct, target_precision) if oos.any() else None
    if score is None or not reject.flatten(0, 1)[int(score.flatten().argmax())].any():
        # no oos rows, or too few to reach the precision while rejecting anything: oos rows count as wrong answers
        score = _selective_objective(reject, correct, reject_rate)
    best = int(score.flatten().argmax())
    i, j = divmod(best, len(margins))
    return Rejection(float(thresholds[i]), float(margins[j]))


def _oos_objective(reject: torch.Tensor, oos: torch.Tensor, correct: torch.Tensor, precision: float) -> torch.Tensor:
    n_rejected = reject.sum(-1)
    true_rejected = (reject & oos).sum(-1)
    feasible = (true_rejected >= precision * n_rejected) | (n_rejected == 0)
    in_scope_acc = (correct & ~reject).sum(-1) / max(int((~oos).sum()), 1)
    recall = true_rejected / oos.sum()
    return torch.where(feasible, in_scope_acc + recall, torch.tensor(-1.0))


def _selective_objective(reject: torch.Tensor, correct: torch.Tensor, reject_rate: float) -> torch.Tensor:
    lost = (reject & correct).sum(-1)
    feasible = lost <= reject_rate * max(int(correct.sum()), 1)
    caught = (reject & ~correct).sum(-1).float()
    total = reject.sum(-1).float() / (reject.shape[-1] + 1)  # tie-break: use the budget
    return torch.where(feasible, caught + total, torch.tensor(-1.0))


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
    best, best_key = None, (-1.0, -float("inf"))
    for weights in simplex(len(log_probs)):
        fused = torch.einsum("c,cnl->nl", torch.tensor(weights), stacked)
        acc = float((fused.argmax(-1) == targets[in_scope]).float().mean())
        key = (round(acc, 6), -float(F.cross_entropy(fused, targets[in_scope])))
        if key > best_key:
            best, best_key = weights, key
    return tuple(round(w, 3) for w in best)
