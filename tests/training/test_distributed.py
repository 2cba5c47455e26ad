"""Data-parallel training with torchrun: 2 CPU processes (gloo) on the tiny corpus.

One model across the processes, the single-process result up to summation order, a resumed run
equal to an uninterrupted one, and the CLI under torchrun writing one run folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tiny_corpus import LABELS

import ddp_worker

if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
    pytest.skip("torch.distributed with gloo is not available in this torch build", allow_module_level=True)

pytestmark = pytest.mark.slow
WORKER = Path(ddp_worker.__file__)
REPO = Path(__file__).resolve().parents[2]
# Generous: two processes of torch on a loaded 2-core machine.
TIMEOUT_S = 900


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, cwd=REPO)


def worker(tiny, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return torchrun(str(WORKER), str(tiny["manifest"]), str(tiny["vectors"]), str(tiny["root"] / "cache"), str(out), *extra)


@pytest.fixture(scope="module")
def ddp_run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    result = worker(tiny, out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_two_processes_train_one_model(ddp_run):
    ranks = [load_file(str(ddp_run / f"rank{r}.safetensors")) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    meta = json.loads((ddp_run / "run" / "model.json").read_text())
    assert meta["processes"] == 2 and len(meta["history"]) == ddp_worker.EPOCHS


def test_data_parallel_result_is_close_to_the_single_process_run(ddp_run, tiny, tmp_path):
    single = ddp_worker.run(tiny["manifest"], tiny["vectors"], tiny["root"] / "cache", tmp_path)
    ddp = load_file(str(ddp_run / "rank0.safetensors"))
    single_state = single.model.state_dict()
    # Same seeded start, same global batches, the same gradient up to the order of float sums
    # (no dropout): the weights agree to far less than training moved them.
    for key, value in ddp.items():
        assert torch.allclose(value, single_state[key], atol=2e-3), key
    history = json.loads((ddp_run / "run" / "model.json").read_text())["history"]
    assert [h["loss"] for h in history] == pytest.approx([h["loss"] for h in single.meta["history"]], abs=1e-3)
    assert history[-1]["loss"] < history[0]["loss"]  # it learned


def test_an_interrupted_data_parallel_run_resumes_to_the_same_model(ddp_run, tiny, tmp_path):
    stopped = worker(tiny, tmp_path, "--stop-after", "2")
    assert stopped.returncode != 0
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and not (tmp_path / "run" / "model.json").exists()
    resumed = worker(tiny, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again, uninterrupted = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(ddp_run / "rank0.safetensors"))
    for key in uninterrupted:
        assert torch.equal(again[key], uninterrupted[key]), key
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert [h["epoch"] for h in meta["history"]] == list(range(1, ddp_worker.EPOCHS + 1))


def test_the_cli_under_torchrun_writes_one_run_folder(tiny, tmp_path):
    out = tmp_path / "t-lstm"
    result = torchrun("-m", "emofusion", "train", "--model", "T-LSTM", "--manifest", str(tiny["manifest"]),
                      "--out", str(out), "--protocol", "paper", "--epochs", "2", "--batch-size", "8",
                      "--vectors", str(tiny["vectors"]), "--fp32", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("T-LSTM test session") == 1  # rank 0 alone reports
    meta = json.loads((out / "model.json").read_text())
    assert meta["processes"] == 2 and meta["labels"] == list(LABELS)
    assert json.loads((out / "metrics.json").read_text())["test_session"] == "3"
    assert not (out / "checkpoint.pt").exists()


def test_a_batch_that_does_not_split_evenly_is_refused(tiny, tmp_path):
    result = torchrun("-m", "emofusion", "train", "--model", "T-LSTM", "--manifest", str(tiny["manifest"]),
                      "--out", str(tmp_path / "odd"), "--protocol", "all", "--epochs", "1", "--batch-size", "7",
                      "--vectors", str(tiny["vectors"]), "--quiet")
    assert result.returncode != 0
    assert "batch size 7 is not divisible by 2 processes" in result.stderr
