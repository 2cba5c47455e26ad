"""`emofusion features`: summary table, every frame saved, options passed through, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emofusion.cli.main import main
from emofusion.features.acoustic import FEATURE_NAMES, AcousticConfig, extract_file

RATE = 16000


@pytest.fixture
def speechlike(tmp_path):
    """3 s of a gliding tone in noise at 16 kHz: 119 frames at 50/25 ms, more than the models' 100."""
    rng = np.random.default_rng(3)
    t = np.arange(3 * RATE) / RATE
    signal = 0.4 * np.sin(2 * np.pi * (150 * t + 40 * t**2)) + 0.05 * rng.standard_normal(len(t))
    path = tmp_path / "speechlike.wav"
    sf.write(path, signal, RATE, subtype="PCM_16")
    return path


def test_prints_shape_and_summary_and_saves_every_frame(speechlike, tmp_path, capsys):
    out = tmp_path / "frames.npy"
    assert main(["features", str(speechlike), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    expected = extract_file(speechlike)
    assert expected.shape == (119, 34)
    assert "(119, 34)" in printed
    saved = np.load(out)
    assert saved.shape == (119, 34)  # not cut to 100
    np.testing.assert_array_equal(saved, expected)
    rows = {line.split()[0]: line.split()[1:] for line in printed.splitlines() if line.split()}
    for i, name in enumerate(FEATURE_NAMES):
        column = expected[:, i]
        stats = [float(v) for v in rows[name]]
        np.testing.assert_allclose(stats, [column.mean(), column.std(), column.min(), column.max()],
                                   rtol=1e-4, atol=1e-12)


def test_window_step_and_mode_options(speechlike, tmp_path, capsys):
    out = tmp_path / "frames"  # np.save appends .npy; the message names the real file
    code = main(["features", str(speechlike), "--window-ms", "30", "--step-ms", "10", "--mode", "corrected",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    config = AcousticConfig(window_s=0.030, step_s=0.010, mode="corrected")
    expected = extract_file(speechlike, config)
    assert expected.shape == ((3 * RATE - 480) // 160 + 1, 34) == (298, 34)
    assert "(298, 34)" in printed and f"to {out}.npy" in printed
    np.testing.assert_array_equal(np.load(f"{out}.npy"), expected)


def test_corrupt_file_is_exit_code_2_with_a_message(tmp_path, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    assert main(["features", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emofusion features: error:") and "broken.wav: cannot decode audio" in err


def test_too_short_audio_is_exit_code_2(tmp_path, capsys):
    short = tmp_path / "short.wav"
    sf.write(short, 0.5 * np.sin(np.arange(480) / 3), RATE)  # 30 ms
    assert main(["features", str(short)]) == 2
    assert "30.0 ms long, shorter than the 0.1 s minimum" in capsys.readouterr().err
    # Past the minimum but shorter than a window the user asked for.
    sf.write(short, 0.5 * np.sin(np.arange(2400) / 3), RATE)  # 150 ms
    assert main(["features", str(short), "--window-ms", "200", "--step-ms", "100"]) == 2
    assert "shorter than one 200 ms window" in capsys.readouterr().err


def test_unusable_window_is_exit_code_2(speechlike, capsys):
    assert main(["features", str(speechlike), "--window-ms", "5"]) == 2
    assert "too short for pyAudioAnalysis's chroma" in capsys.readouterr().err


def test_unwritable_output_is_exit_code_2(speechlike, tmp_path, capsys):
    assert main(["features", str(speechlike), "--out", str(tmp_path / "missing" / "f.npy")]) == 2
    assert "cannot write" in capsys.readouterr().err
