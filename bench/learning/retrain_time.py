"""Wall time of one retraining (data, training, calibration, gate, artifact), as `retrain --inline` runs it.

    python bench/learning/retrain_time.py [--json]

Two knowledge bases: the bilingual demo (128 pairs) and CLINC150-sized (150 pairs, 15,000 questions, 100
out-of-scope examples). Each is trained twice: the first model (no gate), then a candidate gated against it.
"""

import argparse
import json
import os
import platform
import time

from common import clinc_by_intent, django_start, knowledge_base_load


def timed_run() -> dict:
    from chatbot.registry.models import TrainingRun
    from chatbot.registry.pipeline import training_run_execute

    started, cpu = time.monotonic(), time.process_time()
    run = training_run_execute(TrainingRun.objects.create(trigger=TrainingRun.Trigger.COMMAND))
    return {
        "status": run.status,
        "wall_seconds": round(time.monotonic() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "load_average": os.getloadavg(),
        "train_seconds": run.metrics.get("train_seconds"),
        "counts": run.counts,
        "error": run.error[:200],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    django_start()
    import torch
    from django.core.management import call_command

    from chatbot.knowledge.models import OutOfScopeExample, QAPair

    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
    }
    call_command("load_demo", no_train=True, verbosity=0)
    results["demo"] = [timed_run(), timed_run()]
    QAPair.objects.all().delete()
    OutOfScopeExample.objects.all().delete()
    by_intent, oos = clinc_by_intent()
    knowledge_base_load(by_intent, oos, per_intent=100)
    results["clinc150"] = [timed_run(), timed_run()]
    print(json.dumps(results) if args.json else json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
