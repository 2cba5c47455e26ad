"""Data-parallel training across processes started by torchrun (DistributedDataParallel).

    torchrun --nproc_per_node 2 -m emofusion train --model M-CBLA-BLR --manifest m.csv --out runs/x
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 4 --rdzv_backend c10d \\
             --rdzv_endpoint head:29400 -m emofusion train ...        # on each node, its own rank

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; `setup` joins the process group (gloo on
CPU, nccl on CUDA, one GPU per process). The global batch stays ``batch_size`` (64): every process
draws the same shuffled batches from the same seeded generator and takes its ``1/N`` share (a
strided slice, 64/N rows), and each process's loss is weighted by its share of the rows, so the
averaged gradient is exactly the full batch's. Rank 0 alone writes checkpoints, logs and the run folder.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist

from emofusion.errors import ConfigError

# Generous: on a loaded machine rank 0 may spend minutes extracting features while the others wait.
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Group:
    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> Group | None:
    """Join torchrun's process group (once); None when this is a single process."""
    if not launched_by_torchrun():
        return None
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend, timeout=TIMEOUT)
    return current()


def current() -> Group | None:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def is_main_process() -> bool:
    """True in a single process and on rank 0 of a group (torchrun's RANK before setup)."""
    group = current()
    return group.is_main if group else int(os.environ.get("RANK", "0")) == 0


def process_device(device: torch.device) -> torch.device:
    """Each process of a CUDA group gets its own GPU (``cuda:LOCAL_RANK``)."""
    if device.type == "cuda" and launched_by_torchrun():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def per_process_batch(batch_size: int, group: Group | None) -> int:
    if group is None:
        return batch_size
    if batch_size % group.world:
        raise ConfigError(
            f"batch size {batch_size} is not divisible by {group.world} processes: the global batch is "
            f"split evenly (choose --nproc_per_node dividing {batch_size}, or another --batch-size)"
        )
    return batch_size // group.world


def share(index: np.ndarray, group: Group | None) -> np.ndarray:
    """This process's rows of a global batch (every N-th row, from its rank)."""
    return index if group is None else index[group.rank :: group.world]


@contextlib.contextmanager
def main_first(group: Group | None) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. fills the feature cache), then the others (cache hits)."""
    if group is not None and not group.is_main:
        dist.barrier()
    yield
    if group is not None and group.is_main:
        dist.barrier()


def barrier(group: Group | None) -> None:
    if group is not None:
        dist.barrier()


def sum_over_processes(values: list[float], group: Group | None) -> list[float]:
    if group is None:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def gather(obj, group: Group | None) -> list:
    """Every process's ``obj``, by rank (for checkpointing each one's RNG state)."""
    if group is None:
        return [obj]
    out: list = [None] * group.world
    dist.all_gather_object(out, obj)
    return out
