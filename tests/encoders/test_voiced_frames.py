"""wtv: the voiced frames of wt2's output, chosen by each clip's own energy."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from emofusion.features.encoders import registry
from emofusion.features.encoders.registry import ENCODERS
from emofusion.features.encoders.voiced import VoicedFrames, voiced_mask


def test_mask_of_a_hand_computed_clip():
    # Four frames of 4 samples: RMS 1, 0.1, 0.01 (-20 and -40 dB below the first), and one past the end.
    samples = np.array([1, -1, 1, -1, 0.1, -0.1, 0.1, -0.1, 0.01, -0.01, 0.01, -0.01], dtype=np.float32)
    assert voiced_mask(samples, 4, 4, 30.0).tolist() == [True, True, False, False]
    assert voiced_mask(samples, 4, 4, 45.0).tolist() == [True, True, True, False]
    assert voiced_mask(samples, 4, 4, 10.0).tolist() == [True, False, False, False]  # the loudest always stays


def test_digital_silence_keeps_every_frame_and_no_frames_is_no_frames():
    assert voiced_mask(np.zeros(640, np.float32), 2, 320, 30.0).tolist() == [True, True]
    assert voiced_mask(np.zeros(0, np.float32), 0, 320, 30.0).shape == (0,)


class _Counting:
    """Frame i of the output is [i, i, ...]: which rows survive is visible."""
    dim, name = 3, "counting"

    def frames(self, samples):
        n = -(-len(samples) // 320)
        return np.repeat(np.arange(n, dtype=np.float32)[:, None], self.dim, axis=1)


def test_the_wrapper_keeps_the_rows_of_the_voiced_frames_in_order():
    x = np.zeros(320 * 5, np.float32)
    x[320:640] = 0.5   # frame 1 loud
    x[1280:1600] = 0.05  # frame 4, -20 dB
    out = VoicedFrames(_Counting(), 30.0, 320).frames(x)
    assert out[:, 0].tolist() == [1.0, 4.0]
    assert VoicedFrames(_Counting(), 10.0, 320).frames(x)[:, 0].tolist() == [1.0]


def test_the_entry_has_its_own_cache_key_and_a_picklable_loader():
    wt2, wtv = ENCODERS["wt2"], ENCODERS["wtv"]
    assert (wtv.name, wtv.layer, wtv.norm, wtv.dim) == (wt2.name, registry.WTV_LAYER, "utt", wt2.dim)
    same_layer = dataclasses.replace(wt2, layer=wtv.layer)
    assert wtv.cache_settings() != same_layer.cache_settings()  # other frames of the same layer: never one cache
    assert wtv.settings["frames"] == f"voiced-{registry.WTV_BELOW_DB}dB"
    pickle.loads(pickle.dumps(wtv.loader))  # predict --workers sends it to worker processes


def test_the_entry_gives_its_layers_frames_of_the_speech_only():
    spec = ENCODERS["wtv"]
    missing = spec.missing_packages()
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: pip install \"emofusion[{spec.extra}]\"")
    t = np.arange(32000) / 16000
    x = np.zeros(32000, np.float32)
    x[8000:24000] = (0.3 * np.sin(2 * np.pi * 300 * t[8000:24000])).astype(np.float32)  # 0.5-1.5 s of a 2-s clip
    from emofusion.features.encoders.whisper_torch import shared_torch_encoder

    voiced = registry.load_encoder(spec).frames(x)
    every = shared_torch_encoder("tiny.en").frames(x, layer=spec.layer)
    assert every.shape == (100, 384) and voiced.shape == (50, 384)
    np.testing.assert_array_equal(voiced, every[25:75])  # frames 25-74 cover 0.5-1.5 s


def test_the_entry_reads_what_its_validation_chose():
    """docs/results/encoders/voiced.md records the choice as ``CHOSEN: ... layer=... frames=voicedX``;
    the wtv entry must read exactly that (one home for the choice: the report; the entry follows it)."""
    import re
    from pathlib import Path

    report = Path(__file__).resolve().parents[2] / "docs" / "results" / "encoders" / "voiced.md"
    found = re.search(r"^CHOSEN:\s*(.*)$", report.read_text(encoding="utf-8"), re.M)
    fields = dict(re.findall(r"(\w+)=(\S+)", found.group(1)))
    spec = ENCODERS["wtv"]
    assert (spec.name, spec.layer, spec.norm) == (fields["encoder"], int(fields["layer"]), fields["norm"])
    assert fields["frames"] == f"voiced{registry.WTV_BELOW_DB}" and spec.settings["frames"] == f"voiced-{registry.WTV_BELOW_DB}dB"
