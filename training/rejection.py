"""When the model says "not sure": the rule (`Rejection`) and how it is chosen on held-out rows.

A model is sure of its best answer when the top-1 score reaches a threshold and the top-1 minus the top-2 score
reaches a margin; a language whose held-out rows allow it (`language_rows`) may have its own threshold and margin
(`Rejection.languages`), the others use the global pair. Before that, the scores of an unfamiliar message (every logit low) are discounted by an
estimate of p(in scope), when a background logit was fitted (`choose_background`). Training, evaluation and the
deployment gate all decide with `Rejection`; this is the only place the rule is written.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch

Ranked = list[tuple[str, float]]  # (label, score), best first
Point = tuple[float, float]  # (threshold, margin)
# A language gets its own rule only where its held-out rows can choose one: at least 20 out-of-scope rows (with
# fewer, one row moves the recall by over 5 points, and the oos weight repeats each row several times) and 30
# in-scope rows (one row moves the accuracy by over 3 points); below that the global rule, chosen on every row,
# decides. Measured on the demo knowledge base (BENCHMARKS.md, "The not-sure rule per language"): at 10
# out-of-scope rows English (13 held out) got a rule of its own, and the gate's cross-fitted not-sure F1 fell in
# each of three seeds.
MIN_LANGUAGE_OOS, MIN_LANGUAGE_IN_SCOPE = 20, 30


def _sure(top: torch.Tensor | float, gap: torch.Tensor | float, threshold: object, margin: object) -> torch.Tensor:
    """The rule: top-1 score >= threshold and top1 - top2 >= margin. On floats, or on tensors that broadcast
    (a whole grid of thresholds and margins at once in `choose_rejection`)."""
    return (top >= threshold) & (gap >= margin)  # type: ignore[operator]


@dataclass(frozen=True)
class Rejection:
    threshold: float = 0.0
    margin: float = 0.0
    background: float | None = None  # logit of a background class that competes with the labels; None: unused
    # language -> its own (threshold, margin); a language not named here (or no language given) uses the pair above
    languages: Mapping[str, Point] = field(default_factory=dict)

    def point(self, language: str | None = None) -> Point:
        """(threshold, margin) for a message in `language`: its own rule, else the global one."""
        both = (self.threshold, self.margin)
        return self.languages.get(language, both) if language else both

    def accepts(self, scores: torch.Tensor, languages: Sequence[str] | None = None) -> torch.Tensor:
        """scores (n, k): each row's probabilities (k >= 1, any order) -> (n,) True where the model is sure;
        languages: each row's, to decide it by its language's rule (None: the global rule for every row)."""
        top, gap, _ = top2(scores)
        if languages is None or not self.languages:
            return _sure(top, gap, self.threshold, self.margin)
        points = torch.tensor([self.point(g) for g in languages], dtype=top.dtype).reshape(-1, 2)  # (n, 2)
        return _sure(top, gap, points[:, 0], points[:, 1])

    def accepts_ranked(self, ranked: Ranked, language: str | None = None) -> bool:
        """The same for one answer ranked best first (as AnswerModel.predict returns it), to a message in
        `language` (None: the global rule); nothing ranked: not sure."""
        if not ranked:
            return False
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        threshold, margin = self.point(language)
        return bool(_sure(ranked[0][1], ranked[0][1] - second, threshold, margin))

    def discount(self, scores: torch.Tensor, familiarity: torch.Tensor) -> torch.Tensor:
        """p(label) * p(in scope): probabilities shrink when every logit is low (an unfamiliar message).

        p(in scope) = sigmoid(familiarity - background), as if a background class with logit `background`
        competed with the labels; familiarity (n,) is the logsumexp of the calibrated logits.
        """
        if self.background is None:
            return scores
        return scores * torch.sigmoid(familiarity - self.background)[:, None]

    def at(self, threshold: float, margin: float, languages: Mapping[str, Point] | None = None) -> "Rejection":
        """The same rule at another operating point (the unfamiliarity discount is the model's own): one threshold
        and margin for every language, unless `languages` gives some their own (the rules before are dropped)."""
        return replace(self, threshold=threshold, margin=margin, languages=dict(languages or {}))


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


def oos_weight(oos: torch.Tensor, share: float) -> float:
    """Weight of one out-of-scope row (`oos`: a boolean per row) so that out-of-scope rows make up `share` of
    the weighted rows; 1 when there is nothing to reweigh (no rows of one kind, or share outside (0, 1))."""
    n_oos, n_in = int(oos.sum()), int((~oos).sum())
    if not n_oos or not n_in or not 0 < share < 1:
        return 1.0
    return share / (1 - share) * n_in / n_oos


def choose_rejection(
    scores: torch.Tensor,
    targets: torch.Tensor,
    target_precision: float,
    reject_rate: float,
    oos_prior: float = 0.0,
) -> Rejection:
    """Pick (threshold, margin) on held-out rows; targets == -1 marks out-of-scope rows.

    With oos rows: maximise in-scope accuracy (rejected = wrong) + oos recall, among the
    pairs whose oos precision (share of rejected rows that are oos) >= target_precision; with
    0 < oos_prior < 1 both are taken as expected on traffic with that share of oos messages
    (held-out oos rows reweighted; objective (1 - prior) * in-scope accuracy + prior * recall),
    else the held-out data's own share is used for the precision.
    Without oos rows (or when no pair rejecting anything meets the precision): reject as many
    wrong answers (oos rows included) as possible while rejecting at most `reject_rate` of the
    correct ones, then use the whole budget (catches off-topic input).
    """
    top, gap, pred = top2(scores)
    thresholds, margins = _grid(top, 200), _grid(gap, 20)
    reject = ~_sure(top[None, None], gap[None, None], thresholds[:, None, None], margins[None, :, None])
    oos = targets == -1
    correct = (pred == targets) & ~oos
    weight = oos_weight(oos, oos_prior)  # each held-out oos row counts as this many when checking the precision
    score = _oos_objective(reject, oos, correct, target_precision, weight, oos_prior) if oos.any() else None
    if score is None or not reject.flatten(0, 1)[int(score.flatten().argmax())].any():
        # no oos rows, or too few to reach the precision while rejecting anything: oos rows count as wrong answers
        score = _selective_objective(reject, correct, reject_rate)
    best = int(score.flatten().argmax())
    i, j = divmod(best, len(margins))
    return Rejection(float(thresholds[i]), float(margins[j]))


def language_rows(
    targets: torch.Tensor, languages: Sequence[str], rows: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """The languages whose held-out rows (among `rows`, a boolean per row; default all) can choose a rule of their
    own: at least MIN_LANGUAGE_OOS out-of-scope (targets == -1) and MIN_LANGUAGE_IN_SCOPE in-scope rows -> each
    one's rows (a boolean per row). None when the rows are all of one language (its rule would be the global one)."""
    rows = torch.ones(len(languages), dtype=torch.bool) if rows is None else rows
    chosen = {}
    for language in sorted(set(languages)):
        mask = torch.tensor([g == language for g in languages], dtype=torch.bool) & rows
        oos = targets[mask] == -1
        enough = int(oos.sum()) >= MIN_LANGUAGE_OOS and int((~oos).sum()) >= MIN_LANGUAGE_IN_SCOPE
        if enough and not torch.equal(mask, rows):
            chosen[language] = mask
    return chosen


def choose_background(
    scores: torch.Tensor,
    familiarity: torch.Tensor,
    targets: torch.Tensor,
    target_precision: float,
    reject_rate: float,
    oos_prior: float = 0.0,
    min_oos: int = 10,
) -> Rejection:
    """The rule, with a background logit or none, that maximises held-out in-scope accuracy + oos recall at the
    target oos precision. A background logit needs at least `min_oos` held-out oos rows."""
    oos = targets == -1
    candidates: list[float | None] = [None]
    if int(oos.sum()) >= min_oos and (~oos).any():
        candidates += [float(b) for b in torch.quantile(familiarity, torch.linspace(0.0, 0.6, 25)).unique()]
    best: tuple[float, Rejection] | None = None
    for background in candidates:
        discounted = Rejection(background=background).discount(scores, familiarity)
        rule = choose_rejection(discounted, targets, target_precision, reject_rate, oos_prior)
        value = rejection_value(discounted, targets, rule, target_precision, oos_prior)
        if best is None or value > best[0] + 1e-9:
            best = (value, replace(rule, background=background))
    assert best is not None
    return best[1]


def rejection_value(
    scores: torch.Tensor, targets: torch.Tensor, rule: Rejection, precision: float, oos_prior: float = 0.0
) -> float:
    """The objective of choose_rejection for `rule`; -1 when it misses the precision."""
    _, _, pred = top2(scores)
    reject = (~rule.accepts(scores))[None, None]
    oos = targets == -1
    if not oos.any():
        return -1.0
    weight = oos_weight(oos, oos_prior)
    return float(_oos_objective(reject, oos, (pred == targets) & ~oos, precision, weight, oos_prior).flatten()[0])


def _oos_objective(
    reject: torch.Tensor,
    oos: torch.Tensor,
    correct: torch.Tensor,
    precision: float,
    weight: float = 1.0,
    prior: float = 0.0,
) -> torch.Tensor:
    true_rejected = (reject & oos).sum(-1)
    false_rejected = (reject & ~oos).sum(-1)
    n_rejected = weight * true_rejected + false_rejected
    feasible = (weight * true_rejected >= precision * n_rejected) | (n_rejected == 0)
    in_scope_acc = (correct & ~reject).sum(-1) / max(int((~oos).sum()), 1)
    recall = true_rejected / oos.sum()
    share = prior if 0 < prior < 1 else 0.5  # expected accuracy on traffic with that share of oos messages
    return torch.where(feasible, (1 - share) * in_scope_acc + share * recall, torch.tensor(-1.0))


def _selective_objective(reject: torch.Tensor, correct: torch.Tensor, reject_rate: float) -> torch.Tensor:
    lost = (reject & correct).sum(-1)
    feasible = lost <= reject_rate * max(int(correct.sum()), 1)
    caught = (reject & ~correct).sum(-1).float()
    total = reject.sum(-1).float() / (reject.shape[-1] + 1)  # tie-break: use the budget
    return torch.where(feasible, caught + total, torch.tensor(-1.0))
