import numpy as np
import pytest
import soundfile as sf

from emofusion.errors import AudioError
from emofusion.features import cache as cache_module
from emofusion.features.acoustic import AcousticConfig, extract_file
from emofusion.features.cache import FeatureCache


@pytest.fixture
def clips(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(10):
        p = tmp_path / "audio" / f"c{i}.wav"
        p.parent.mkdir(exist_ok=True)
        sf.write(p, 0.3 * rng.normal(size=8000 + 400 * i), 16000)
        paths.append(p)
    return paths


def test_frames_equal_direct_extraction_and_are_computed_once(tmp_path, clips, monkeypatch):
    cache = FeatureCache(AcousticConfig(), root=tmp_path / "cache")
    first = cache.get_many(clips, workers=2, progress=False)
    for p in clips:
        np.testing.assert_array_equal(first[str(p)], extract_file(p).astype(np.float32))
    # Second time: no extraction at all.
    monkeypatch.setattr(cache_module, "extract_file", lambda *a, **k: pytest.fail("re-extracted"))
    again = FeatureCache(AcousticConfig(), root=tmp_path / "cache").get_many(clips, progress=False)
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_changed_extraction_config_uses_a_new_entry_but_max_frames_does_not(tmp_path, clips):
    base = FeatureCache(AcousticConfig(), root=tmp_path / "c")
    other_step = FeatureCache(AcousticConfig(step_s=0.010), root=tmp_path / "c")
    other_len = FeatureCache(AcousticConfig(max_frames=50, length_policy="center"), root=tmp_path / "c")
    assert base.directory != other_step.directory
    assert base.directory == other_len.directory
    a, b = base.get(clips[0]), other_step.get(clips[0])
    assert len(b) > 2 * len(a)  # 10 ms step: ~2.5x the frames of 25 ms


def test_interrupted_run_resumes_and_corrupt_entries_are_recomputed(tmp_path, clips, monkeypatch):
    cache = FeatureCache(AcousticConfig(), root=tmp_path / "c")
    cache.get_many(clips[:4], workers=1, progress=False)  # "interrupted" after four files
    # A half-written entry (e.g. copied from a crashed machine) must not be trusted.
    cache.entry_path(clips[0]).write_bytes(b"\x93NUMPY garbage")
    calls = []
    real = cache_module.extract_file
    monkeypatch.setattr(cache_module, "extract_file", lambda p, c: calls.append(p) or real(p, c))
    out = cache.get_many(clips, workers=1, progress=False)
    assert sorted(map(str, calls)) == sorted(str(p) for p in [clips[0], *clips[4:]])
    np.testing.assert_array_equal(out[str(clips[0])], extract_file(clips[0]).astype(np.float32))
    assert not list(cache.directory.glob("*.tmp"))


def test_edited_file_is_re_extracted(tmp_path, clips):
    cache = FeatureCache(AcousticConfig(), root=tmp_path / "c")
    before = cache.get(clips[0])
    sf.write(clips[0], 0.3 * np.random.default_rng(9).normal(size=16000), 16000)
    after = cache.get(clips[0])
    assert len(after) != len(before)


def test_failures_are_listed_and_good_files_still_cached(tmp_path, clips):
    bad = tmp_path / "audio" / "bad.wav"
    bad.write_bytes(b"not audio at all")
    silent = tmp_path / "audio" / "silent.wav"
    sf.write(silent, np.zeros(16000), 16000)
    cache = FeatureCache(AcousticConfig(), root=tmp_path / "c")
    with pytest.raises(AudioError, match=r"2 of 12 audio files failed") as info:
        cache.get_many([*clips, bad, silent], workers=1, progress=False)
    assert "bad.wav" in str(info.value) and "silent" in str(info.value)
    assert all(cache.entry_path(p).exists() for p in clips)
    with pytest.raises(AudioError, match="no such audio file"):
        cache.get_many([tmp_path / "missing.wav"], progress=False)
