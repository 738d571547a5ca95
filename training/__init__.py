"""Pure-PyTorch answer model: train on (text, label) pairs, predict, calibrate, save and load."""

from .config import ModelConfig
from .model import AnswerModel

__all__ = ["AnswerModel", "ModelConfig"]
