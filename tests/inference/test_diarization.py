"""Speaker turns: the voice encoder as Resemblyzer computes it, clustering, and turns in the timeline."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emofusion.cli.main import main
from emofusion.errors import ConfigError, MissingExtraError
from emofusion.inference import diarization
from emofusion.inference.diarization import DiarizationConfig, Turn, assign_turns, cluster, mel_filterbank

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from dialogue import TrueTurn, make_dialogue  # noqa: E402

RATE = 16_000
needs_encoder = pytest.mark.skipif(not diarization.available(), reason=f"needs the voice encoder: {diarization.INSTALL}")
needs_speech_model = pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "emofusion" / "shipped" / "s-cbla" / "model.json").is_file(),
    reason="the shipped speech model is not built",
)


# ---- the encoder's input and weights ----------------------------------------------------------

def test_mel_filterbank_is_librosas():
    librosa = pytest.importorskip("librosa", reason="the reference needs librosa: pip install librosa")
    reference = librosa.filters.mel(sr=RATE, n_fft=400, n_mels=40)
    np.testing.assert_allclose(mel_filterbank(), reference, rtol=1e-5, atol=1e-9)


@needs_encoder
def test_mel_frames_are_resemblyzers_on_a_real_clip(shared_data):
    # Resemblyzer's audio.wav_to_mel_spectrogram is librosa.feature.melspectrogram with these settings.
    librosa = pytest.importorskip("librosa", reason="the reference needs librosa: pip install librosa")
    import torch

    samples, rate = sf.read(shared_data / "ravdess" / "Actor_01" / "03-01-05-02-01-01-01.flac", dtype="float32")
    reference = librosa.feature.melspectrogram(y=samples, sr=rate, n_fft=400, hop_length=160, n_mels=40).T
    ours = diarization.VoiceEncoder.load().mel_frames(torch.from_numpy(samples)).numpy()
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= 1e-5 * reference.max()


def test_a_wrong_weights_file_is_refused_before_it_is_read(tmp_path):
    fake = tmp_path / "pretrained.pt"
    fake.write_bytes(b"\0" * 100)
    with pytest.raises(ConfigError, match="100 bytes, expected 17090379"):
        diarization._check_weights(str(fake))
    fake.write_bytes(b"\0" * diarization.WEIGHTS_BYTES)  # right size, wrong content
    with pytest.raises(ConfigError, match="sha256"):
        diarization._check_weights(str(fake))


def test_without_resemblyzer_the_error_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "resemblyzer" else real(name, *a))
    assert not diarization.available()
    with pytest.raises(MissingExtraError, match=r"pip install --no-deps resemblyzer==0\.1\.4"):
        diarization.weights_path()


@needs_encoder
def test_the_encoder_places_one_speakers_clips_closer_than_anothers(shared_data):
    from emofusion.audio import load_audio

    encoder = diarization.VoiceEncoder.load()
    clips = {actor: [load_audio(shared_data / "ravdess" / f"Actor_{actor:02d}" / f"03-01-{e}-01-01-01-{actor:02d}.flac").samples
                     for e in ("01", "03", "04")] for actor in (1, 2)}  # neutral, happy, sad
    a, b = (encoder.embed([c[8000:32000] for c in clips[actor]]) for actor in (1, 2))
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    within = min((a @ a.T)[np.triu_indices(3, 1)].min(), (b @ b.T)[np.triu_indices(3, 1)].min())
    across = (a @ b.T).max()
    assert within > across, (within, across)


# ---- clustering and turns on hand-made embeddings ------------------------------------------------

def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_clusters_and_turns_on_hand_made_embeddings():
    rng = np.random.default_rng(0)
    a, b = np.eye(4)[0], np.eye(4)[1]
    # one region 0-6 s: speaker A until 3 s, then B (back to back); windows 1.5 s every 0.5 s
    spans = [(s, s + 1.5) for s in np.arange(0, 4.6, 0.5)]
    embeddings = _unit(np.stack([(a if (s + 0.75) < 3 else b) + 0.05 * rng.standard_normal(4) for s, _ in spans]))
    labels = cluster(embeddings, threshold=0.5)
    assert len(set(labels)) == 2
    turns = assign_turns([(0.0, 6.0)], spans, embeddings, labels, DiarizationConfig(slot_s=0.1, min_turn_s=0.5))
    assert [t.speaker for t in turns] == ["S1", "S2"]  # named in order of first appearance
    assert turns[0].start == 0.0 and turns[-1].end == 6.0 and turns[0].end == turns[1].start
    assert abs(turns[0].end - 3.0) <= 0.5
    assert list(cluster(embeddings, speakers=1)) == [0] * len(spans)
    assert len(set(cluster(embeddings, speakers=3))) == 3


def test_a_turn_shorter_than_min_turn_joins_its_neighbours():
    a, b = np.eye(3)[0], np.eye(3)[1]
    spans = [(0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 2.0)]
    embeddings = np.stack([a, b, a, a])  # B for 0.2 s only
    turns = assign_turns([(0.0, 2.0)], spans, embeddings, np.array([0, 1, 0, 0]), DiarizationConfig(slot_s=0.1, min_turn_s=0.5))
    assert turns == [Turn(0.0, 2.0, "S1")]
    kept = assign_turns([(0.0, 2.0)], spans, embeddings, np.array([0, 1, 0, 0]), DiarizationConfig(slot_s=0.1, min_turn_s=0.1))
    assert [t.speaker for t in kept] == ["S1", "S2", "S1"]


# ---- DER as the benchmark computes it -------------------------------------------------------------

def test_der_and_jer_on_a_hand_made_case():
    pytest.importorskip("pyannote.metrics", reason='DER/JER need pyannote.metrics: pip install "emofusion[bench]"')
    from bench_diarization import boundary_errors, der_jer

    truth = [TrueTurn(0.0, 10.0, "A"), TrueTurn(10.0, 20.0, "B")]
    # B's first 2 s given to A: 2 s of confusion in 20 s of speech
    turns = [Turn(0.0, 12.0, "S1"), Turn(12.0, 20.0, "S2")]
    der, jer = der_jer(truth, turns, collar=0.0)
    assert abs(der) == pytest.approx(0.10)
    # JER, by hand: A maps to S1: 1 - 10 / 12; B maps to S2: 1 - 8 / 10; mean over the reference speakers
    assert abs(jer) == pytest.approx(((1 - 10 / 12) + (1 - 8 / 10)) / 2)
    # pyannote's collar of 0.25 s is 0.125 s either side of each reference boundary (0, 10, 20 s), not
    # scored: 0.5 s removed, and the confusion runs from 10.125 to 12 s: 1.875 s of 19.5 s
    der_collar, _ = der_jer(truth, turns, collar=0.25)
    assert abs(der_collar) == pytest.approx(1.875 / 19.5)
    assert boundary_errors(truth, turns) == [0.0, 2.0, 2.0, 0.0]


# ---- turns in the timeline ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_speakers(shared_data, tmp_path_factory):
    """A male and a female RAVDESS actor (17, 18: neither chose the threshold), 6 turns, every kind of transition."""
    path = tmp_path_factory.mktemp("dialogue") / "two.wav"
    return path, make_dialogue(shared_data, path, ["ravdess:17", "ravdess:18"], turns=6, seed=3)


def timeline_json(*args) -> dict:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["predict", *map(str, args), "--timeline", "--json", "--model", "speech"]) == 0
    return json.loads(buffer.getvalue())


def speaker_at(segments, t):
    return next((s["speaker"] for s in segments if s["start"] <= t < s["end"]), None)


@needs_encoder
@needs_speech_model
def test_two_speakers_are_found_with_their_turns(asr_extra, two_speakers):
    path, truth = two_speakers
    body = timeline_json(path)
    segments = body["segments"]
    assert {s["speaker"] for s in segments} == {"S1", "S2"}
    assert [p["speaker"] for p in body["speakers"]] == ["S1", "S2"]
    # each true speaker maps to one found speaker, over every turn's inner part (0.5 s from its edges)
    mapping = {}
    for turn in truth:
        heard = {speaker_at(segments, t) for t in np.arange(turn.start + 0.5, turn.end - 0.5, 0.1)} - {None}
        assert len(heard) == 1, (turn, heard)
        mapping.setdefault(turn.speaker, heard.pop())
    assert sorted(mapping.values()) == ["S1", "S2"]
    # a speaker change is found within 0.5 s of where it is, pause or none
    changes = [s["start"] for prev, s in zip(segments, segments[1:]) if s["speaker"] != prev["speaker"]]
    for prev, turn in zip(truth, truth[1:]):
        assert min(abs(c - turn.start) for c in changes) <= 0.5 or min(abs(c - prev.end) for c in changes) <= 0.5
    # the per-speaker summary adds up the segments
    for p in body["speakers"]:
        own = [s for s in segments if s["speaker"] == p["speaker"]]
        assert p["speaking_s"] == pytest.approx(sum(s["end"] - s["start"] for s in own), abs=0.01)
        assert sum(p["emotion_s"].values()) == pytest.approx(p["speaking_s"], abs=0.01)
        assert p["segments"] == len(own)


@needs_encoder
@needs_speech_model
def test_speakers_1_gives_one_speaker(asr_extra, two_speakers):
    path, _ = two_speakers
    body = timeline_json(path, "--speakers", "1")
    assert {s["speaker"] for s in body["segments"]} == {"S1"} and len(body["speakers"]) == 1


@needs_encoder
@needs_speech_model
def test_one_speaker_gives_one_speaker(asr_extra, shared_data, tmp_path):
    # One of the six single-speaker conversations the threshold was chosen on (all six: one speaker).
    # Not a measure of how often it holds: a strongly emotional voice can still split (README).
    path = tmp_path / "one.wav"
    make_dialogue(shared_data, path, ["tess:OAF"], turns=6, seed=54)
    body = timeline_json(path)
    assert {s["speaker"] for s in body["segments"]} == {"S1"}


@needs_speech_model
def test_no_diarize_keeps_segments_at_pauses_without_speakers(asr_extra, two_speakers):
    path, _ = two_speakers
    body = timeline_json(path, "--no-diarize")
    assert body["speakers"] == [] and all(s["speaker"] is None for s in body["segments"])
    assert body["speaker_note"] is None


@needs_speech_model
def test_without_the_encoder_speakers_are_skipped_with_one_info_line(asr_extra, two_speakers, monkeypatch, capsys):
    path, _ = two_speakers
    monkeypatch.setattr(diarization, "_weights_path", lambda: None)
    assert main(["predict", str(path), "--timeline", "--model", "speech", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("info:")] == [
        f"info: speakers not told apart: the voice encoder is not installed ({diarization.INSTALL})"]
    # a manifest of recordings says it once too
    manifest = path.parent / "calls.csv"
    manifest.write_text(f"id,audio,text,label,speaker,session\na,{path},,,,\nb,{path},,,,\n", encoding="utf-8")
    assert main(["predict", str(manifest), "--timeline", "--model", "speech", "--quiet", "--out", str(path.parent / "t.csv")]) == 0
    assert capsys.readouterr().err.count(diarization.INSTALL) == 1
    assert main(["predict", str(path), "--timeline", "--model", "speech", "--speakers", "2"]) == 2
    assert diarization.INSTALL in capsys.readouterr().err
