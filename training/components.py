"""Build, train and rebuild the encoders an AnswerModel fuses ("components")."""

import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import e5
from .config import ModelConfig
from .data import Example
from .device import train_device
from .ngram import NgramClassifier, NgramEncoder
from .trainer import EpochCallback, encode_targets, train_classifier
from .transformer import (
    FeatureClassifier,
    default_transformer_path,
    e5_available,
    e5_featurizer,
    finetune,
    finetune_classifier,
    load_backbone,
    load_saved_backbone,
    st_featurizer,
    transformer_folder,
)

E5_DIM = 384


def transformer_available(config: ModelConfig) -> bool:
    if config.transformer_path == e5.NAME:
        return e5_available()
    if config.transformer_path:
        return Path(config.transformer_path).exists()
    try:
        return Path(default_transformer_path()).exists()
    except ImportError:
        return False


def component_names(config: ModelConfig) -> list[str]:
    """ngram -> [ngram]; transformer -> [transformer]; fusion -> ngram + the pretrained encoders installed."""
    if config.encoder == "ngram":
        return ["ngram"]
    if config.encoder == "transformer":
        return ["transformer"]
    extra = ["transformer"] if transformer_available(config) else []
    return ["ngram", *extra, *(["e5"] if config.use_e5 and e5_available() else [])]


def train_component(
    name: str,
    config: ModelConfig,
    labels: list[str],
    train: list[Example],
    val: list[Example],
    on_epoch: EpochCallback | None,
    backbones: dict[str, Any],
    epochs: int | None = None,
) -> tuple[nn.Module, int]:
    """Train one component (val may be empty: then exactly `epochs` epochs). Returns it and its best epoch."""
    torch.manual_seed(config.seed)
    texts, targets = encode_targets(train, labels)
    if name == "ngram":
        module: nn.Module = NgramClassifier(
            NgramEncoder.from_texts(texts, config.ngram_dim, config.n_buckets),
            len(labels),
            config.dropout,
            config.ngram_dropout,
        )
        run_config = config
    else:
        classify = name == "transformer" and config.finetune_epochs > 0 and config.finetune_objective == "classify"
        if name == "transformer" and name not in backbones:
            device = train_device(config.train_device or None) if config.finetune_epochs else "cpu"
            backbones[name] = load_backbone(transformer_folder(config.transformer_path), config.max_seq_length, device)
            if classify:
                module = feature_component(name, config, len(labels), backbones)
                best = finetune_classifier(
                    backbones[name], module, (texts, targets), encode_targets(val, labels), config, on_epoch
                )
                backbones[f"{name}.head"] = (copy.deepcopy(module.head.state_dict()), best)
            elif config.finetune_epochs:
                finetune(backbones[name], texts, targets.tolist(), config, on_epoch)
            backbones[name].to("cpu")  # heads train, models save and serve on the CPU
        module = feature_component(name, config, len(labels), backbones)
        module.cache = backbones.setdefault(f"{name}.cache", {})
        if classify:  # the head was trained with the encoder; a refit keeps both (no second fine-tuning)
            state, best = backbones[f"{name}.head"]
            module.head.load_state_dict(state)
            return module.eval(), best
        run_config = dataclasses.replace(config, lr=config.head_lr, epochs=config.head_epochs, batch_size=64)
        torch.manual_seed(config.seed)
        module.head.reset_parameters()
    val_split = encode_targets(val, labels)
    return module, train_classifier(
        module, run_config, (texts, targets), val_split, epochs or run_config.epochs, on_epoch, name
    )


def feature_component(name: str, config: ModelConfig, n_labels: int, backbones: dict[str, Any]) -> FeatureClassifier:
    if name == "e5":
        return FeatureClassifier(e5_featurizer(torch.get_num_threads()), E5_DIM, n_labels, config.dropout)
    backbone = backbones[name]
    dim = getattr(backbone, "get_embedding_dimension", backbone.get_sentence_embedding_dimension)()
    return FeatureClassifier(st_featurizer(backbone), dim, n_labels, config.dropout)


def empty_component(
    name: str, config: ModelConfig, n_labels: int, shape: dict[str, Any], folder: Path, backbones: dict[str, Any]
) -> nn.Module:
    """The skeleton that a saved state_dict is loaded into."""
    if name == "ngram":
        vocab = torch.zeros(shape["n_features"], dtype=torch.long)
        return NgramClassifier(NgramEncoder(vocab, config.ngram_dim, config.n_buckets), n_labels, config.dropout)
    if name == "transformer":
        backbones[name] = load_saved_backbone(folder / name, config.transformer_path, config.max_seq_length)
    return feature_component(name, config, n_labels, backbones)


def component_shape(name: str, module: nn.Module) -> dict[str, Any]:
    return {"n_features": int(module.encoder.vocab.numel())} if name == "ngram" else {}
