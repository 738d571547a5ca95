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
        self.bag = nn.EmbeddingBag(len(vocab) + 1, dim, mode="mean", padding_idx=len(vocab), sparse=True)
        nn.init.normal_(self.bag.weight, std=0.1)
        self.dim = dim

    @classmethod
    def from_texts(cls, texts: list[str], dim: int, n_buckets: int) -> "NgramEncoder":
        seen = {b for t in texts for b in hashed_ngrams(t, n_buckets)}
        return cls(torch.tensor(sorted(seen), dtype=torch.long), dim, n_buckets)

    def featurize(self, texts: list[str]) -> list[torch.Tensor]:
        """Per text, the embedding rows of its n-grams (unknown n-grams -> the padding row)."""
        hashed = [hashed_ngrams(text, self.n_buckets) for text in texts]
        ids = torch.tensor([b for h in hashed for b in h], dtype=torch.long)
        pos = torch.searchsorted(self.vocab, ids).clamp(max=max(len(self.vocab) - 1, 0))
        known = self.vocab[pos] == ids if len(self.vocab) else torch.zeros_like(ids, dtype=torch.bool)
        rows = torch.where(known, pos, torch.full_like(pos, len(self.vocab)))
        return list(rows.split([len(h) for h in hashed]))

    @staticmethod
    def collate(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = torch.tensor([0] + [len(x) for x in items[:-1]], dtype=torch.long).cumsum(0)
        return torch.cat(items), offsets

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.bag(*batch)  # (n, dim); zeros when no known n-gram

    def encode(self, texts: list[str]) -> torch.Tensor:
        return self(self.collate(self.featurize(texts)))


class NgramClassifier(nn.Module):
    """Linear head over the n-gram encoder.

    `ngram_dropout` is data augmentation: while training, each question loses that share of its n-grams
    (a fresh draw every batch), so the model also sees it with words and characters missing, as customers
    write it.
    """

    def __init__(self, encoder: NgramEncoder, n_labels: int, dropout: float, ngram_dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.dim, n_labels)
        self.ngram_dropout = ngram_dropout

    def featurize(self, texts: list[str]) -> list[torch.Tensor]:
        return self.encoder.featurize(texts)

    def collate(self, items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and self.ngram_dropout > 0:
            kept = [x[torch.rand(len(x)) >= self.ngram_dropout] for x in items]
            items = [k if len(k) else x for k, x in zip(kept, items, strict=True)]  # never an empty question
        return self.encoder.collate(items)

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.head(self.dropout(self.encoder(batch)))  # (n, n_labels) logits

    def logits(self, texts: list[str]) -> torch.Tensor:
        return self(self.collate(self.featurize(texts)))

    def embed(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.encoder.encode(texts), dim=-1)
