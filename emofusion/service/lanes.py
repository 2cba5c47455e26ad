"""Where a request's CPU work runs: lanes of worker threads, each of bounded concurrency and queue.

- ``ordinary``: ``slots`` threads. Every predict with a transcript starts here: the worker reads the
  header, moves a long recording to the long lane, else decodes and featurises and hands the result
  to the `MicroBatcher`; the event loop hears back once, when the prediction (or the request's own
  error) is ready. Each hop between threads costs a wake-up and a turn of the GIL: an earlier
  version went back to the event loop after the header check and again after the features (three
  wake-ups a request). Measured per thread under `bench_service.py`'s load (3-s request, 8 clients,
  shared machine): the event loop's CPU per request fell from 1.2-1.4 ms to 0.8-0.9 ms, the
  workers' from 3.0-3.2 ms to 2.8 ms.
- ``transcribe``: predicts the model must transcribe first (no transcript sent, the model reads
  text): Whisper costs ~100x an ordinary request, and with 1 request in 6 transcribed at 16
  clients, transcription on the ordinary workers pushed the ordinary requests' p95 to 3.2-5.2 s on
  2 cores.
- ``long``: predicts of recordings over ``HEAVY_AUDIO_SECONDS`` (app.py), decoded one at a time.
- ``timeline``: whole-recording timelines, one at a time. Not shared with long predicts: behind two
  5-min timelines a 60-s predict waited 35 s (1 s when idle).

The three lanes of long work run at a lower CPU priority (nice +10, `_background`), so a
transcription never takes a core from an ordinary request that needs it, yet uses any core left
idle. Each lane accepts at most ``workers + queue`` requests; beyond that `LaneFull` (503 with
Retry-After): an unbounded queue only turns overload into timeouts, after the work was done.

Work whose client has gone is stopped (`Lanes.abandon`): still queued, it is cancelled; running,
it stops at its next seam (`emofusion.audio_stream.abandon_when`: every decoded block and every
transcribed utterance).
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from emofusion.audio_stream import abandon_when, check_abandoned
from emofusion.inference.recognizer import PreparedInput, Prediction
from emofusion.service.batcher import MicroBatcher

# Requests waiting for a worker, beyond those running, per lane. Ordinary requests are cheap (a
# queue of 256 drains in about a second); long work is bounded tightly: 4 queued transcriptions are
# ~2-4 s of Whisper, 2 queued timelines or long predicts minutes of audio.
ORDINARY_QUEUE = 256
TRANSCRIBE_QUEUE = 16
LONG_QUEUE = 2
TIMELINE_QUEUE = 2
# Niceness of the long-work lanes' threads (and of the threads they start, e.g. CTranslate2's).
BACKGROUND_NICE = 10


class LaneFull(Exception):
    """A lane already holds as many requests as it accepts (the service answers 503)."""

    def __init__(self, lane: str, retry_after_s: int) -> None:
        super().__init__(f"the server is busy: the {lane} lane is full; retry in {retry_after_s} s")
        self.lane = lane
        self.retry_after_s = retry_after_s


class Lane:
    """Worker threads with a bounded queue.

    Arguments:
        name: how messages name it.
        workers: requests run at once.
        queue: requests accepted beyond ``workers`` (waiting); more raise `LaneFull`.
        background: run at a lower CPU priority (`BACKGROUND_NICE`), where the system allows.
    """

    def __init__(self, name: str, workers: int, queue: int, *, background: bool = False) -> None:
        self.name = name
        self.workers = workers
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f"emofusion-{name}",
            initializer=_background if background else None,
        )
        self._lock = threading.Lock()
        self._held = 0  # accepted and not finished (running or waiting)
        self._waiting: dict[Future, threading.Event | None] = {}
        self._mean_s = 1.0  # running mean of a request's time in a worker, for Retry-After

    @property
    def held(self) -> int:
        return self._held

    def submit(self, fn: Callable, *args, abandoned: threading.Event | None = None) -> Future:
        """``fn(*args)`` in a worker, with ``abandoned`` as its stop signal (`abandon_when`).

        Raises:
            LaneFull: ``workers + queue`` requests are already held.
            RuntimeError: the lane is closed.
        """
        with self._lock:
            if self._held >= self.capacity:
                raise LaneFull(self.name, self.retry_after())
            self._held += 1
        try:
            future = self._executor.submit(self._run, fn, args, abandoned)
        except BaseException:
            with self._lock:
                self._held -= 1
            raise
        if abandoned is not None:  # a running one is not cancelled (`cancel` refuses it) but stops at a seam
            with self._lock:
                self._waiting[future] = abandoned
        future.add_done_callback(self._release)
        return future

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the held requests' expected time, spread over the workers."""
        return max(1, min(600, math.ceil(self._mean_s * max(1, self._held) / self.workers)))

    def abandon(self, event: threading.Event) -> int:
        """Cancel the waiting requests whose stop signal is ``event``; returns how many."""
        with self._lock:
            mine = [f for f, e in self._waiting.items() if e is event]
        return sum(f.cancel() for f in mine)

    def _run(self, fn: Callable, args: tuple, abandoned: threading.Event | None):
        started = time.perf_counter()
        try:
            with abandon_when(abandoned):
                check_abandoned()
                return fn(*args)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._mean_s = 0.8 * self._mean_s + 0.2 * elapsed

    def _release(self, future: Future) -> None:
        with self._lock:
            self._held -= 1
            self._waiting.pop(future, None)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class Lanes:
    """Arguments:
        slots: ordinary requests decoded at once (more would only time-slice the same cores).
        batcher: the model thread that every prepared request goes to.
        queues: requests accepted beyond the running ones, per lane ("ordinary", "transcribe",
            "long", "timeline"); defaults: the module's constants.
    """

    def __init__(self, slots: int, batcher: MicroBatcher, queues: dict[str, int] | None = None) -> None:
        q = {"ordinary": ORDINARY_QUEUE, "transcribe": TRANSCRIBE_QUEUE, "long": LONG_QUEUE,
             "timeline": TIMELINE_QUEUE, **(queues or {})}
        self.batcher = batcher
        self.ordinary = Lane("ordinary", slots, q["ordinary"])
        self.transcribe = Lane("transcription", 1, q["transcribe"], background=True)
        self.long = Lane("long-recording", 1, q["long"], background=True)
        self.timeline = Lane("timeline", 1, q["timeline"], background=True)
        self._all = (self.ordinary, self.transcribe, self.long, self.timeline)

    def predict(
        self, is_heavy: Callable[[], bool], prepare: Callable[[], PreparedInput], *,
        transcribe: bool = False, abandoned: threading.Event | None = None,
    ) -> "Future[Prediction]":
        """The prediction of one request: ``is_heavy()`` picks the lane, ``prepare()`` runs in it.

        Arguments:
            transcribe: ``prepare`` will transcribe the recording: it runs in the transcription lane.
            abandoned: set when the client has gone (`abandon`): the work stops at its next seam.

        Raises:
            LaneFull: the first lane is full (a long recording's lane being full is the future's).
        Any error ``prepare`` raises (an unreadable upload, a refused transcript...) is the future's.
        """
        outcome: Future = Future()

        def relay(done: Future) -> None:
            error = done.exception()
            outcome.set_exception(error) if error is not None else outcome.set_result(done.result())

        def run(lane: Lane) -> None:
            announced = False
            try:
                if lane is self.ordinary and is_heavy():
                    self.long.submit(run, self.long, abandoned=abandoned).add_done_callback(_failed_to(outcome))
                    return
                if lane is self.ordinary:  # a short request: worth the model thread's wait (batcher.py)
                    self.batcher.announce()
                    announced = True
                prepared = prepare()
                check_abandoned()
                announced = False
                self.batcher.submit(prepared, announced=lane is self.ordinary).add_done_callback(relay)
            except BaseException as exc:  # the request's own error, never a hung request
                if announced:
                    self.batcher.withdraw()
                outcome.set_exception(exc)

        first = self.transcribe if transcribe else self.ordinary
        try:
            first.submit(run, first, abandoned=abandoned).add_done_callback(_failed_to(outcome))
        except RuntimeError as exc:  # shut down
            outcome.set_exception(exc)
        return outcome

    def run_timeline(self, fn: Callable, *args, abandoned: threading.Event | None = None) -> Future:
        """``fn(*args)`` in the timeline lane. Raises `LaneFull` when it is full."""
        return self.timeline.submit(fn, *args, abandoned=abandoned)

    def abandon(self, event: threading.Event) -> None:
        """The client of the work signalled by ``event`` has gone: cancel what waits, stop what runs."""
        event.set()
        for lane in self._all:
            lane.abandon(event)

    def close(self) -> None:
        """Finish the work already accepted, then stop the threads."""
        for lane in self._all:
            lane.close()


def _failed_to(outcome: Future) -> Callable[[Future], None]:
    """A lane future's callback: its cancellation or an error outside ``run`` becomes ``outcome``'s."""

    def check(done: Future) -> None:
        if outcome.done():
            return
        if done.cancelled():
            outcome.cancel()
        elif done.exception() is not None:
            outcome.set_exception(done.exception())

    return check


def _background() -> None:
    """Lower this worker thread's CPU priority (Linux: niceness is per thread, inherited by the
    threads it starts). Elsewhere, or where refused, the lane runs at normal priority."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError):
        pass
