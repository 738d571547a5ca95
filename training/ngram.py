"""Hashed character n-gram encoder (fastText-like), trained from scratch."""

import torch
import torch.nn.functional as F
from torch import nn

from .text import hashed_ngrams


class NgramEncoder(nn.Module):
    """Mean of n-gram embeddings. Only hash buckets seen in training get a row (`vocab`)."""

    def __init__(self, vocab: torch.Tensor, dim: int, n_buckets: int) -> None:
        super().__init__()
        self.n_buckets = n_buckets
        self.register_buffer("vocab", vocab)  # (V,) sorted bucket ids
        self.bag = nn.EmbeddingBag(len(vocab) + 1, dim, mode="mean", padding_idx=len(vocab))
        nn.init.normal_(self.bag.weight, std=0.1)
        self.dim = dim

    @classmethod
    def from_texts(cls, texts: list[str], dim: int, n_buckets: int) -> "NgramEncoder":
        seen = {b for t in texts for b in hashed_ngrams(t, n_buckets)}
        return cls(torch.tensor(sorted(seen), dtype=torch.long), dim, n_buckets)

    def features(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, offsets = [], []
        for text in texts:
            offsets.append(len(ids))
            ids += hashed_ngrams(text, self.n_buckets)
        ids_t = torch.tensor(ids, dtype=torch.long)
        pos = torch.searchsorted(self.vocab, ids_t).clamp(max=len(self.vocab) - 1)
        known = self.vocab[pos] == ids_t
        rows = torch.where(known, pos, torch.full_like(pos, len(self.vocab)))  # unknown -> padding
        return rows, torch.tensor(offsets, dtype=torch.long)

    def forward(self, texts: list[str]) -> torch.Tensor:
        rows, offsets = self.features(texts)
        return self.bag(rows, offsets)  # (n, dim); zeros when no known n-gram


class NgramClassifier(nn.Module):
    def __init__(self, encoder: NgramEncoder, n_labels: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.dim, n_labels)

    def forward(self, texts: list[str]) -> torch.Tensor:
        return self.head(self.dropout(self.encoder(texts)))  # (n, n_labels) logits

    def embed(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.encoder(texts), dim=-1)
