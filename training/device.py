"""Where training runs: a CUDA GPU when there is one (CHATBOT_TRAIN_DEVICE=auto, the default), else the CPU.

Models are always saved from, and served on, the CPU: a model trained on a GPU loads on CPU-only workers.
"""

import os
from collections.abc import Callable

DEVICES = ("auto", "cpu", "cuda")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def train_device(preference: str | None = None, cuda_available: Callable[[], bool] = _cuda_available) -> str:
    """ "cuda" or "cpu" for fine-tuning: `preference` (default: the CHATBOT_TRAIN_DEVICE environment variable,
    else "auto"); "cuda" asked for on a machine without one is an error, not a silent fall-back."""
    choice = (preference or os.environ.get("CHATBOT_TRAIN_DEVICE") or "auto").strip().lower()
    if choice not in DEVICES:
        raise ValueError(f"CHATBOT_TRAIN_DEVICE must be one of {', '.join(DEVICES)}, got {choice!r}")
    if choice == "cpu":
        return "cpu"
    available = cuda_available()
    if choice == "cuda" and not available:
        raise ValueError("CHATBOT_TRAIN_DEVICE=cuda, but PyTorch sees no CUDA device")
    return "cuda" if available else "cpu"
