"""Which rows an epoch visits when the training data spans several corpora.

Corpora differ in size (TESS 1,600 clips, RAVDESS's benchmark 560): a plain shuffle would show the
model TESS almost three times as often as RAVDESS, and a class only one corpus has would be learned
from that corpus's voices alone. `BalancedSampler` instead gives every corpus an equal share of an
epoch and, within a corpus, every class it has an equal share:

    draws of (corpus c, class k) per epoch = N / (number of corpora) / (classes corpus c has)

where N, the epoch length, is the number of training rows, so an epoch takes as many steps as
before. Quotas are rounded down and the rows left over go to the cells with the largest fractions
(ties in (corpus, class) order), with no randomness, so every epoch has the same counts. Within a
cell the draws run through seeded permutations of its rows: a small cell's rows are each visited
``quota // size`` or one more times, a large cell's epoch visits a different subset each epoch
(without replacement within the epoch). The order is then shuffled and batched exactly as a plain
epoch (length buckets), all from the run's seeded generator, so a run is reproducible and resumes
exactly from a checkpoint.

``TrainConfig.balance`` chooses: ``auto`` (the default) balances when the rows come from two
corpora or more and shuffles plainly otherwise, so a one-corpus run trains exactly as it always
has; ``corpus_class`` always balances (one corpus: its classes only); ``none`` never does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from emofusion.errors import ConfigError
from emofusion.features.batching import BUCKET_WINDOW_BATCHES
from emofusion.training.config import BALANCE_CHOICES


@dataclass(frozen=True)
class BalancedSampler:
    """Per-epoch draws of each (corpus, class) cell; see the module docstring.

    Arguments:
        keys: (corpus, class index) of each cell, sorted.
        cells: the row indices of each cell, ascending.
        quotas: draws of each cell per epoch; they sum to the number of rows.
    """

    keys: tuple[tuple[str, int], ...]
    cells: tuple[np.ndarray, ...]
    quotas: tuple[int, ...]

    @classmethod
    def build(cls, corpora: Sequence[str], labels: Sequence[int] | np.ndarray) -> "BalancedSampler":
        """Cells and quotas for rows whose corpus and class index are ``corpora[i]``, ``labels[i]``."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(corpora) != len(labels) or len(labels) == 0:
            raise ConfigError(f"balanced sampling needs one corpus per row and some rows; got {len(corpora)} "
                              f"corpora for {len(labels)} labels")
        corpus_array = np.asarray(corpora, dtype=object)
        keys = tuple(sorted({(str(c), int(k)) for c, k in zip(corpora, labels)}))
        cells = tuple(np.flatnonzero((corpus_array == c) & (labels == k)) for c, k in keys)
        names = sorted({c for c, _ in keys})
        classes_in = {c: sum(1 for cc, _ in keys if cc == c) for c in names}
        n = len(labels)
        shares = np.array([n / len(names) / classes_in[c] for c, _ in keys])
        quotas = np.floor(shares).astype(np.int64)
        left = n - int(quotas.sum())
        # Largest fractions first; a stable sort keeps (corpus, class) order among equal fractions.
        for i in np.argsort(-(shares - quotas), kind="stable")[:left]:
            quotas[i] += 1
        return cls(keys=keys, cells=cells, quotas=tuple(int(q) for q in quotas))

    def epoch_order(self, generator: torch.Generator) -> np.ndarray:
        """Row indices of one epoch (rows of small cells repeat), shuffled, from ``generator``."""
        draws = []
        for cell, quota in zip(self.cells, self.quotas):
            rounds = -(-quota // len(cell))
            perms = [cell[torch.randperm(len(cell), generator=generator).numpy()] for _ in range(rounds)]
            draws.append(np.concatenate(perms)[:quota] if perms else cell[:0])
        order = np.concatenate(draws)
        return order[torch.randperm(len(order), generator=generator).numpy()]

    def batches(
        self, lengths: np.ndarray, batch_size: int, *, bucket: bool, generator: torch.Generator
    ) -> list[np.ndarray]:
        """One epoch's batches: `epoch_order`, then the plain epoch's length buckets and batch shuffle
        (`emofusion.features.batching.batch_indices`), so only which rows are visited changes."""
        order = self.epoch_order(generator)
        n = len(order)
        if bucket:
            window = batch_size * BUCKET_WINDOW_BATCHES
            order = np.concatenate(
                [chunk[np.argsort(lengths[chunk], kind="stable")] for chunk in np.array_split(order, max(1, -(-n // window)))]
            )
        batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
        if bucket:
            perm = torch.randperm(len(batches), generator=generator).numpy()
            batches = [batches[i] for i in perm]
        return batches

    def class_counts(self, n_classes: int) -> np.ndarray:
        """Draws of each class per epoch (the same every epoch)."""
        counts = np.zeros(n_classes, dtype=np.int64)
        for (_, k), quota in zip(self.keys, self.quotas):
            counts[k] += quota
        return counts

    def to_json(self, labels: Sequence[str]) -> dict:
        """Per corpus and class: rows held and draws per epoch (what model.json records)."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (corpus, k), cell, quota in zip(self.keys, self.cells, self.quotas):
            out.setdefault(corpus, {})[labels[k]] = {"rows": int(len(cell)), "per_epoch": int(quota)}
        return out


def balanced_sampler(balance: str, corpora: Sequence[str], labels: Sequence[int] | np.ndarray) -> BalancedSampler | None:
    """The sampler ``balance`` asks for on these rows, or None for a plain shuffle.

    Arguments:
        balance: one of `BALANCE_CHOICES` (``TrainConfig.balance``).
        corpora: each training row's corpus.
        labels: each training row's class index.
    """
    return BalancedSampler.build(corpora, labels) if balances(balance, corpora) else None


def balances(balance: str, corpora: Sequence[str]) -> bool:
    """Whether ``balance`` (`BALANCE_CHOICES`) samples in balance rows of these ``corpora``."""
    if balance not in BALANCE_CHOICES:
        raise ConfigError(f"training balance must be one of {', '.join(BALANCE_CHOICES)}, got {balance!r}")
    return balance == "corpus_class" or (balance == "auto" and len(set(corpora)) > 1)
