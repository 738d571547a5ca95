"""Evaluate an encoder on `text,label` CSVs: python -m training.evaluate --train A.csv --test B.csv [--json]."""

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch

from . import auto
from .config import ModelConfig
from .data import OUT_OF_SCOPE, Example, holdout_split, read_csv
from .device import train_device
from .gate import operating_point
from .model import AnswerModel
from .rejection import Ranked, Rejection
from .text import language


def macro_f1(gold: list[str], pred: list[str]) -> float:
    f1s = []
    for label in sorted(set(gold)):
        tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
        n_pred, n_gold = pred.count(label), gold.count(label)
        f1s.append(2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0)
    return sum(f1s) / len(f1s)


def metrics(model: AnswerModel, test: list[Example]) -> dict[str, Any]:
    ranked = model.predict([t for t, _ in test], k=2)
    top1 = [r[0][0] for r in ranked]
    final = [
        label if model.decide(r, language(text)) else OUT_OF_SCOPE
        for label, r, (text, _) in zip(top1, ranked, test, strict=True)
    ]
    gold = [label for _, label in test]
    ins = [i for i, g in enumerate(gold) if g != OUT_OF_SCOPE]
    oos = [i for i, g in enumerate(gold) if g == OUT_OF_SCOPE]
    rejected = [i for i, f in enumerate(final) if f == OUT_OF_SCOPE]
    closed = _share(top1[i] == gold[i] for i in ins)
    out: dict[str, Any] = {
        "closed_set_accuracy": closed,
        "in_scope_accuracy": _share(final[i] == gold[i] for i in ins),
        "oos_precision": _share(gold[i] == OUT_OF_SCOPE for i in rejected) if oos else None,
        "oos_recall": _share(final[i] == OUT_OF_SCOPE for i in oos) if oos else None,
        "accuracy": _share(f == g for f, g in zip(final, gold, strict=True)) if oos else closed,
        "macro_f1": macro_f1(gold, final) if oos else macro_f1([gold[i] for i in ins], [top1[i] for i in ins]),
        "rejected_share": len(rejected) / len(test),
    }
    if len(model.components) > 1:  # each encoder alone, closed-set (what fusion adds)
        texts = [test[i][0] for i in ins]
        with torch.no_grad():
            out["closed_set_accuracy_by_component"] = {
                name: _share(
                    model.labels[j] == gold[i]
                    for j, i in zip(component.logits(texts).argmax(-1).tolist(), ins, strict=True)
                )
                for name, component in model.components.items()
            }
    if oos:
        out["tradeoff"] = tradeoff(ranked, gold, model.rejection)
    return out


def tradeoff(ranked: list[Ranked], gold: list[str], rule: Rejection) -> list[dict[str, float | None]]:
    """OOS precision / recall and in-scope accuracy on the test rows as the threshold sweeps (rule's margin)."""
    rows = []
    for threshold in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        at = rule.at(threshold, rule.margin)
        final = [r[0][0] if at.accepts_ranked(r) else OUT_OF_SCOPE for r in ranked]
        pairs = list(zip(final, gold, strict=True))
        rejected = [g for f, g in pairs if f == OUT_OF_SCOPE]
        rows.append(
            {
                "threshold": threshold,
                "oos_precision": _share(g == OUT_OF_SCOPE for g in rejected) if rejected else None,
                "oos_recall": _share(f == OUT_OF_SCOPE for f, g in pairs if g == OUT_OF_SCOPE),
                "in_scope_accuracy": _share(f == g for f, g in pairs if g != OUT_OF_SCOPE),
            }
        )
    return rows


def _share(flags: Any) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else 0.0


def latency(model: AnswerModel, texts: list[str], n: int = 200, batch: int = 64) -> dict[str, float]:
    single = []
    for text in texts[:n]:
        start = time.perf_counter()
        model.predict([text])
        single.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    timed = texts[: batch * 20]  # 20 batches
    for i in range(0, len(timed), batch):
        model.predict(timed[i : i + batch])
    throughput = len(timed) / (time.perf_counter() - start)
    return {
        "latency_ms_p50": statistics.median(single),
        "latency_ms_p95": statistics.quantiles(single, n=20)[-1] if len(single) > 1 else single[0],
        "batch64_msgs_per_s": throughput,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--val", help="calibrates rejection (and early stopping); default: hold out part of train")
    p.add_argument(
        "--encoder",
        default="auto",
        choices=["auto", "ngram", "transformer", "fusion"],
        help="auto (default): the product's automatic choice (training/auto.py); --set fields are its base",
    )
    p.add_argument("--budget", type=float, default=auto.DEFAULT_BUDGET_SECONDS, help="auto: seconds for all candidates")
    p.add_argument(
        "--oos-share", type=float, default=0.2, help="auto: out-of-scope share of traffic (CHATBOT_GATE_OOS_SHARE)"
    )
    p.add_argument("--candidate", action="append", help="auto: train only these candidates (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="any ModelConfig field")
    p.add_argument(
        "--max-answer-ms",
        type=float,
        help="auto: a candidate answering slower than this cannot win (CHATBOT_MAX_ANSWER_MS)",
    )
    p.add_argument("--quantize", action="store_true", help="int8 dynamic quantisation before testing")
    p.add_argument("--save", help="folder to save the trained model to")
    p.add_argument(
        "--model",
        help="evaluate this saved model folder instead of training (--train is then unused; --val recalibrates it)",
    )
    p.add_argument("--component", action="append", help="with --model: keep only this encoder (repeatable)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (1 is faster on a busy 2-core machine)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--progress", action="store_true", help="one JSON line per training epoch on stderr")
    return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> ModelConfig:
    overrides: dict[str, Any] = {"seed": args.seed}
    if args.encoder and args.encoder != "auto":
        overrides["encoder"] = args.encoder
    if args.epochs:
        overrides["epochs"] = args.epochs
    return ModelConfig(**{**ModelConfig().to_dict(), **overrides, **overrides_from(args.set)})


def overrides_from(items: list[str]) -> dict[str, Any]:
    """["field=JSON", ...] -> {field: value}"""
    return {key: json.loads(value) for key, _, value in (item.partition("=") for item in items)}


def automatic(
    args: argparse.Namespace, train: list[Example], val: list[Example] | None, progress: Any
) -> tuple[AnswerModel, dict[str, Any]]:
    """The product's choice: candidates scored on the held-out rows (--val, else a stratified 15 % of --train, as
    the registry holds out 15 % of the curated questions), then the chosen model put at the operating point the
    gate calibrates on those rows, out-of-scope rows weighed as --oos-share of traffic."""
    if val is None:
        train, val = holdout_split(train, 0.15, args.seed)
    base = config_from(args)
    if not any(item.startswith("oos_prior=") for item in args.set):
        base.oos_prior = args.oos_share  # as the registry trains (chatbot/registry/pipeline.py model_config)
    started, cpu = time.perf_counter(), time.process_time()
    outcome = auto.choose(
        train,
        val,
        base,
        budget_seconds=args.budget,
        share=args.oos_share,
        device=train_device(),
        names=args.candidate,
        on_epoch=progress,
        max_answer_ms=args.max_answer_ms,
    )
    assert outcome.model is not None
    model = outcome.model
    point = operating_point(model, val, share=args.oos_share, scored=outcome.scored)
    if point is not None:
        model.rejection = point
    seconds = {"seconds": round(time.perf_counter() - started, 1), "cpu_seconds": round(time.process_time() - cpu, 1)}
    return model, {
        "chosen": outcome.chosen,
        "reason": outcome.reason,
        "candidates": outcome.candidates,
        "plan": outcome.plan,
        **seconds,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train, test = read_csv(args.train), read_csv(args.test)
    val = read_csv(args.val) if args.val else None
    chosen: dict[str, Any] | None = None
    if args.model:  # a saved model; with --val (and --set), its calibration is refitted on that data
        model = AnswerModel.load(args.model)
        if args.component:
            model.keep(args.component)
        if val:
            model.config = ModelConfig.from_dict({**model.config.to_dict(), **overrides_from(args.set)})
            model.recalibrate(val)
    else:
        started = time.perf_counter()
        progress = (
            (lambda stats: print(json.dumps({**stats, "s": round(time.perf_counter() - started, 1)}), file=sys.stderr))
            if args.progress
            else None
        )
        if args.encoder == "auto":
            model, chosen = automatic(args, train, val, progress)
        else:
            model = AnswerModel.fit(train, config_from(args), val_examples=val, on_epoch=progress)
    if args.save:
        model.save(args.save)
    if args.quantize and not model.quantized:
        model.quantize()
    result = {
        **metrics(model, test),
        "train_seconds": model.info["train_seconds"],
        "train_cpu_seconds": model.info.get("train_cpu_seconds"),
    }
    result.update(latency(model, [t for t, _ in test]))
    result.update(
        {
            "encoder": model.config.encoder,
            "threshold": model.threshold,
            "margin": model.margin,
            "quantized": args.quantize,
            "n_train": len(train),
            "n_test": len(test),
            "torch_threads": torch.get_num_threads(),
            "info": model.info,
        }
    )
    if chosen is not None:
        result["auto"] = chosen
        result["train_seconds"] = chosen["seconds"]
    print(json.dumps(result) if args.json else "\n".join(f"{k:22s} {v}" for k, v in result.items()))
    return result


if __name__ == "__main__":
    main()
