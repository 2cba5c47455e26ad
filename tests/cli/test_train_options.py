"""`emofusion train` options: precision (issue 7.1), checked arguments and --overwrite (issue 8.9)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from emofusion.cli.main import build_parser, main

FORCE_ENV = "EMOFUSION_BF16"  # the probe's forced answer must not leak into these runs
X86 = platform.machine().lower() in ("x86_64", "amd64")


def _common(tiny):
    return ["--manifest", str(tiny["manifest"]), "--vectors", str(tiny["vectors"]),
            "--cache", str(tiny["root"] / "cli-cache"), "--quiet", "--max-frames", "40"]


@pytest.mark.parametrize(
    "option, value, message",
    [("--epochs", "0", "must be a positive integer, got 0"), ("--epochs", "-2", "must be a positive integer"),
     ("--batch-size", "0", "must be a positive integer, got 0"), ("--epochs", "two", "must be a positive integer"),
     ("--max-frames", "100000000", "must be at most 24,000"), ("--precision", "fp16", "invalid choice")],
)
def test_bad_training_arguments_stop_the_command_before_any_work(tmp_path, capsys, option, value, message):
    # --epochs 0 used to exit 0 with nothing trained, --batch-size 0 to end in ZeroDivisionError and
    # --max-frames 100000000 to try 5.5 TiB.
    args = ["train", "--model", "S-CNN", "--manifest", str(tmp_path / "none.csv"), "--out", str(tmp_path / "r"), option, value]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert option in err and message in err
    assert not (tmp_path / "r").exists()


def test_fp32_is_an_alias_of_precision_fp32_and_auto_is_the_default():
    parser = build_parser()
    base = ["train", "--model", "S-CNN", "--manifest", "m.csv", "--out", "r"]
    assert parser.parse_args(base).precision == "auto"
    assert parser.parse_args([*base, "--fp32"]).precision == "fp32"
    assert parser.parse_args([*base, "--precision", "bf16"]).precision == "bf16"
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--fp32", "--precision", "bf16"])


def test_train_augment_trains_with_the_named_augmentation_and_records_it(tiny, tmp_path, capsys):
    parser = build_parser()
    base = ["train", "--model", "S-CNN", "--manifest", "m.csv", "--out", "r"]
    assert parser.parse_args(base).augment is None  # off unless asked for
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--augment", "loud"])
    assert "invalid choice: 'loud'" in capsys.readouterr().err
    run = tmp_path / "aug"
    assert main(["train", "--model", "S-DNN", "--out", str(run), "--fp32", "--epochs", "1", "--augment", "light",
                 *_common(tiny)]) == 0
    meta = json.loads((run / "model.json").read_text())
    assert meta["train_config"]["augment"] == "light" and meta["augmentation"]["name"] == "light"


def test_retraining_into_a_folder_with_another_configuration_needs_overwrite(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--model", "S-DNN", "--out", str(run), "--fp32", *_common(tiny)]
    assert main([*args, "--epochs", "1"]) == 0
    first = (run / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main([*args, "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "different configuration (train_config.epochs 1 -> 2)" in err and "--overwrite" in err
    assert (run / "model.safetensors").read_bytes() == first
    assert main([*args, "--epochs", "2", "--overwrite"]) == 0
    assert len(json.loads((run / "model.json").read_text())["history"]) == 2


def _run_on_avx2_cpu(args, tmp_path):
    """`python -m emofusion` with oneDNN and ATen capped at AVX2: an AMD Zen 2/3 as oneDNN sees it."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    env.pop(FORCE_ENV, None)
    return subprocess.run([sys.executable, "-m", "emofusion.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)


@pytest.mark.skipif(not X86, reason="ONEDNN_MAX_CPU_ISA=AVX2 emulates an AVX2-only x86 CPU")
def test_default_train_works_on_an_avx2_only_cpu_and_records_fp32(tiny, tmp_path):
    # Issue 7: the first `emofusion train` died in the LSTM with "could not create a primitive descriptor".
    run = tmp_path / "run"
    done = _run_on_avx2_cpu(["train", "--model", "S-CL", "--out", str(run), "--epochs", "1", *_common(tiny)], tmp_path)
    assert done.returncode == 0, done.stderr
    meta = json.loads((run / "model.json").read_text())
    assert meta["precision"] == "fp32" and meta["train_config"]["precision"] == "auto"
    assert meta["hardware"]["cpu_capability"] == "AVX2" and meta["hardware"]["bf16"] == "unsupported"
    assert done.stderr.count("training in fp32 on this CPU (AVX2)") == 1


@pytest.mark.skipif(not X86, reason="ONEDNN_MAX_CPU_ISA=AVX2 emulates an AVX2-only x86 CPU")
def test_explicit_bf16_on_an_avx2_only_cpu_is_one_clear_error(tiny, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--model", "S-CL", "--out", str(run), "--epochs", "1", "--precision", "bf16", *_common(tiny)]
    done = _run_on_avx2_cpu(args, tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "error: precision bf16 is not available on this CPU (AVX2)" in done.stderr
    assert not (run / "model.json").exists()
