"""MicroBatcher: shared passes, a bounded pass size with fair turns, and failures kept to their owner.

The recogniser is the real tiny fusion model; a subclass records what each pass contained and can
hold the model thread until the test has queued everything, so the passes are deterministic.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.service.batcher import MicroBatcher

SECONDS_PER_WINDOW = 2.5  # AcousticConfig's 100 frames at a 25-ms step


class _Recording(EmotionRecognizer):
    """Records every pass as [(prepared, start, stop)], and waits for ``gate`` before the first."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passes: list[list[tuple[object, int, int]]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def window_probabilities(self, parts):
        self.entered.set()
        assert self.gate.wait(20)
        self.passes.append([(p, start, stop) for p, start, stop in parts])
        return super().window_probabilities(parts)


@pytest.fixture
def recorder(fusion_model_dir):
    return _Recording.load(fusion_model_dir)


def tone(seconds: float, pitch: float = 220.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * pitch * t)


def prepared_of(rec, seconds: float, text: str = "I can't believe you did that", pitch: float = 220.0):
    return rec.prepare(tone(seconds, pitch), text, sample_rate=16000)


def run_held(rec: _Recording, batcher: MicroBatcher, first, *rest):
    """Submit ``first`` (it holds the model thread), queue ``rest`` behind it, then let it all run."""
    futures = [batcher.submit(first)]
    assert rec.entered.wait(20)
    futures += [batcher.submit(p) for p in rest]
    rec.gate.set()
    return futures


def test_a_failing_member_fails_alone_and_the_others_get_their_own_answers(recorder, fusion_recognizer):
    good = [prepared_of(recorder, s, pitch=p) for s, p in [(3.0, 220.0), (1.0, 440.0), (6.0, 880.0)]]
    poisoned = prepared_of(recorder, 2.0)
    # Word ids beyond the embedding table: the shared forward pass itself raises (as a bug would).
    poisoned.tokens = np.array([10**6], dtype=np.int64)
    expected = [fusion_recognizer.predict_prepared([prepared_of(fusion_recognizer, s, pitch=p)])[0]
                for s, p in [(3.0, 220.0), (1.0, 440.0), (6.0, 880.0)]]
    batcher = MicroBatcher(recorder, max_windows=32)
    try:
        futures = run_held(recorder, batcher, good[0], good[1], poisoned, good[2])
        results = [f.exception(20) or f.result() for f in futures]
    finally:
        batcher.close()
    error = results[2]
    assert isinstance(error, ValueError) and "token ids must lie in" in str(error)
    for got, want in zip([results[0], results[1], results[3]], expected):
        assert got.label == want.label
        assert got.probabilities == pytest.approx(want.probabilities, abs=1e-6)
    # The shared pass was tried once, then each of its members alone.
    shared = recorder.passes[1]
    assert [id(p) for p, _, _ in shared] == [id(good[1]), id(poisoned), id(good[2])]
    assert [[id(p) for p, _, _ in one] for one in recorder.passes[2:]] == [[id(good[1])], [id(poisoned)], [id(good[2])]]


def test_a_long_recording_is_worked_through_a_slice_per_pass_while_short_ones_finish_first(recorder, fusion_recognizer):
    long = prepared_of(recorder, 40 * SECONDS_PER_WINDOW)  # 40 windows
    shorts = [prepared_of(recorder, 3.0, pitch=p) for p in (330.0, 660.0, 990.0)]
    assert len(long.windows) == 40 and all(len(s.windows) == 2 for s in shorts)
    hold = prepared_of(recorder, 1.0)
    batcher = MicroBatcher(recorder, max_windows=8)
    finished: list[int] = []
    try:
        futures = run_held(recorder, batcher, hold, long, *shorts)
        for i, f in enumerate(futures):
            f.add_done_callback(lambda _, i=i: finished.append(i))
        predictions = [f.result(60) for f in futures]
    finally:
        batcher.close()
    passes = recorder.passes[1:]  # after the holding request's own pass
    assert all(sum(stop - start for _, start, stop in p) <= 8 for p in passes)
    # The short requests all went through in the first pass after the long one arrived...
    first = {id(p): (start, stop) for p, start, stop in passes[0]}
    assert all(first[id(s)] == (0, 2) for s in shorts)
    assert finished.index(1) == len(futures) - 1  # ...and the long one finished last
    # Its windows were computed exactly once, in order, a slice per pass.
    slices = [(start, stop) for p in passes for q, start, stop in p if q is long]
    assert slices[0][0] == 0 and slices[-1][1] == 40
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))
    # Slicing changes nothing: the same answer as one pass over all 40 windows.
    whole = fusion_recognizer.predict_prepared([prepared_of(fusion_recognizer, 40 * SECONDS_PER_WINDOW)])[0]
    assert predictions[1].windows == 40
    assert predictions[1].probabilities == pytest.approx(whole.probabilities, abs=1e-6)


def test_the_oldest_request_advances_every_pass_however_many_short_ones_arrive(recorder):
    long = prepared_of(recorder, 10 * SECONDS_PER_WINDOW)
    shorts = [prepared_of(recorder, 2.0, pitch=200.0 + 50 * i) for i in range(12)]  # 1 window each
    batcher = MicroBatcher(recorder, max_windows=4)
    try:
        futures = run_held(recorder, batcher, long, *shorts)
        for f in futures:
            f.result(60)
    finally:
        batcher.close()
    passes_with_long = [p for p in recorder.passes if any(q is long for q, _, _ in p)]
    # 10 windows, at least one a pass (a quarter of 4): it never waits out the 12 short requests.
    assert recorder.passes.index(passes_with_long[-1]) <= 10
    assert all(any(q is long for q, _, _ in p) for p in recorder.passes[: len(passes_with_long)])


def test_a_transcript_goes_through_the_text_network_once_across_passes(recorder):
    rows: list[int] = []
    recorder.trained.model.text_encoder.register_forward_hook(lambda m, a, out: rows.append(out.shape[0]))
    long = prepared_of(recorder, 20 * SECONDS_PER_WINDOW)
    batcher = MicroBatcher(recorder, max_windows=4)
    recorder.gate.set()
    try:
        prediction = batcher.submit(long).result(60)
    finally:
        batcher.close()
    assert prediction.windows == 20 and len(recorder.passes) == 5
    assert rows == [1]


def test_close_finishes_what_was_submitted(recorder):
    batcher = MicroBatcher(recorder, max_windows=2)
    futures = [batcher.submit(prepared_of(recorder, s)) for s in (3.0, 8.0, 1.0)]
    recorder.gate.set()
    batcher.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert [f.result().windows for f in futures] == [2, 4, 1]


# ---------------------------------------------------------------- announced requests


def test_a_pass_waits_for_an_announced_request_and_takes_it_along(recorder):
    recorder.gate.set()
    batcher = MicroBatcher(recorder, max_windows=32, gather_s=10.0)
    first, second = prepared_of(recorder, 1.0), prepared_of(recorder, 1.0, pitch=440.0)
    try:
        batcher.announce()  # `second` is being prepared while `first` arrives
        started = time.monotonic()
        futures = [batcher.submit(first)]
        time.sleep(0.3)
        futures.append(batcher.submit(second, announced=True))
        for f in futures:
            f.result(20)
        waited = time.monotonic() - started
    finally:
        batcher.close()
    assert [[id(p) for p, _, _ in one] for one in recorder.passes] == [[id(first), id(second)]]
    assert waited < 5  # it went as soon as the announced request came, not at the 10-s bound


def test_a_withdrawn_or_absent_announcement_does_not_hold_the_pass(recorder):
    recorder.gate.set()
    batcher = MicroBatcher(recorder, max_windows=32, gather_s=10.0)
    try:
        started = time.monotonic()
        batcher.submit(prepared_of(recorder, 1.0)).result(20)  # nothing announced: no wait at all
        alone = time.monotonic() - started
        batcher.announce()
        started = time.monotonic()
        future = batcher.submit(prepared_of(recorder, 1.0))
        time.sleep(0.3)
        batcher.withdraw()  # its preparation failed: the pass goes without it
        future.result(20)
        withdrawn = time.monotonic() - started
    finally:
        batcher.close()
    assert alone < 5 and withdrawn < 5
    assert len(recorder.passes) == 2


def test_the_wait_for_announced_requests_is_bounded(recorder):
    recorder.gate.set()
    batcher = MicroBatcher(recorder, max_windows=32, gather_s=0.2)
    try:
        batcher.announce()  # never comes
        started = time.monotonic()
        batcher.submit(prepared_of(recorder, 1.0)).result(20)
        waited = time.monotonic() - started
    finally:
        batcher.close()
    assert 0.2 <= waited < 5
