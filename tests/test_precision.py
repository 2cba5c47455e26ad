"""bf16 where it runs and pays, fp32 elsewhere: the probe, its forced answers and the resolution.

Every decision path is tested on any machine by forcing the probe's answer (EMOFUSION_BF16). The
real probe is checked against what bf16 autocast actually does here, and against a CPU whose oneDNN
is capped at AVX2 (ONEDNN_MAX_CPU_ISA), which has no bf16 LSTM kernel, as on AMD Zen 2/3.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
import torch

from emofusion import precision
from emofusion.errors import ConfigError
from emofusion.precision import bf16_support, hardware_summary, resolve_precision

X86 = platform.machine().lower() in ("x86_64", "amd64")


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch):
    """Each test sees a process that has not probed or announced anything yet."""
    monkeypatch.delenv(precision.FORCE_ENV, raising=False)
    monkeypatch.setattr(precision, "_announced", set())
    probe = precision._probe  # tests may replace it; the cache to clear is the real one's
    probe.cache_clear()
    yield
    probe.cache_clear()


def test_auto_falls_back_to_fp32_with_one_info_line_where_bf16_does_not_run(monkeypatch, capsys):
    monkeypatch.setenv(precision.FORCE_ENV, "unsupported")
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", "cpu") == "fp32"
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # once per process, not per run
    assert "training in fp32" in err and "forced by EMOFUSION_BF16=unsupported" in err


def test_auto_takes_fp32_where_bf16_runs_but_is_emulated(monkeypatch, capsys):
    monkeypatch.setenv(precision.FORCE_ENV, "emulated")
    assert resolve_precision("auto", "cpu") == "fp32"
    assert "training in fp32" in capsys.readouterr().err
    assert resolve_precision("bf16", "cpu") == "bf16"  # asked for explicitly, it runs: allowed


def test_auto_takes_bf16_where_it_is_native_and_says_nothing(monkeypatch, capsys):
    monkeypatch.setenv(precision.FORCE_ENV, "native")
    assert resolve_precision("auto", "cpu") == "bf16"
    assert capsys.readouterr().err == ""


def test_explicit_bf16_where_it_does_not_run_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(precision.FORCE_ENV, "unsupported")
    with pytest.raises(ConfigError, match=r"precision bf16 is not available on this CPU \(.*\).*auto.*fp32"):
        resolve_precision("bf16", "cpu")


def test_fp32_never_probes(monkeypatch):
    monkeypatch.setattr(precision, "_probe", lambda *a: pytest.fail("fp32 needs no probe"))
    assert resolve_precision("fp32", "cpu") == "fp32"


def test_unknown_precision_or_forced_answer_is_an_error(monkeypatch):
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", "cpu")
    monkeypatch.setenv(precision.FORCE_ENV, "maybe")
    with pytest.raises(ConfigError, match="EMOFUSION_BF16='maybe'"):
        bf16_support("cpu")


def test_real_probe_agrees_with_what_bf16_autocast_does_here():
    support = bf16_support("cpu")
    lstm = torch.nn.LSTM(4, 4, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = lstm(torch.ones(1, 3, 4))
        runs = bool(torch.isfinite(out).all())
    except RuntimeError:
        runs = False
    assert support.runs == runs
    assert support.level == ("native" if runs and precision._cpu_has_native_bf16() else "emulated" if runs else "unsupported")


def test_probe_leaves_the_global_random_state_alone():
    # Training seeds torch before building its model; a probe drawing random numbers in between
    # would make the weights depend on whether this process had probed before.
    before = torch.get_rng_state()
    precision._probe("cpu", None)
    assert torch.equal(before, torch.get_rng_state())


def test_probe_is_run_once_per_process_and_device(monkeypatch):
    calls = []
    real = precision._autocast_failure
    monkeypatch.setattr(precision, "_autocast_failure", lambda device: calls.append(device) or real(device))
    bf16_support("cpu"), bf16_support("cpu"), resolve_precision("auto", "cpu")
    assert len(calls) == 1


@pytest.mark.skipif(not X86, reason="ONEDNN_MAX_CPU_ISA=AVX2 emulates an AVX2-only x86 CPU")
def test_probe_finds_no_bf16_lstm_on_an_avx2_only_cpu(tmp_path):
    # The failure users met on AMD EPYC: oneDNN has no bf16 LSTM kernel below AVX512-BF16.
    code = (
        "import json; from emofusion.precision import bf16_support, resolve_precision; "
        "s = bf16_support('cpu'); print(json.dumps([s.level, s.reason, resolve_precision('auto', 'cpu')]))"
    )
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    env.pop(precision.FORCE_ENV, None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    level, reason, chosen = json.loads(done.stdout)
    assert level == "unsupported" and "LSTM" in reason and chosen == "fp32"
    assert "training in fp32 on this CPU (AVX2)" in done.stderr


def test_a_onednn_cap_below_bf16_means_no_native_bf16(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    assert precision._cpu_has_native_bf16() is False


class FakeCuda:
    """The torch.cuda calls the probe makes, answering as a GPU of the given kind would."""

    def __init__(self, bf16: bool, capability: tuple[int, int]):
        self.bf16, self.capability = bf16, capability

    def is_bf16_supported(self, *args, **kwargs):
        return self.bf16

    def get_device_capability(self, *args):
        return self.capability

    def current_device(self):
        return 0


@pytest.mark.parametrize(
    "bf16, capability, level",
    [(False, (6, 1), "unsupported"), (True, (7, 5), "emulated"), (True, (8, 0), "native"), (True, (9, 0), "native")],
)
def test_cuda_answer_follows_bf16_support_and_compute_capability(monkeypatch, bf16, capability, level):
    fake = FakeCuda(bf16, capability)
    for name in ("is_bf16_supported", "get_device_capability", "current_device"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    monkeypatch.setattr(precision, "_autocast_failure", lambda device: None)  # no GPU here to run it on
    assert precision._probe("cuda", 0).level == level
    assert resolve_precision("auto", "cuda:0") == ("bf16" if level == "native" else "fp32")


def test_cuda_where_the_tiny_autocast_run_fails_is_unsupported(monkeypatch):
    fake = FakeCuda(True, (8, 6))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", fake.is_bf16_supported)
    monkeypatch.setattr(precision, "_autocast_failure", lambda device: "no kernel")
    support = precision._probe("cuda", 0)
    assert support.level == "unsupported" and "no kernel" in support.reason


def test_hardware_summary_names_the_cpu_capability_and_the_bf16_answer(monkeypatch):
    monkeypatch.setenv(precision.FORCE_ENV, "emulated")
    summary = hardware_summary("cpu")
    assert summary["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert summary["bf16"] == "emulated" and summary["device"] == "cpu" and summary["gpu"] is None
