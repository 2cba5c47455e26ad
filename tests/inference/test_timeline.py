"""Timeline: utterances found where they are, each classified on its own, in every output form."""

from __future__ import annotations

import csv
import json
import re
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emofusion.asr.vad import Region
from emofusion.cli.main import main
from emofusion.errors import AudioError, MissingExtraError
from emofusion.features.encoders import extra as encoders_extra
from emofusion.inference.recognizer import SHIPPED_MODELS, EmotionRecognizer
from emofusion.inference.timeline import NO_SPEECH, Segment, _overall, build_timeline, cut_regions

from conversation import make_conversation

RATE = 16_000
BOUNDARY_TOLERANCE_S = 0.5
needs_speech_model = pytest.mark.skipif(
    not (SHIPPED_MODELS["speech"] / "model.json").is_file(), reason="the shipped speech model is not built"
)


def test_regions_are_cut_exactly_from_blocks_of_any_size():
    signal = np.arange(10 * RATE, dtype=np.float64)
    regions = [Region(0.5, 1.25), Region(2.0, 4.0), Region(9.5, 10.0)]
    for block in (1000, 16_000, 160_000):
        blocks = (signal[i : i + block] for i in range(0, len(signal), block))
        cut = list(cut_regions(blocks, regions, RATE))
        assert [r for r, _ in cut] == regions
        for region, samples in cut:
            np.testing.assert_array_equal(samples, signal[int(region.start * RATE) : int(region.end * RATE)])


def test_overall_is_the_duration_weighted_mean_of_the_classified_segments():
    labels = ("ang", "sad")
    segments = [
        Segment(0.0, 1.0, "a", "ang", {"ang": 0.9, "sad": 0.1}, "M"),
        Segment(2.0, 5.0, "b", "sad", {"ang": 0.2, "sad": 0.8}, "M"),
        Segment(6.0, 9.0, "", None, None, None, error="too short"),  # not counted
    ]
    label, probabilities = _overall(segments, labels)
    # by hand: ang = (1 * 0.9 + 3 * 0.2) / 4 = 0.375
    assert label == "sad"
    assert probabilities == pytest.approx({"ang": 0.375, "sad": 0.625})
    assert _overall(segments[2:], labels) == (None, None)


@pytest.fixture(scope="module")
def conversation(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("conversation") / "long_call.wav"
    truth = make_conversation(shared_data, out, seconds=60.0, seed=0)
    return out, truth


@pytest.fixture(scope="module")
def timeline_json(asr_extra, conversation):
    """`emofusion predict long_call.wav --timeline --json --no-diarize`, run once for the tests below.

    --no-diarize: these tests measure the cuts at pauses; its 18 utterances come from up to 18
    actors, which tests/inference/test_diarization.py's conversations cover with known turns."""
    path, _ = conversation
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["predict", str(path), "--timeline", "--json", "--no-diarize"]) == 0
    return json.loads(buffer.getvalue())


@pytest.mark.slow
def test_timeline_json_has_the_documented_shape(timeline_json):
    body = timeline_json
    assert {"label", "probabilities", "segments"} <= set(body)
    default = "M-WTV-ST" if encoders_extra.available() else "M-CBLA-BLR"  # the default fusion model
    assert body["model"] == default and body["transcriber"].startswith("whisper-tiny.en")
    for s in body["segments"]:
        assert set(s) == {"start", "end", "text", "label", "probabilities", "confident", "model", "error", "speaker",
                          "language"}
        assert isinstance(s["start"], float) and isinstance(s["end"], float) and s["start"] < s["end"]
        assert s["label"] == max(s["probabilities"], key=s["probabilities"].get)
        assert sum(s["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    starts = [s["start"] for s in body["segments"]]
    assert starts == sorted(starts)


@pytest.mark.slow
def test_segments_fall_within_half_a_second_of_the_true_utterances(timeline_json, conversation):
    _, truth = conversation
    segments = timeline_json["segments"]
    assert len(segments) == len(truth)
    for segment, utterance in zip(segments, truth):
        assert abs(segment["start"] - utterance.start) <= BOUNDARY_TOLERANCE_S, (segment, utterance)
        assert abs(segment["end"] - utterance.end) <= BOUNDARY_TOLERANCE_S, (segment, utterance)


@pytest.mark.slow
def test_each_segment_is_transcribed_from_its_own_audio(timeline_json, conversation):
    _, truth = conversation
    for segment, utterance in zip(timeline_json["segments"], truth):
        # RAVDESS says one of two sentences: each segment's words are its own clip's sentence
        said = utterance.text.lower().rstrip(".")
        heard = segment["text"].lower().rstrip(".!?")
        assert heard.split()[-3:] == said.split()[-3:], (segment["text"], utterance.text)


@pytest.mark.slow
def test_overall_probabilities_are_the_duration_weighted_segment_mean(timeline_json):
    segments = timeline_json["segments"]
    weights = np.array([s["end"] - s["start"] for s in segments])
    for label, p in timeline_json["probabilities"].items():
        expected = sum(w * s["probabilities"][label] for w, s in zip(weights, segments)) / weights.sum()
        assert p == pytest.approx(expected, abs=1e-3)  # segment times are rounded to 1 ms in JSON
    assert timeline_json["label"] == max(timeline_json["probabilities"], key=timeline_json["probabilities"].get)


@pytest.mark.slow
def test_each_segment_gets_what_predict_gives_its_clip(asr_extra, conversation, timeline_json):
    path, _ = conversation
    recognizer = EmotionRecognizer.load()
    samples, rate = sf.read(path, dtype="float64")
    for s in timeline_json["segments"][:4]:
        clip = samples[int(round(s["start"] * rate)) : int(round(s["end"] * rate))]
        expected = recognizer.predict(clip, s["text"], sample_rate=rate)
        assert s["label"] == expected.label
        for c, p in expected.probabilities.items():
            assert s["probabilities"][c] == pytest.approx(p, abs=1e-5)


@pytest.mark.slow
def test_table_and_csv_outputs(asr_extra, conversation, tmp_path, capsys):
    path, truth = conversation
    out = tmp_path / "timeline.csv"
    assert main(["predict", str(path), "--timeline", "--out", str(out), "--quiet", "--no-diarize"]) == 0
    printed = capsys.readouterr().out
    assert "overall" in printed and f"{len(truth)} segments" in printed
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == len(truth)
    assert list(rows[0]) == ["id", "start", "end", "speaker", "text", "label", "p_ang", "p_exc", "p_neu", "p_sad",
                             "confident", "model", "error"]
    assert {r["id"] for r in rows} == {"long_call"}
    assert all(abs(float(r["start"]) - u.start) <= BOUNDARY_TOLERANCE_S for r, u in zip(rows, truth))


@pytest.fixture(scope="module")
def silent_transcriber(asr_extra):
    from emofusion.asr.transcriber import Heard, Transcriber

    class Silent(Transcriber):  # a Whisper that never hears words
        def transcribe(self, samples):
            return ""

        def hear(self, samples):  # what the timeline asks (words, language, confidence)
            return Heard("")

    loaded = Transcriber.load()
    return Silent(loaded.model, loaded.config, loaded.folder)


def two_clips(shared_data, tmp_path) -> Path:
    from emofusion.audio import load_audio

    clips = [load_audio(shared_data / "ravdess" / "Actor_01" / name).samples
             for name in ("03-01-05-02-01-01-01.flac", "03-01-04-02-01-01-01.flac")]
    gap = 1e-3 * np.random.default_rng(0).standard_normal(RATE)
    path = tmp_path / "two.wav"
    sf.write(path, np.concatenate([gap, clips[0], gap, clips[1], gap]), RATE)
    return path


@needs_speech_model
def test_segments_without_words_fall_back_to_the_speech_model(asr_extra, shared_data, tmp_path, silent_transcriber):
    recognizer = EmotionRecognizer.load()
    timeline = build_timeline(recognizer, two_clips(shared_data, tmp_path), transcriber=silent_transcriber)
    assert len(timeline.segments) == 2
    speech = EmotionRecognizer.load("speech")
    for s in timeline.segments:
        assert s.model == speech.name == ("S-WTV" if encoders_extra.available() else "S-CBLA")
        assert s.text == "" and s.error is None
        assert s.label is not None and sum(s.probabilities.values()) == pytest.approx(1.0)


def test_without_a_fallback_a_wordless_segment_carries_an_error(asr_extra, shared_data, tmp_path, silent_transcriber):
    recognizer = EmotionRecognizer.load()
    timeline = build_timeline(recognizer, two_clips(shared_data, tmp_path), transcriber=silent_transcriber, fallback=None)
    assert len(timeline.segments) == 2
    assert all(s.label is None and s.probabilities is None and "no words" in s.error for s in timeline.segments)
    assert timeline.label is None and timeline.note == "2 of 2 segments could not be classified"
    assert timeline.to_json()["segments"][0]["error"].startswith("no words to read in this segment")


def test_a_given_transcript_is_used_for_every_segment_and_whisper_is_not_loaded(asr_extra, shared_data, tmp_path, monkeypatch):
    from emofusion.asr import transcriber as module

    def refuse(config):
        raise AssertionError("Whisper loaded although the transcript was given")

    monkeypatch.setattr(module, "_load_cached", refuse)
    timeline = build_timeline(EmotionRecognizer.load(), two_clips(shared_data, tmp_path), "I told you already!")
    assert [s.text for s in timeline.segments] == ["I told you already!"] * 2
    assert timeline.transcriber is None


@needs_speech_model
def test_the_speech_model_needs_no_transcription(asr_extra, shared_data, tmp_path, monkeypatch):
    from emofusion.asr import transcriber as module

    monkeypatch.setattr(module, "_load_cached", lambda config: (_ for _ in ()).throw(AssertionError("Whisper loaded")))
    speech = EmotionRecognizer.load("speech")  # S-WTV with the encoders extra, else S-CBLA
    timeline = build_timeline(speech, two_clips(shared_data, tmp_path))
    assert len(timeline.segments) == 2 and all(s.text is None and s.model == speech.name for s in timeline.segments)


def test_noise_gives_no_segments_and_says_so(asr_extra, tmp_path, capsys):
    path = tmp_path / "noise.wav"
    sf.write(path, 0.05 * np.random.default_rng(0).standard_normal(10 * RATE), RATE)
    timeline = build_timeline(EmotionRecognizer.load(), path)
    assert timeline.segments == () and timeline.label is None and timeline.note == NO_SPEECH
    assert timeline.to_json()["segments"] == [] and timeline.to_json()["note"] == NO_SPEECH
    assert main(["predict", str(path), "--timeline", "--quiet"]) == 0
    assert "no speech found" in capsys.readouterr().out


def test_streaming_keeps_memory_bounded_on_long_recordings(asr_extra, tmp_path):
    # Ten minutes of quiet noise: whole-file decoding alone would hold 77 MB of float64 samples.
    path = tmp_path / "ten_minutes.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as f:
        for _ in range(10):
            f.write(1e-3 * rng.standard_normal(60 * RATE))
    recognizer = EmotionRecognizer.load()
    tracemalloc.start()
    try:
        timeline = build_timeline(recognizer, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert timeline.duration == pytest.approx(600.0) and timeline.segments == ()
    assert peak < 30e6, f"peak {peak / 1e6:.0f} MB"


def test_over_long_and_undecodable_recordings_are_refused(asr_extra, tmp_path, capsys):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(3 * RATE), RATE)
    with pytest.raises(AudioError, match="exceeds the limit of 2 s"):
        build_timeline(EmotionRecognizer.load(), path, max_seconds=2)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not a wav file at all")
    assert main(["predict", str(bad), "--timeline"]) == 2
    assert "cannot decode audio" in capsys.readouterr().err


def test_a_manifest_gives_one_csv_with_an_id_column(asr_extra, shared_data, tmp_path):
    two = two_clips(shared_data, tmp_path)
    manifest = tmp_path / "calls.csv"
    manifest.write_text("id,audio,text,label,speaker,session\n"
                        f"call1,{two},,neu,,\n"
                        f"call2,{two},Leave me alone.,ang,,\n"
                        "call3,broken.wav,,neu,,\n", encoding="utf-8")
    (tmp_path / "broken.wav").write_bytes(b"RIFF....broken")
    folder_out = tmp_path / "out.csv"
    assert main(["predict", str(manifest), "--timeline", "--out", str(folder_out), "--quiet"]) == 0
    rows = list(csv.DictReader(folder_out.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == ["call1", "call1", "call2", "call2", "call3"]
    assert "cannot decode audio" in rows[4]["error"] and rows[4]["label"] == ""
    rows = rows[:4]
    assert rows[2]["text"] == rows[3]["text"] == "Leave me alone."
    assert "talking by the door" in rows[0]["text"].lower()
    assert all(r["label"] in {"ang", "exc", "neu", "sad"} and r["error"] == "" for r in rows)


def test_without_the_extra_the_timeline_names_the_install_command(monkeypatch, tmp_path, capsys):
    from emofusion.asr import vad

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    vad._load_detector.cache_clear()
    path = tmp_path / "clip.wav"
    sf.write(path, 0.1 * np.sin(np.arange(RATE) / 5), RATE)
    try:
        with pytest.raises(MissingExtraError, match=r'pip install "emofusion\[asr\]"'):
            build_timeline(EmotionRecognizer.load(), path)
        assert main(["predict", str(path), "--timeline"]) == 2
        assert 'pip install "emofusion[asr]"' in capsys.readouterr().err
    finally:
        vad._load_detector.cache_clear()


def test_predict_without_a_transcript_transcribes_and_reports_it(asr_extra, capsys):
    examples = Path(__file__).resolve().parents[2] / "examples"
    assert main(["predict", str(examples / "angry.flac"), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["transcribed"] is True and "talking by the door" in body["transcript"].lower()
    assert body["label"] in body["probabilities"]
    given = EmotionRecognizer.load().predict(examples / "angry.flac", "Kids are talking by the door.")
    assert given.transcript == "Kids are talking by the door." and not given.transcribed


# ---- the command line around long work (issue 18 item 6) ---------------------------------------

def test_an_out_folder_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    from emofusion.inference import timeline as module

    def refuse(*args, **kwargs):
        raise AssertionError("the timeline ran although --out was a folder")

    monkeypatch.setattr(module, "build_timeline", refuse)
    monkeypatch.setattr(module.AudioStream, "open", refuse)
    path = tmp_path / "call.wav"
    sf.write(path, np.zeros(RATE), RATE)
    assert main(["predict", str(path), "--timeline", "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path} is a folder" in capsys.readouterr().err
    assert main(["predict", str(path), "--timeline", "--plot", str(tmp_path / "timeline.txt")]) == 2
    assert "name a .png, .svg or .pdf file" in capsys.readouterr().err


def test_progress_shows_whole_seconds_and_the_first_pass(asr_extra, shared_data, tmp_path, capsys):
    # 12.1 s: a float total would print 12.1/12.1 (and accumulate noise such as 3604.100000000002)
    path = two_clips(shared_data, tmp_path)
    samples, _ = sf.read(path)
    sf.write(path, np.concatenate([samples, np.zeros(int(12.1 * RATE) - len(samples))]), RATE)
    build_timeline(EmotionRecognizer.load(), path, "Kids are talking by the door.", progress=True, diarize=False)
    err = capsys.readouterr().err
    assert "voice activity" in err and "emotion" in err
    counters = re.findall(r"(\S+)/(\S+?)s? \[", err) or re.findall(r"(\d\S*)/(\d\S*)", err)
    assert counters and all(a.isdigit() and b.isdigit() for a, b in counters), counters
    assert "13/13" in err


def test_one_file_out_says_no_speech_rather_than_0_segments(asr_extra, tmp_path, capsys):
    path = tmp_path / "noise.wav"
    sf.write(path, 0.05 * np.random.default_rng(0).standard_normal(5 * RATE), RATE)
    out = tmp_path / "timeline.csv"
    assert main(["predict", str(path), "--timeline", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "0 segments" not in printed
    assert f"no speech found: one row saying so -> {out}" in printed
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["error"] == NO_SPEECH


def test_plot_draws_one_lane_per_speaker_coloured_by_emotion(tmp_path):
    from matplotlib.colors import to_rgba

    from emofusion.inference.timeline import Timeline, summarise_speakers
    from emofusion.inference.timeline_plot import CLASS_COLOURS, draw_timeline, plot_timeline

    labels = ("ang", "exc", "neu", "sad")
    p = lambda **kw: {c: kw.get(c, 0.0) for c in labels}  # noqa: E731
    segments = (
        Segment(0.5, 3.0, "a", "ang", p(ang=0.9, sad=0.1), "M", speaker="S1"),
        Segment(3.0, 6.0, "b", "sad", p(neu=0.4, sad=0.6), "M", speaker="S2"),
        Segment(6.5, 9.0, "", None, None, None, error="no words", speaker="S1"),
        Segment(9.5, 14.0, "d", "neu", p(neu=0.7, exc=0.3), "M", speaker="S2"),
    )
    timeline = Timeline("neu", p(neu=1.0), segments, 15.0, "M", None, speakers=summarise_speakers(segments, labels))
    axes = draw_timeline(timeline).axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["S1", "S2"]
    bars = axes.collections
    assert len(bars) == 4
    for bar, s, lane in zip(bars, segments, (0, 1, 0, 1)):
        (x0, y0), (x1, y1) = bar.get_paths()[0].get_extents().get_points()
        assert (x0, x1) == pytest.approx((s.start, s.end)) and (y0 + y1) / 2 == pytest.approx(lane)
        if s.label is not None:  # the emotion's colour, the confidence as opacity
            assert tuple(bar.get_facecolor()[0]) == pytest.approx(to_rgba(CLASS_COLOURS[s.label], max(s.probabilities.values())))
    assert [t.get_text() for t in axes.get_legend().get_texts()][-1] == "no label"
    out = plot_timeline(timeline, tmp_path / "timeline.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
