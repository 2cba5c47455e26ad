"""Transcription: the bundled model by default, other models only from disk, never the network."""

import sys
from pathlib import Path

import numpy as np
import pytest

from emofusion.asr.transcriber import AsrConfig, Transcriber, resolve_model_folder
from emofusion.errors import ConfigError, MissingExtraError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_a_model_name_missing_from_the_local_cache_is_refused_without_downloading(asr_extra, no_network, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ConfigError, match="'small.en' is not on this machine and emofusion never downloads"):
        resolve_model_folder("small.en")


def test_unknown_names_and_missing_folders_are_refused(asr_extra):
    with pytest.raises(ConfigError, match="not a Whisper model folder nor a faster-whisper model name"):
        resolve_model_folder("no-such-whisper")
    with pytest.raises(ConfigError, match="no such Whisper model folder"):
        resolve_model_folder("./models/whisper-base")


def test_a_folder_without_its_tokenizer_is_refused_rather_than_fetched(asr_extra, tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\0")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="missing tokenizer.json"):
        resolve_model_folder(tmp_path)


def test_a_model_folder_given_by_path_is_used(asr_extra):
    from emofusion.bundled_whisper import bundled_whisper_model

    folder = bundled_whisper_model()
    assert resolve_model_folder(str(folder)) == folder
    transcriber = Transcriber.load(AsrConfig(model=str(folder)))
    assert transcriber.folder == folder and transcriber.name == str(folder)


def test_silence_and_noise_transcribe_to_nothing(asr_extra):
    transcriber = Transcriber.load()
    assert transcriber.transcribe(np.zeros(16_000)) == ""
    assert transcriber.transcribe(0.01 * np.random.default_rng(0).standard_normal(32_000)) == ""


def test_each_bundled_example_is_transcribed_to_its_sentence(asr_extra):
    from emofusion.audio import load_audio

    transcriber = Transcriber.load()
    for name in ("angry", "happy", "neutral"):
        words = transcriber.transcribe(load_audio(EXAMPLES / f"{name}.flac").samples)
        assert words.lower().rstrip(".!") == "kids are talking by the door", name


def test_without_faster_whisper_the_error_names_the_install_command(monkeypatch):
    from emofusion.asr import transcriber as module

    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import now raises ImportError
    module._load_cached.cache_clear()
    try:
        with pytest.raises(MissingExtraError, match=r'transcription needs .*pip install "emofusion\[asr\]"'):
            Transcriber.load()
    finally:
        module._load_cached.cache_clear()
