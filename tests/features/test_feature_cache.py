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


def _damaged(frames, how):
    if how == "nan":
        frames[2, 5] = np.nan
    elif how == "inf":
        frames[2, 5] = -np.inf
    elif how == "1e30":
        frames[2, 5] = 1e30
    elif how == "zero frames":
        frames = frames[:0]
    elif how == "missing frames":
        frames = frames[: len(frames) // 2]
    elif how == "float64":
        frames = frames.astype(np.float64)
    elif how == "3-d":
        frames = frames[None]
    return frames


@pytest.mark.parametrize("how", ["nan", "inf", "1e30", "zero frames", "missing frames", "float64", "3-d"])
def test_a_damaged_entry_is_recomputed(tmp_path, clips, how):
    # One NaN/Inf/1e30 in a cached file used to be trusted and ruin the training run that read it.
    cache = FeatureCache(AcousticConfig(), root=tmp_path / "c")
    good = cache.get(clips[3])
    np.save(cache.entry_path(clips[3]), _damaged(good.copy(), how))
    again = FeatureCache(AcousticConfig(), root=tmp_path / "c").get(clips[3])
    np.testing.assert_array_equal(again, extract_file(clips[3]).astype(np.float32))
    np.testing.assert_array_equal(np.load(cache.entry_path(clips[3])), again)  # repaired on disk


def test_an_entry_of_another_file_is_recomputed(tmp_path, clips):
    # Valid-looking frames of the wrong length (e.g. copied from another file) do not match the audio.
    cache = FeatureCache(AcousticConfig(), root=tmp_path / "c")
    other = cache.get(clips[9])
    np.save(cache.entry_path(clips[0]), other)
    np.testing.assert_array_equal(cache.get(clips[0]), extract_file(clips[0]).astype(np.float32))


def test_a_folder_at_an_entrys_path_does_not_fail_every_run(tmp_path, clips):
    cache = FeatureCache(AcousticConfig(), root=tmp_path / "c")
    cache.entry_path(clips[1]).mkdir()
    (cache.entry_path(clips[1]) / "junk").write_text("x")
    for _ in range(2):
        frames = FeatureCache(AcousticConfig(), root=tmp_path / "c").get(clips[1])
        np.testing.assert_array_equal(frames, extract_file(clips[1]).astype(np.float32))
    assert cache.entry_path(clips[1]).is_file()


def test_frames_a_real_recording_gives_are_within_the_validity_bound(shared_data):
    # The bound that rejects 1e30 must accept every real value: RAVDESS speech, loud and quiet.
    from emofusion.features.cache import MAX_ABS_FEATURE, entry_problem

    files = sorted((shared_data / "ravdess").glob("Actor_0[1-2]/*.flac"))[::8]
    assert files
    for f in files:
        frames = extract_file(f).astype(np.float32)
        assert entry_problem(frames) is None, f
        assert np.abs(frames).max() < MAX_ABS_FEATURE / 5


@pytest.mark.parametrize("rate, seconds", [(8000, 1.2345), (22050, 0.8), (44100, 2.0001), (48000, 1.7)])
def test_the_frame_count_check_accepts_what_extraction_gives_at_any_rate(tmp_path, rate, seconds, monkeypatch):
    # Otherwise a valid entry would be judged damaged and re-extracted on every run.
    from emofusion.features.cache import FRAME_COUNT_SLACK, expected_frames

    path = tmp_path / f"r{rate}.wav"
    sf.write(path, 0.3 * np.random.default_rng(rate).normal(size=int(rate * seconds)), rate)
    assert abs(len(extract_file(path)) - expected_frames(path, AcousticConfig())) <= FRAME_COUNT_SLACK
    cache = FeatureCache(AcousticConfig(), root=tmp_path / "c")
    cache.get(path)
    monkeypatch.setattr(cache_module, "extract_file", lambda *a, **k: pytest.fail("re-extracted"))
    FeatureCache(AcousticConfig(), root=tmp_path / "c").get(path)
