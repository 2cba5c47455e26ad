"""A recording longer than Whisper's 30-s window is transcribed utterance by utterance (issue 18.6).

Whisper on a whole long recording skips stretches after pauses (30 of 41 sentences on a 3-min
file); cut at the voice-activity regions every sentence is heard. The recording is real speech:
TESS sentences ("Say the word X.", a different X each) with pauses between them (tests/sentences.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from sentences import RATE, make_sentences, sentences_heard, words_heard

from emofusion.asr.transcriber import WHISPER_WINDOW_S, Heard, Transcriber, combine_heard


@pytest.fixture(scope="module")
def sentences(shared_data):
    return make_sentences(shared_data, seconds=45.0, seed=0)


def test_every_sentence_of_a_long_recording_is_heard_one_utterance_at_a_time(asr_extra, sentences, monkeypatch):
    samples, words = sentences
    assert len(samples) > WHISPER_WINDOW_S * RATE and len(words) >= 12
    transcriber = Transcriber.load()
    lengths = []
    real_hear = Transcriber.hear

    def measured_hear(self, audio):
        lengths.append(len(audio) / RATE)
        return real_hear(self, audio)

    monkeypatch.setattr(Transcriber, "hear", measured_hear)
    heard = transcriber.transcribe_long(samples)
    # One Whisper call per utterance, none longer than a VAD region may be (15 s): bounded memory.
    assert len(lengths) >= len(words) - 1 and max(lengths) <= 15.0 + 0.5
    assert 0 < heard.utterances <= len(lengths)
    assert sentences_heard(heard.text, words) >= 0.95 * len(words), heard.text
    assert words_heard(heard.text, words) >= 0.8 * len(words), heard.text  # the words too, mostly
    # The words come out in the order they were said.
    positions = [heard.text.lower().find(w) for w in words if w in heard.text.lower()]
    assert positions == sorted(positions)


def test_a_short_recording_is_one_whisper_call(asr_extra, sentences, monkeypatch):
    samples, _ = sentences
    calls = []
    real_hear = Transcriber.hear
    monkeypatch.setattr(Transcriber, "hear", lambda self, audio: calls.append(len(audio)) or real_hear(self, audio))
    short = samples[: int(10 * RATE)]
    Transcriber.load().transcribe_long(short)
    assert calls == [len(short)]


def test_utterances_combine_by_duration_and_the_longest_heard_language():
    parts = [
        (2.0, Heard("Guten Tag.", "de", 0.9, -0.2, 0.1)),
        (1.0, Heard("Hello.", "en", 0.6, -0.5, 0.4)),
        (3.0, Heard("Wie geht es dir?", "de", 0.7, -0.4, 0.0)),
    ]
    combined = combine_heard(parts)
    assert combined.text == "Guten Tag. Hello. Wie geht es dir?"
    assert combined.language == "de" and combined.utterances == 3
    # Computed by hand: (2*0.9 + 3*0.7) / 5; (2*-0.2 + 1*-0.5 + 3*-0.4) / 6; (2*0.1 + 1*0.4 + 0) / 6.
    assert combined.language_probability == pytest.approx(0.78)
    assert combined.avg_logprob == pytest.approx(-0.35)
    assert combined.no_speech_prob == pytest.approx(0.1)
    assert combine_heard([]) == Heard("", utterances=0)


def test_silence_longer_than_the_window_is_heard_as_nothing(asr_extra):
    quiet = 1e-3 * np.random.default_rng(0).standard_normal(int(40 * RATE))
    heard = Transcriber.load().transcribe_long(quiet)
    assert heard.text == "" and heard.utterances == 0
