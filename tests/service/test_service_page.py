"""The web page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Upload + transcript -> the label the API gives for the same input and one bar per class; a
submission without audio -> the API's message in the error box; a microphone recording (Chromium's
fake capture device, a beeping tone) -> a WAV the server decodes -> a result.
"""

from __future__ import annotations

import httpx
import pytest
from conftest import LABELS

# A fake microphone that plays a tone, and no permission prompt for it.
EXTRA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

pytestmark = pytest.mark.slow


@pytest.fixture
def page(browser, fusion_server):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{fusion_server.url}/")
    page.wait_for_selector("#model-info:has-text('M-CBLA-BLR')")
    yield page
    context.close()


def test_upload_and_transcript_show_the_prediction(page, fusion_server, paired_utterances, tmp_path_factory):
    u = paired_utterances[1]
    with u.audio.open("rb") as f:
        expected = httpx.post(f"{fusion_server.url}/v1/predict", files={"audio": (u.audio.name, f, "audio/flac")},
                              data={"text": u.text}, timeout=30).json()

    page.set_input_files("#audio-file", str(u.audio))
    page.fill("#text", u.text)
    page.click("#predict")
    page.wait_for_selector("#result:not([hidden])", timeout=20_000)

    assert page.text_content("#label").split(" ")[0] == expected["label"]
    rows = page.query_selector_all("#bars .bar-row")
    assert [r.get_attribute("data-label") for r in rows] == list(LABELS)
    top = page.query_selector_all("#bars .bar-row.top")
    assert [r.get_attribute("data-label") for r in top] == [expected["label"]]
    for row in rows:
        shown = float(row.query_selector(".bar-value").text_content().rstrip("%"))
        assert shown == pytest.approx(100 * expected["probabilities"][row.get_attribute("data-label")], abs=0.051)
    assert "ms on the server" in page.text_content("#latency")
    assert page.is_hidden("#error") and page.is_hidden("#playback")  # no empty player without a recording
    shot = tmp_path_factory.mktemp("page") / "result.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0


def test_missing_audio_shows_the_api_error(page, tmp_path):
    page.fill("#text", "Where is everybody?")
    page.click("#predict")
    page.wait_for_selector("#error:not([hidden])", timeout=20_000)
    assert "no audio file" in page.text_content("#error")
    assert page.is_hidden("#result")
    page.screenshot(path=str(tmp_path / "error.png"), full_page=True)


def test_microphone_recording_is_sent_as_wav(page, fusion_server):
    page.click("#record")
    page.wait_for_selector("#record-status:has-text('Recording')")
    page.wait_for_timeout(1500)
    page.click("#stop")
    page.wait_for_selector("#record-status:has-text('Recorded')")
    seconds = float(page.text_content("#record-status").split()[1])
    assert 1.0 <= seconds <= 5.0
    page.fill("#text", "I can't believe it.")
    page.click("#predict")
    page.wait_for_selector("#result:not([hidden]), #error:not([hidden])", timeout=20_000)
    assert page.is_hidden("#error"), page.text_content("#error")
    assert page.text_content("#label").split(" ")[0] in LABELS
    assert len(page.query_selector_all("#bars .bar-row")) == len(LABELS)


def test_timeline_draws_one_band_per_utterance_with_words_and_probabilities_on_hover(
    asr_extra, page, fusion_server, shared_data, tmp_path
):
    import numpy as np
    import soundfile as sf
    from conversation import trim_to_speech

    from emofusion.audio import load_audio

    clips = [trim_to_speech(load_audio(shared_data / "ravdess" / "Actor_03" / name).samples)
             for name in ("03-01-05-02-01-01-03.flac", "03-01-04-01-02-01-03.flac")]
    gap = 1e-3 * np.random.default_rng(0).standard_normal(16_000)
    path = tmp_path / "call.wav"
    sf.write(path, np.concatenate([gap, clips[0], gap, clips[1], gap]), 16_000, subtype="PCM_16")
    expected = httpx.post(f"{fusion_server.url}/v1/timeline", files={"audio": ("call.wav", path.read_bytes(), "audio/wav")},
                          timeout=120).json()
    assert len(expected["segments"]) == 2

    page.wait_for_selector("#timeline-option:not([hidden])")
    page.check("#timeline-mode")
    page.set_input_files("#audio-file", str(path))
    page.click("#predict")
    page.wait_for_selector("#timeline:not([hidden])", timeout=120_000)

    bands = page.query_selector_all("#timeline-track .segment")
    assert len(bands) == 2
    track = page.query_selector("#timeline-track").bounding_box()
    for band, segment in zip(bands, expected["segments"]):
        box = band.bounding_box()
        # placed and sized along the time axis by the segment's start and end
        assert (box["x"] - track["x"]) / track["width"] == pytest.approx(segment["start"] / expected["duration"], abs=0.01)
        assert box["width"] / track["width"] == pytest.approx((segment["end"] - segment["start"]) / expected["duration"], abs=0.01)
        assert band.get_attribute("data-label") == segment["label"]
        band.hover()
        page.wait_for_selector("#segment-detail:not([hidden])")
        detail = page.text_content("#segment-detail")
        assert segment["text"] in detail
        for label, p in segment["probabilities"].items():
            assert f"{100 * p:.1f}%" in page.text_content(f"#segment-detail .detail-prob[data-label='{label}']")
    # the overall bars: the duration-weighted probabilities the API gave
    assert page.text_content("#label").split(" ")[0] == expected["label"]
    for row in page.query_selector_all("#bars .bar-row"):
        shown = float(row.query_selector(".bar-value").text_content().rstrip("%"))
        assert shown == pytest.approx(100 * expected["probabilities"][row.get_attribute("data-label")], abs=0.051)
    bands[0].hover()
    shot = tmp_path / "timeline.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
