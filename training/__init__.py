"""Pure-PyTorch answer model: train on (text, label) pairs, predict, calibrate, save and load.

`AnswerModel` (and PyTorch with it) is imported on first use, so that `training.text` and `training.config` serve
processes that never run a model.
"""

from typing import TYPE_CHECKING

from .config import ModelConfig

if TYPE_CHECKING:
    from .model import AnswerModel

__all__ = ["AnswerModel", "ModelConfig"]


def __getattr__(name: str) -> object:
    if name == "AnswerModel":
        from .model import AnswerModel

        return AnswerModel
    raise AttributeError(f"module 'training' has no attribute {name!r}")
