"""Where a request's CPU work runs: decoding and features in worker threads, the model in the batcher.

Two lanes of worker threads: ``slots`` threads for ordinary requests and one for recordings whose
header promises long decoding (`is_heavy`), so a 3-s request never queues behind the decoding of
ten-minute ones, and the long ones are decoded one at a time. `Lanes.predict` runs one request as
one chain of threads: an ordinary worker reads the header, moves a long recording to the long lane,
decodes and featurises, and hands the result to the `MicroBatcher`; the event loop hears back once,
when the prediction (or the request's own error) is ready. Each hop between threads costs a wake-up
and a turn of the GIL: an earlier version went back to the event loop after the header check and
again after the features (three wake-ups a request) and ran the content-type check in the thread
pool too. Measured per thread under `bench_service.py`'s load (3-s request, 8 clients, shared
machine): the event loop's CPU per request fell from 1.2-1.4 ms to 0.8-0.9 ms, the workers' from
3.0-3.2 ms to 2.8 ms.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from emofusion.inference.recognizer import PreparedInput, Prediction
from emofusion.service.batcher import MicroBatcher


class Lanes:
    """Arguments:
        slots: ordinary requests decoded at once (more would only time-slice the same cores).
        batcher: the model thread that every prepared request goes to.
    """

    def __init__(self, slots: int, batcher: MicroBatcher) -> None:
        self.batcher = batcher
        self.ordinary = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="emofusion-prepare")
        self.long = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emofusion-long")

    def predict(self, is_heavy: Callable[[], bool], prepare: Callable[[], PreparedInput]) -> "Future[Prediction]":
        """The prediction of one request: ``is_heavy()`` picks the lane, ``prepare()`` runs in it.

        Any error either raises (an unreadable upload, a refused transcript...) is the future's.
        """
        outcome: Future = Future()

        def relay(done: Future) -> None:
            error = done.exception()
            outcome.set_exception(error) if error is not None else outcome.set_result(done.result())

        def run(in_long_lane: bool) -> None:
            announced = False
            try:
                if not in_long_lane and is_heavy():
                    self.long.submit(run, True)
                    return
                if not in_long_lane:  # a short request: worth the model thread's wait (batcher.py)
                    self.batcher.announce()
                    announced = True
                prepared = prepare()
                announced = False
                self.batcher.submit(prepared, announced=not in_long_lane).add_done_callback(relay)
            except BaseException as exc:  # the request's own error, never a hung request
                if announced:
                    self.batcher.withdraw()
                outcome.set_exception(exc)

        try:
            self.ordinary.submit(run, False)
        except RuntimeError as exc:  # shut down
            outcome.set_exception(exc)
        return outcome

    def run_long(self, fn: Callable, *args) -> Future:
        """``fn(*args)`` in the long lane (whole-recording work such as a timeline)."""
        return self.long.submit(fn, *args)

    def close(self) -> None:
        """Finish the work already accepted, then stop the threads."""
        self.ordinary.shutdown(wait=True)
        self.long.shutdown(wait=True)
