"""The float precision training computes in: bf16 autocast where it runs and pays, fp32 elsewhere.

bf16 autocast does not run everywhere. On CPUs without native bf16 arithmetic (AVX2-only machines:
AMD Zen 2/3, most Intel before Cooper Lake) oneDNN has no bf16 LSTM kernel, and the first LSTM
forward raises "could not create a primitive descriptor for the LSTM forward propagation
primitive". Where it runs without native instructions it is emulated through fp32 conversions, so
it costs accuracy and buys no speed. `bf16_support` therefore answers two questions, once per
process and device:

* **runs**: a tiny LSTM and matmul, forward and backward, under bf16 autocast on that device
  complete and give finite values. This catches a missing kernel whatever its cause (the CPU, the
  torch/oneDNN build, an ``ONEDNN_MAX_CPU_ISA`` cap, an old GPU).
* **pays**: the device has native bf16 arithmetic: AVX512-BF16 or AMX on a CPU (and oneDNN is not
  capped below them), compute capability 8.0 (Ampere) or newer on CUDA.

"pays" is read from the hardware, never timed. The precision decides which weights a seed
produces, so the same command on the same machine must always choose the same one; a timing
probe on a shared, loaded machine (these have 2 cores for ~8 users) can flip between runs.
``benchmarks/bench_training.py`` measures the gain where bf16 runs.

The answers are ``"native"`` (runs and pays), ``"emulated"`` (runs, no native arithmetic) and
``"unsupported"`` (does not run). ``EMOFUSION_BF16=native|emulated|unsupported`` forces the answer
for every device, so both paths are testable on any machine (the test suite runs either way).
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass

import torch

from emofusion.errors import ConfigError

PRECISIONS = ("auto", "bf16", "fp32")
BF16_LEVELS = ("native", "emulated", "unsupported")
FORCE_ENV = "EMOFUSION_BF16"
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that still allow its native bf16 kernels.
_BF16_ISA_MARKERS = ("BF16", "AMX", "FP16", "AVX10", "ALL", "DEFAULT")
# CUDA compute capability from which bf16 is native tensor-core arithmetic (Ampere).
_NATIVE_CUDA_CAPABILITY = (8, 0)

_announced: set[str] = set()


@dataclass(frozen=True)
class Bf16Support:
    """What bf16 autocast does on one device: ``level`` (one of BF16_LEVELS) and why, in words."""

    level: str
    reason: str

    @property
    def runs(self) -> bool:
        return self.level != "unsupported"


def bf16_support(device: str | torch.device = "cpu") -> Bf16Support:
    """Whether bf16 autocast runs and pays on ``device`` (probed once per process and device)."""
    device = torch.device(device)
    forced = os.environ.get(FORCE_ENV, "").strip().lower()
    if forced:
        if forced not in BF16_LEVELS:
            raise ConfigError(f"{FORCE_ENV}={forced!r}: expected one of {', '.join(BF16_LEVELS)}")
        return Bf16Support(forced, f"forced by {FORCE_ENV}={forced}")
    return _probe(device.type, device.index)


def resolve_precision(requested: str, device: str | torch.device = "cpu") -> str:
    """``"bf16"`` or ``"fp32"`` for a requested precision (``auto``, ``bf16``, ``fp32``) on ``device``.

    ``auto`` takes bf16 only where it runs natively and says once per process when it falls back.

    Raises:
        ConfigError: an unknown precision, or ``bf16`` where bf16 autocast does not run.
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"unknown precision {requested!r}; expected one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return "fp32"
    device = torch.device(device)
    support = bf16_support(device)
    if requested == "bf16":
        if not support.runs:
            raise ConfigError(
                f"precision bf16 is not available on {_device_words(device)}: {support.reason}. "
                "Use precision auto (bf16 where it runs natively, fp32 elsewhere) or fp32."
            )
        return "bf16"
    if support.level == "native":
        return "bf16"
    key = f"{device.type}:{device.index}"
    if key not in _announced:
        _announced.add(key)
        print(f"emofusion: training in fp32 on {_device_words(device)}: {support.reason}", file=sys.stderr)
    return "fp32"


def hardware_summary(device: str | torch.device = "cpu") -> dict:
    """What a run folder records about the machine that computed it."""
    device = torch.device(device)
    support = bf16_support(device)
    summary = {
        "device": str(device),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16_native": _cpu_has_native_bf16(),
        "bf16": support.level,
        "bf16_reason": support.reason,
        "gpu": None,
        "gpu_compute_capability": None,
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        summary["gpu"] = torch.cuda.get_device_name(index)
        summary["gpu_compute_capability"] = f"{major}.{minor}"
    return summary


def _device_words(device: torch.device) -> str:
    if device.type == "cpu":
        return f"this CPU ({torch.backends.cpu.get_cpu_capability()})"
    return f"device {device}"


@functools.lru_cache(maxsize=None)
def _probe(device_type: str, index: int | None) -> Bf16Support:
    device = torch.device(device_type, index) if index is not None else torch.device(device_type)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return Bf16Support("unsupported", "this GPU has no bf16 support")
    failure = _autocast_failure(device)
    if failure:
        return Bf16Support("unsupported", f"bf16 autocast does not run: {failure}")
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        if capability >= _NATIVE_CUDA_CAPABILITY:
            return Bf16Support("native", f"bf16 runs natively (compute capability {capability[0]}.{capability[1]})")
        return Bf16Support("emulated", f"bf16 runs but is emulated (compute capability {capability[0]}.{capability[1]}), so it is not faster")
    if device.type == "cpu":
        if _cpu_has_native_bf16():
            return Bf16Support("native", "bf16 runs natively (AVX512-BF16/AMX)")
        return Bf16Support("emulated", "bf16 runs but is emulated (no AVX512-BF16/AMX), so it is not faster")
    return Bf16Support("emulated", f"bf16 runs, but emofusion knows no native bf16 on {device.type}")


def _autocast_failure(device: torch.device) -> str | None:
    """None if a tiny LSTM + matmul trains under bf16 autocast on ``device``, else the error's first line."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    try:
        # The probe's random weights must not move the global RNG: training seeds it for reproducibility.
        with torch.random.fork_rng(devices=devices):
            lstm = torch.nn.LSTM(8, 8, batch_first=True).to(device)
            x = torch.randn(2, 5, 8, device=device, requires_grad=True)
            weight = torch.randn(8, 4, device=device, requires_grad=True)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                hidden, _ = lstm(x)
                logits = hidden @ weight
            loss = logits.float().square().mean()
            loss.backward()
            grads = (x.grad, weight.grad, *(p.grad for p in lstm.parameters()))
            if not torch.isfinite(loss) or any(g is None or not torch.isfinite(g).all() for g in grads):
                return "non-finite results"
    except RuntimeError as exc:
        # oneDNN appends advice on how to debug it; the first sentence says what failed.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return message.split(". Run workload")[0].rstrip(".")
    return None


def _cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16 in the CPU, and oneDNN allowed to use them."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    if cap and not any(marker in cap for marker in _BF16_ISA_MARKERS):
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
