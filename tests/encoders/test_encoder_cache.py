"""The frozen encoders' on-disk caches: computed once, identical on a hit, re-computed when stale.

These run without the extra: the encoders are replaced by small deterministic ones through the
caches' ``encoder_factory``, which is exactly how the caches obtain the real ones.
"""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from emofusion.features.encoders.cache import SentenceVectorCache, WhisperFrameCache, as_stored


class CountingSentenceEncoder:
    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen += list(texts)
        return np.stack([np.full(384, len(t) / 7.0, dtype=np.float32) for t in texts])


class CountingWhisperEncoder:
    def __init__(self):
        self.calls = 0

    def frames(self, samples):
        self.calls += 1
        n = len(samples) // 320
        return np.outer(np.arange(n, dtype=np.float32) / 3.0, np.ones(384, dtype=np.float32)) + float(np.abs(samples).max())


def test_sentence_vectors_are_computed_once_per_distinct_text(tmp_path):
    encoder = CountingSentenceEncoder()
    cache = SentenceVectorCache(tmp_path, encoder_factory=lambda: encoder)
    texts = ["hello", "a longer text", "hello"]
    first = cache.get_many(texts, progress=False)
    assert encoder.seen == ["hello", "a longer text"]  # the repeat shares one entry
    assert first.shape == (3, 384)
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(first[1], as_stored(np.full(384, 13 / 7.0)))  # rounded as stored
    again = SentenceVectorCache(tmp_path, encoder_factory=lambda: encoder).get_many(texts, progress=False)
    assert encoder.seen == ["hello", "a longer text"]  # all hits: the encoder is not asked again
    np.testing.assert_array_equal(again, first)


def test_a_corrupt_sentence_entry_is_recomputed(tmp_path):
    encoder = CountingSentenceEncoder()
    cache = SentenceVectorCache(tmp_path, encoder_factory=lambda: encoder)
    cache.get_many(["broken"], progress=False)
    (entry,) = [p for p in cache.directory.glob("*.npy")]
    entry.write_bytes(b"not a numpy file")
    out = cache.get_many(["broken"], progress=False)
    assert encoder.seen == ["broken", "broken"]
    np.testing.assert_array_equal(out[0], as_stored(np.full(384, 6 / 7.0)))


def test_no_texts_give_an_empty_matrix_without_loading_the_encoder(tmp_path):
    def fail():
        raise AssertionError("the encoder must not load")

    assert SentenceVectorCache(tmp_path, encoder_factory=fail).get_many([], progress=False).shape == (0, 384)


def test_whisper_frames_are_cached_per_file_and_redone_when_the_file_changes(tmp_path):
    audio = tmp_path / "clip.wav"
    sf.write(audio, 0.5 * np.sin(np.arange(16000, dtype=np.float32) / 5), 16000)  # a constant is silence
    encoder = CountingWhisperEncoder()
    cache = WhisperFrameCache(tmp_path / "cache", encoder_factory=lambda: encoder)
    first = cache.get_many([audio], progress=False)[str(audio)]
    assert encoder.calls == 1 and first.shape == (50, 384)
    again = cache.get_many([audio], progress=False)[str(audio)]
    assert encoder.calls == 1
    np.testing.assert_array_equal(first, again)
    # Same path, new content (and a later mtime): a new entry, not the stale one.
    sf.write(audio, 0.25 * np.sin(np.arange(16000, dtype=np.float32) / 5), 16000)
    stat = audio.stat()
    os.utime(audio, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = cache.get_many([audio], progress=False)[str(audio)]
    assert encoder.calls == 2
    assert not np.array_equal(changed, first)


def test_whisper_cache_names_every_file_it_could_not_embed(tmp_path):
    import pytest

    from emofusion.errors import AudioError

    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    sf.write(good, 0.5 * np.sin(np.arange(8000, dtype=np.float32) / 5), 16000)
    bad.write_bytes(b"RIFF not really audio")
    cache = WhisperFrameCache(tmp_path / "cache", encoder_factory=CountingWhisperEncoder)
    with pytest.raises(AudioError, match="1 of 2 audio files failed") as info:
        cache.get_many([good, bad], progress=False)
    assert "bad.wav" in str(info.value)
    # The good file was cached before the error: a second encoder is never asked for it.
    assert WhisperFrameCache(tmp_path / "cache", encoder_factory=lambda: None).get_many([good], progress=False)
