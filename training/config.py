from dataclasses import asdict, dataclass, fields
from typing import Any

ENCODERS = ("ngram", "transformer", "fusion")


@dataclass
class ModelConfig:
    encoder: str = "ngram"  # "ngram" | "transformer" | "fusion"
    seed: int = 0
    # ngram encoder
    n_buckets: int = 2**24  # hash space; only buckets seen in training get a row
    ngram_dim: int = 256
    dropout: float = 0.2
    epochs: int = 40
    batch_size: int = 32
    lr: float = 5e-3
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    patience: int = 5  # epochs without val-loss improvement before stopping
    # held-out split and calibration
    val_fraction: float = 0.2  # used only when fit() gets no val_examples
    refit: bool = True  # after a hold-out run, retrain on all examples for the best epoch count
    target_oos_precision: float = 0.85
    reject_rate: float = 0.05  # without oos examples: share of correct held-out answers we accept to reject

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
