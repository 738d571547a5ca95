"""The deployment gate's settings: the statistics are training.gate's; the registry stores what they return.

A new model goes live only when, on the held-out set, it measures no worse than the model in service
(settings.CHATBOT_GATE_MARGIN); out-of-scope questions are weighed as settings.CHATBOT_GATE_OOS_SHARE of the
traffic, when the operating point is chosen and when out-of-scope F1 is scored.
"""

from typing import Any

import torch
from django.conf import settings

from training.data import Example
from training.gate import Gated, Scored, compare, operating_point, score_rows, tradeoff_curve
from training.rejection import Rejection
from training.rejection import oos_weight as rejection_oos_weight

__all__ = ["Scored", "calibrate", "gate_compare", "oos_share", "oos_weight", "score_rows", "tradeoff_curve"]


def oos_share() -> float:
    """The share of customer messages taken to be out of scope. The held-out set's own share is an accident of
    how many examples were curated and reviewed (it falls as reviewed questions arrive), and the precision of
    "not sure" moves with it: at a low share the precision target forces the threshold down and out-of-scope
    recall collapses (BENCHMARKS.md, "Learning curve on CLINC150")."""
    return settings.CHATBOT_GATE_OOS_SHARE


def oos_weight(gold_is_oos: list[bool] | torch.Tensor, share: float | None = None) -> float:
    """Weight of one out-of-scope row so that out-of-scope rows make up `share` (default oos_share()) of the
    weighted rows."""
    flags = torch.as_tensor(gold_is_oos, dtype=torch.bool)
    return rejection_oos_weight(flags, oos_share() if share is None else share)


def calibrate(model: Gated, holdout: list[Example], scored: Scored | None = None) -> Rejection | None:
    """The model's rule with threshold and margin chosen together on the held-out set, and per language where its
    held-out rows allow; None without both in-scope and oos rows."""
    return operating_point(model, holdout, share=oos_share(), scored=scored)


def gate_compare(
    candidate: Gated,
    active: Gated,
    holdout: list[Example],
    margin: float,
    confidence_z: float = 1.64,
    candidate_scored: Scored | None = None,
) -> dict[str, Any]:
    """training.gate.compare with the out-of-scope share of the settings."""
    return compare(
        candidate,
        active,
        holdout,
        margin=margin,
        share=oos_share(),
        confidence_z=confidence_z,
        candidate_scored=candidate_scored,
    )
