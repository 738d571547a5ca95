"""Would fusing two separately trained transformers help? Fuse the encoders of saved models (same labels),
fusion weights chosen on val as AnswerModel does, closed-set accuracy on test. Prints one JSON object.

python bench/quality/fuse_saved.py --val VAL.csv --test TEST.csv minilm=RUN_A/transformer e5=RUN_B/transformer [...]
(NAME=FOLDER/COMPONENT: the component COMPONENT of the model saved in FOLDER, called NAME here)
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere
from training import AnswerModel  # noqa: E402
from training.data import read_csv  # noqa: E402
from training.trainer import encode_targets  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--val", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("parts", nargs="+", metavar="NAME=FOLDER/COMPONENT")
    args = p.parse_args()
    models: dict[str, AnswerModel] = {}
    components = {}
    for part in args.parts:
        name, _, where = part.partition("=")
        folder, _, component = where.rpartition("/")
        models.setdefault(folder, AnswerModel.load(folder))
        components[name] = models[folder].components[component]
    first = next(iter(models.values()))
    if any(m.labels != first.labels for m in models.values()):
        raise SystemExit("the saved models were trained on different labels")
    fused = AnswerModel(first.config, first.labels, components, {}, {})
    started = time.perf_counter()
    fused.recalibrate(read_csv(args.val))
    texts, targets = encode_targets(read_csv(args.test), first.labels)
    in_scope = [t for t, g in zip(texts, targets.tolist(), strict=True) if g >= 0]
    with torch.no_grad():
        hits = fused.scores(in_scope).argmax(-1) == targets[targets >= 0]
    result = {
        "parts": args.parts,
        "closed_set_accuracy": float(hits.float().mean()),
        "weights": fused.calibration.weights,
        "val_accuracy_by_component": fused.meta.get("val_accuracy_by_component"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
