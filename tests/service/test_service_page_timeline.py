"""The page's timeline in headless Chromium: a lane per speaker, segments coloured by emotion with
confidence as opacity, words on hover (title), the speaker summary, and an audio player whose
position moves a cursor; clicking a segment plays it. Asserted on the drawn elements against what
POST /v1/timeline answers for the same recording; a screenshot is saved in the test's tmp folder.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import soundfile as sf

from emofusion.inference import diarization

EXTRA_ARGS = ["--autoplay-policy=no-user-gesture-required"]
COLOURS = {"ang": "#d64541", "exc": "#f2a600", "neu": "#8a94a6", "sad": "#3b6fd6"}  # app.js CLASS_COLOURS

pytestmark = pytest.mark.slow


@pytest.fixture
def conversation(shared_data, tmp_path):
    """A male and a female RAVDESS actor, a pause between them (under the test server's 8-s limit)."""
    from conversation import trim_to_speech

    from emofusion.audio import load_audio

    clips = [trim_to_speech(load_audio(shared_data / "ravdess" / actor / name).samples)
             for actor, name in (("Actor_17", "03-01-05-02-01-01-17.flac"), ("Actor_18", "03-01-04-02-02-01-18.flac"))]
    rng = np.random.default_rng(0)
    gap = lambda s: 1e-3 * rng.standard_normal(int(s * 16_000))  # noqa: E731
    path = tmp_path / "conversation.wav"
    sf.write(path, np.concatenate([gap(0.5), clips[0] * 0.5 / np.abs(clips[0]).max(), gap(0.7),
                                   clips[1] * 0.5 / np.abs(clips[1]).max(), gap(0.5)]), 16_000, subtype="PCM_16")
    return path


def test_timeline_lanes_colours_player_and_cursor(asr_extra, browser, fusion_server, conversation, tmp_path):
    expected = httpx.post(f"{fusion_server.url}/v1/timeline",
                          files={"audio": ("conversation.wav", conversation.read_bytes(), "audio/wav")}, timeout=120).json()
    assert expected["segments"], expected
    speakers = [p["speaker"] for p in expected["speakers"]]
    lanes = speakers + (["speech"] if not speakers or any(s["speaker"] is None for s in expected["segments"]) else [])

    context = browser.new_context(viewport={"width": 900, "height": 1000})
    page = context.new_page()
    page.goto(f"{fusion_server.url}/")
    page.wait_for_selector("#timeline-option:not([hidden])")
    page.check("#timeline-mode")
    page.set_input_files("#audio-file", str(conversation))
    page.click("#predict")
    page.wait_for_selector("#timeline:not([hidden])", timeout=120_000)

    # one lane per speaker, named beside the track, in order of first appearance
    assert len(lanes) == (2 if diarization.available() else 1)
    assert [lane.get_attribute("data-speaker") for lane in page.query_selector_all("#timeline-track .lane")] == lanes
    assert [n.text_content() for n in page.query_selector_all("#timeline-lanes .lane-name")] == lanes
    bands = page.query_selector_all("#timeline-track .segment")
    assert len(bands) == len(expected["segments"])
    track = page.query_selector("#timeline-track").bounding_box()
    for band, segment in zip(bands, expected["segments"]):
        lane = band.evaluate("b => b.parentElement.dataset.speaker")
        assert lane == (segment["speaker"] or "speech")
        box = band.bounding_box()
        assert (box["x"] - track["x"]) / track["width"] == pytest.approx(segment["start"] / expected["duration"], abs=0.01)
        lane_index = lanes.index(lane)
        assert (box["y"] - track["y"]) / track["height"] == pytest.approx(lane_index / len(lanes), abs=0.05)
        # the emotion's colour, the confidence as its opacity, and the words on hover
        confidence = max(segment["probabilities"].values())
        shown = band.evaluate("b => getComputedStyle(b).backgroundColor")  # "rgba(214, 69, 65, 0.9)"
        *rgb, alpha = (float(x) for x in shown[shown.index("(") + 1 : -1].split(","))
        n = int(COLOURS[segment["label"]][1:], 16)
        assert rgb == [n >> 16 & 255, n >> 8 & 255, n & 255] and alpha == pytest.approx(max(0.2, confidence), abs=2e-3)
        assert float(band.get_attribute("data-confidence")) == pytest.approx(confidence, abs=1e-3)
        title = band.get_attribute("title")
        assert segment["text"] in title and segment["label"] in title
        if segment["speaker"]:
            assert segment["speaker"] in title

    # who felt what: one row per speaker with the API's speaking time
    rows = page.query_selector_all("#speaker-summary tbody tr")
    assert [r.get_attribute("data-speaker") for r in rows] == speakers
    for row, summary in zip(rows, expected["speakers"]):
        assert row.query_selector_all("td")[1].text_content() == f"{summary['speaking_s']:.1f} s"

    # the player: its position moves the cursor; clicking a segment plays from its start
    page.wait_for_selector("#timeline-audio:not([hidden])")
    page.wait_for_function("document.getElementById('timeline-audio').readyState >= 1")
    page.evaluate("() => { document.getElementById('timeline-audio').currentTime = 2.0; }")
    page.wait_for_function("Math.abs(parseFloat(document.getElementById('timeline-cursor').style.left) - "
                           f"{100 * 2.0 / expected['duration']}) < 0.5")
    last = expected["segments"][-1]
    bands[-1].click()
    page.wait_for_function(f"document.getElementById('timeline-audio').currentTime >= {last['start'] - 0.05}")
    position = page.evaluate("document.getElementById('timeline-audio').currentTime")
    assert last["start"] - 0.05 <= position <= last["end"] + 0.1
    cursor = page.query_selector("#timeline-cursor").bounding_box()
    assert (cursor["x"] + 1 - track["x"]) / track["width"] >= last["start"] / expected["duration"] - 0.02

    bands[0].hover()
    shot = tmp_path / "timeline_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    context.close()
