"""benchmarks/bench_training.py runs on every CPU and says which precision each figure measured."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from emofusion.precision import FORCE_ENV, bf16_support

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_training.py"
SMALL = ["--n-train", "40", "--baseline-batches", "1", "--skip-table", "--threads", "1"]


def _bench(env_changes: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_changes}
    if FORCE_ENV not in env_changes:
        env.pop(FORCE_ENV, None)
    return subprocess.run([sys.executable, str(BENCH), *SMALL], env=env, capture_output=True, text=True, timeout=900)


def _check_fp32_lines(out: str) -> None:
    assert "padded to 500 tokens, random batches, fp32" in out
    assert "batch-longest, length buckets, fp32" in out
    assert "speed-up, fp32 vs fp32" in out


def test_where_bf16_does_not_run_it_compares_fp32_with_fp32_and_says_so():
    done = _bench({FORCE_ENV: "unsupported"})
    assert done.returncode == 0, done.stderr
    _check_fp32_lines(done.stdout)
    assert "length buckets, bf16" not in done.stdout
    assert "bf16: not measured, it does not run here (forced by EMOFUSION_BF16=unsupported)" in done.stdout
    assert "trains in fp32 here" in done.stdout


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="emulates an x86 AVX2 CPU")
def test_it_runs_on_an_avx2_only_cpu():
    done = _bench({"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"})
    assert done.returncode == 0, done.stderr
    _check_fp32_lines(done.stdout)
    assert "CPU capability AVX2; bf16 unsupported" in done.stdout and "bf16: not measured" in done.stdout


@pytest.mark.skipif(not bf16_support("cpu").runs, reason="bf16 autocast does not run on this CPU")
def test_where_bf16_runs_it_also_measures_bf16_against_fp32():
    done = _bench({FORCE_ENV: "native"})
    assert done.returncode == 0, done.stderr
    _check_fp32_lines(done.stdout)
    assert "batch-longest, length buckets, bf16" in done.stdout
    assert "bf16 autocast vs fp32, ours:" in done.stdout and "trains in bf16 here" in done.stdout
