"""Temperature scaling and the rejection rule (threshold on top-1 score, margin on top1 - top2)."""

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
    Without oos rows: reject as many wrong answers as possible while rejecting at most
    `reject_rate` of the correct ones, then use the whole budget (catches off-topic input).
    """
    top, gap, pred = top2(scores)
    thresholds, margins = _grid(top, 200), _grid(gap, 20)
    reject = (top[None, None] < thresholds[:, None, None]) | (gap[None, None] < margins[None, :, None])
    oos = targets == -1
    correct = (pred == targets) & ~oos
    if oos.any():
        score = _oos_objective(reject, oos, correct, target_precision)
    else:
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
