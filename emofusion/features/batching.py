"""Encoded utterances and the batches a model consumes, for training and prediction alike.

Batches are padded to their own longest member, never to the corpus maximum (500 tokens in the
paper): the models mask or pack, so the result is the same and the work is a fraction. With
``bucket_by_length`` utterances of similar length share a batch, which shrinks padding further.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from emofusion.features.pipeline import SpeechInputs

# Bucketing sorts within windows of this many batches, then shuffles batch order: batches stay
# random across epochs while each holds utterances of similar length.
BUCKET_WINDOW_BATCHES = 50


@dataclass
class EncodedSet:
    """Model-ready arrays for a list of utterances (either modality may be absent)."""

    labels: np.ndarray  # (n,) int64 class indices (-1 when unknown, e.g. at prediction time)
    speech: SpeechInputs | None = None
    tokens: list[np.ndarray] | None = None
    text_vectors: np.ndarray | None = None  # (n, D) sentence vectors, for models that read them

    def __len__(self) -> int:
        return len(self.labels)

    def sort_lengths(self) -> np.ndarray:
        if self.tokens is not None:
            return np.array([len(t) for t in self.tokens])
        if self.speech is not None:
            return self.speech.lengths
        return np.ones(len(self), dtype=np.int64)  # sentence vectors only: all the same size


def batch_indices(
    data: EncodedSet, batch_size: int, *, shuffle: bool, bucket: bool, generator: torch.Generator | None
) -> list[np.ndarray]:
    """Index arrays of each batch, in the order to visit them."""
    n = len(data)
    if shuffle:
        order = torch.randperm(n, generator=generator).numpy()
    else:
        order = np.arange(n)
    if bucket:
        lengths = data.sort_lengths()
        window = batch_size * BUCKET_WINDOW_BATCHES
        order = np.concatenate(
            [chunk[np.argsort(lengths[chunk], kind="stable")] for chunk in np.array_split(order, max(1, -(-n // window)))]
        )
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if shuffle and bucket:
        perm = torch.randperm(len(batches), generator=generator).numpy()
        batches = [batches[i] for i in perm]
    return batches


def collate(data: EncodedSet, index: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    """Model keyword arguments for the utterances at ``index``, padded to the batch's longest."""
    batch: dict[str, torch.Tensor] = {}
    if data.speech is not None:
        lengths = data.speech.lengths[index]
        frames = data.speech.frames[index, : int(lengths.max())]
        batch["speech"] = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
        batch["speech_lengths"] = torch.from_numpy(lengths).to(device)
    if data.tokens is not None:
        seqs = [data.tokens[i] for i in index]
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        padded = np.zeros((len(seqs), int(lengths.max())), dtype=np.int64)
        for row, s in enumerate(seqs):
            padded[row, : len(s)] = s
        batch["tokens"] = torch.from_numpy(padded).to(device)
        batch["text_lengths"] = torch.from_numpy(lengths).to(device)
    if data.text_vectors is not None:
        batch["text_vectors"] = torch.from_numpy(np.ascontiguousarray(data.text_vectors[index])).to(device)
    return batch


def iterate_batches(
    data: EncodedSet,
    batch_size: int,
    *,
    device: torch.device,
    shuffle: bool = False,
    bucket: bool = True,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor, np.ndarray]]:
    """Yield (model kwargs, label tensor, indices) per batch."""
    for index in batch_indices(data, batch_size, shuffle=shuffle, bucket=bucket, generator=generator):
        labels = torch.from_numpy(data.labels[index]).to(device)
        yield collate(data, index, device), labels, index


# A second forward pass costs about as much fixed work (graph dispatch, the text network, masks)
# as this many frame-steps of padding saved: measured on the shipped M-CBLA-BLR, 1 thread, 3-s
# utterances (one 100-frame and one 19-frame window each), splitting a pass into its long and
# short windows cost 13% more for 2 utterances (162 steps saved), saved 6% for 4 (324) and 25% for
# 8 (648) in PyTorch; 1%, 17% and 29% with the onnxruntime int8 graph.
MIN_SAVED_FRAME_STEPS = 300


def length_groups(lengths, min_saved: int = MIN_SAVED_FRAME_STEPS) -> list[np.ndarray]:
    """Indices of ``lengths`` in one group, or in two (the longer and the shorter sequences) when
    that pads at least ``min_saved`` fewer steps: a recurrent pass costs per padded step, so a batch
    of full 2.5-s windows and the short tail windows of the same recordings runs faster as two."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    ranked = lengths[order]
    n = len(ranked)
    if n < 2:
        return [np.arange(n)]
    # Split after position k (1..n-1): the first k rows pad to ranked[0], the rest to ranked[k].
    k = np.arange(1, n)
    padded = k * ranked[0] + (n - k) * ranked[k]
    best = int(np.argmin(padded))
    if n * ranked[0] - padded[best] < min_saved:
        return [np.arange(n)]
    return [np.sort(order[: best + 1]), np.sort(order[best + 1 :])]
