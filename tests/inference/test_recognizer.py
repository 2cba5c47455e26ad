"""EmotionRecognizer: one object, every input form, batches, long audio, and bad input."""

import io

import numpy as np
import pytest
import soundfile as sf

from tiny_corpus import LABELS, PITCH, small_model_config

from emofusion.errors import AudioError, ConfigError, TextError
from emofusion.inference import EmotionRecognizer
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train

SMALL = small_model_config()


def _fit(tiny, out, model):
    return train(
        model, tiny["utterances"], labels=LABELS, out_dir=out, cache=tiny["cache"], acoustic=tiny["acoustic"],
        text_config=tiny["text"], model_config=SMALL,
        train_config=TrainConfig(epochs=25, batch_size=8, learning_rate=3e-3, precision="fp32"), progress=False,
    )


@pytest.fixture(scope="module")
def fused(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("fused")
    _fit(tiny, out, "M-CBLA-BLR")
    return EmotionRecognizer.load(out)


@pytest.fixture(scope="module")
def speech_only(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("speech")
    _fit(tiny, out, "S-CBLA")
    return EmotionRecognizer.load(out)


def _tone(label, seconds=1.0, rate=16000):
    t = np.arange(int(rate * seconds)) / rate
    return 0.4 * np.sin(2 * np.pi * PITCH[label] * t)


def test_path_array_and_bytes_give_the_same_prediction(fused, tiny):
    u = tiny["utterances"][0]
    samples, rate = sf.read(u.audio)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="FLAC")
    a = fused.predict(u.audio, u.text)
    b = fused.predict(samples, u.text, sample_rate=rate)
    c = fused.predict(buf.getvalue(), u.text)
    assert a.label == u.label
    assert sum(a.probabilities.values()) == pytest.approx(1.0)
    for other in (b, c):
        assert other.label == a.label
        for k in LABELS:
            assert other.probabilities[k] == pytest.approx(a.probabilities[k], abs=1e-4)


def test_batch_equals_one_by_one(fused, tiny):
    utts = tiny["utterances"][:6]
    batch = fused.predict_batch([(u.audio, u.text) for u in utts])
    for u, p in zip(utts, batch):
        single = fused.predict(u.audio, u.text)
        assert p.label == single.label == u.label
        for k in LABELS:
            assert p.probabilities[k] == pytest.approx(single.probabilities[k], abs=1e-5)


def test_windows_of_very_different_lengths_run_in_two_passes_with_the_same_answers(fused, tiny):
    """A batch of full windows and short tails is split by length (`length_groups`); every
    utterance must still get exactly the answer it gets alone."""
    from emofusion.features.batching import length_groups

    span = fused.trained.pipeline.max_frames
    utts = [tiny["utterances"][i % len(tiny["utterances"])] for i in range(12)]
    items = [(np.concatenate([_tone(u.label, 1.0), _tone("neu", 0.1)]), u.text) for u in utts]  # 1 window + a tail
    prepared = [fused.prepare(x, t, sample_rate=16000) for x, t in items]
    lengths = [len(w) for p in prepared for w in p.windows]
    assert max(lengths) == span and min(lengths) < span // 2
    assert len(length_groups(lengths)) == 2  # the pass below really is split
    passes = []
    hook = fused.trained.model.register_forward_hook(lambda m, a, out: passes.append(out.shape[0]))
    try:
        batch = fused.predict_prepared(prepared)
    finally:
        hook.remove()
    assert len(passes) == 2 and sum(passes) == len(lengths)
    for (x, t), p in zip(items, batch):
        single = fused.predict(x, t, sample_rate=16000)
        assert p.windows == single.windows > 1
        for k in LABELS:
            assert p.probabilities[k] == pytest.approx(single.probabilities[k], abs=1e-5)


def test_other_rates_and_channels_are_accepted(speech_only):
    for rate in (8000, 22050, 44100, 48000):
        x = _tone("neu", rate=rate)
        assert speech_only.predict(np.stack([x, x], axis=1), sample_rate=rate).label == "neu"


def test_long_audio_is_windowed_and_every_window_counts(speech_only):
    # 40-frame windows (tiny config): 6 s of "sad" then 6 s of "ang" -> both classes get ~half the
    # probability mass, where a model reading only the first window would say "sad" alone.
    rate = 16000
    x = np.concatenate([_tone("sad", 6.0), _tone("ang", 6.0)])
    p = speech_only.predict(x, sample_rate=rate)
    assert p.windows == len(range(0, (len(x) - 800) // 400 + 1, 40))
    assert p.probabilities["sad"] > 0.3 and p.probabilities["ang"] > 0.3
    head_only = speech_only.predict(x[: rate], sample_rate=rate)
    assert head_only.probabilities["sad"] > 0.9


def test_clipped_audio_still_predicts(speech_only):
    # Hard clipping turns the tone into a near-square wave (new harmonics); no label is promised,
    # but it must be a normal prediction, not an error or NaNs.
    p = speech_only.predict(np.clip(3 * _tone("exc"), -1, 1), sample_rate=16000)
    assert p.label in LABELS
    assert np.isfinite(list(p.probabilities.values())).all()
    assert sum(p.probabilities.values()) == pytest.approx(1.0)


def test_bad_inputs_raise_specific_errors(fused, speech_only, tiny):
    u = tiny["utterances"][0]
    with pytest.raises(TextError, match="no transcript: M-CBLA-BLR reads the text and the transcript is empty"):
        fused.predict(u.audio, "   ")
    with pytest.raises(ConfigError, match="needs audio"):
        fused.predict(None, "hello")
    with pytest.raises(AudioError, match="silent"):
        speech_only.predict(np.zeros(16000), sample_rate=16000)
    with pytest.raises(AudioError, match="shorter than the 0.1 s minimum"):
        speech_only.predict(_tone("neu", 0.06), sample_rate=16000)
    with pytest.raises(AudioError, match="exceeds the limit of 600 s"):
        speech_only.predict(np.ones(16000 * 601, dtype=np.float32) * 0.1, sample_rate=16000)


def test_short_and_non_ascii_inputs_predict(fused, tiny):
    u = tiny["utterances"][0]
    p = fused.predict(_tone(u.label, 0.1), "café — naïve 😊 “quoted” ¿qué?", sample_rate=16000)
    assert p.label in LABELS and sum(p.probabilities.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("fmt, subtype, rate, channels", [
    ("OGG", "VORBIS", 48000, 2), ("WAV", "PCM_16", 8000, 1), ("FLAC", "PCM_24", 44100, 6),
])
def test_encoded_formats_rates_and_channel_counts(speech_only, tmp_path, fmt, subtype, rate, channels):
    x = _tone("ang", 1.5, rate)
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, np.stack([x] * channels, axis=1), rate, format=fmt, subtype=subtype)
    assert speech_only.predict(path).label == "ang"


def test_ten_minutes_of_audio_is_analysed_whole(speech_only):
    rate = 16000
    minutes = np.concatenate([_tone("ang", 300.0), _tone("sad", 299.0)])
    p = speech_only.predict(minutes, sample_rate=rate)
    assert p.windows > 500  # every 40-frame window of ~10 min, not just the first
    assert p.probabilities["ang"] > 0.3 and p.probabilities["sad"] > 0.3


def test_a_long_recording_encodes_its_transcript_once(fused, tiny):
    """Regression (issue 8.3): the transcript went through the text network once per window, so a
    long recording with a long transcript cost windows x transcript. The answer must not change:
    it equals every window classified with the whole transcript, weighted by frame count."""
    import torch

    from emofusion.features.acoustic import extract_frames

    u = tiny["utterances"][0]
    x = np.concatenate([_tone("sad", 4.0), _tone(u.label, 4.0)])
    text = " ".join([u.text] * 30)
    rows = []
    hook = fused.trained.model.text_encoder.register_forward_hook(lambda m, a, out: rows.append(out.shape[0]))
    try:
        p = fused.predict(x, text, sample_rate=16000)
    finally:
        hook.remove()
    assert p.windows > 5
    assert rows == [1]  # one transcript, one row through the text encoder, whatever the windows

    # Reference: the model called directly on every window with the transcript repeated per window.
    pipeline, model = fused.trained.pipeline, fused.trained.model
    frames = extract_frames(x, 16000, pipeline.acoustic)
    span = pipeline.acoustic.max_frames
    windows = [frames[i : i + span] for i in range(0, len(frames), span)]
    speech = pipeline.speech_inputs(windows)
    tokens = torch.from_numpy(np.stack([pipeline.vocabulary.encode(text)] * len(windows)))
    with torch.inference_mode():
        logits = model(
            speech=torch.from_numpy(speech.frames), speech_lengths=torch.from_numpy(speech.lengths),
            tokens=tokens, text_lengths=torch.full((len(windows),), tokens.shape[1]),
        )
    probs = torch.softmax(logits.double(), dim=1).numpy()
    weights = np.array([len(w) for w in windows], dtype=np.float64)
    want = (probs * weights[:, None]).sum(0) / weights.sum()
    assert p.windows == len(windows)
    assert [p.probabilities[c] for c in LABELS] == pytest.approx(want.tolist(), abs=1e-5)


def test_a_transcript_with_no_words_is_refused_when_prepared(fused, tiny):
    """Regression (issue 8.2): zero-width and format characters passed the emptiness check and
    failed later, inside a forward pass shared with other utterances."""
    u = tiny["utterances"][0]
    for text in ("\u200b", "\ufeff\u200b \u00ad", "\u200b\n\t"):
        with pytest.raises(TextError, match="no transcript"):
            fused.prepare(u.audio, text)
