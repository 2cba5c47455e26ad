"""Non-English speech for language tests, made at run time with espeak-ng (GPL-3.0 program; nothing
of it is shipped). Synthetic: for language detection and the "unsure of the words" check only,
never an emotion figure. Tests skip without it: apt-get install espeak-ng (.ci/run installs it)."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import soxr

ESPEAK_INSTALL = "apt-get install espeak-ng"
GERMAN = [
    "Ich habe dir schon hundertmal gesagt, dass wir das hier nicht so machen.",
    "Die Kinder spielen draussen im Garten, und die Sonne scheint.",
    "Warum hast du mich gestern nicht angerufen? Ich habe den ganzen Abend gewartet.",
]
FRENCH = ["Je t'ai deja dit cent fois que nous ne faisons pas comme ca ici."]


def spoken(voice: str, text: str) -> np.ndarray:
    """``text`` spoken by espeak-ng in ``voice`` ("de", "fr"...), 16 kHz mono float."""
    if shutil.which("espeak-ng") is None:
        pytest.skip(f"needs espeak-ng for non-English speech: {ESPEAK_INSTALL}")
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True, timeout=60).stdout
    samples, rate = sf.read(io.BytesIO(wav))
    return soxr.resample(samples, rate, 16_000)
