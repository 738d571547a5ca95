"""Serving speed of a saved or freshly trained model: p50/p95 for batch 1, msgs/s for batch 64.

python bench/quality/latency.py --train ../shared/datasets/clinc150/train.csv --encoder ngram [--model FOLDER] [--quantize]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere
from training import AnswerModel, ModelConfig  # noqa: E402
from training.data import read_csv  # noqa: E402


def measure(model: AnswerModel, texts: list[str], rounds: int = 300) -> dict[str, float]:
    model.predict(texts[:64])  # warm-up
    single = []
    for text in (texts * (rounds // len(texts) + 1))[:rounds]:
        start = time.perf_counter()
        model.predict([text])
        single.append((time.perf_counter() - start) * 1000)
    batches = [texts[i : i + 64] for i in range(0, min(len(texts), 64 * 20), 64)]
    start = time.perf_counter()
    for batch in batches:
        model.predict(batch)
    rate = sum(map(len, batches)) / (time.perf_counter() - start)
    cuts = statistics.quantiles(single, n=100)
    return {
        "batch1_p50_ms": statistics.median(single),
        "batch1_p95_ms": cuts[94],
        "batch1_p99_ms": cuts[98],
        "batch64_msgs_per_s": rate,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train", required=True)
    p.add_argument("--encoder", default="ngram")
    p.add_argument("--model", help="saved model folder (skips training)")
    p.add_argument("--quantize", action="store_true")
    p.add_argument("--component", action="append", help="with --model: time only this encoder (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    examples = read_csv(args.train)
    model = AnswerModel.load(args.model) if args.model else AnswerModel.fit(examples, ModelConfig(encoder=args.encoder))
    if args.component:
        model.keep(args.component)
    if args.quantize and not model.quantized:
        model.quantize()
    result = {
        "encoder": model.config.encoder,
        "components": list(model.components),
        "quantized": model.quantized,
        "threads": args.threads,
    }
    print(json.dumps({**result, **measure(model, [t for t, _ in examples][:2000])}))


if __name__ == "__main__":
    main()
