"""Run the model for concurrent requests on one thread: shared passes, fair turns, isolated failures.

Requests are decoded and featurised in parallel in the server's worker threads; the model itself
runs on one dedicated thread. Whenever it is free it takes everything that queued while it was busy
and runs one forward pass over up to ``max_windows`` windows (2.5-s pieces of the recordings).
A lone request pays no extra latency, while under load the per-request model cost falls
several-fold: an LSTM's cost is per time step and grows little with the batch.

**Announced requests.** A request whose features are being computed right now is announced
(`announce`) and arrives with its `submit`. When the model thread is about to start a pass while
announced requests are still on their way, it waits for them, up to ``gather_s``: under load the
requests trickle in one by one from the worker threads, and a pass taken at each arrival ran one or
two of them at a time, at nearly the full cost of a pass each (shipped model, 3-s utterances: one
utterance 6.0 ms of CPU in PyTorch, 2.6 ms with onnxruntime int8; four together 2.9 and 1.6 ms
each). Nothing is announced when the server is idle, so a lone request never waits.

Two rules keep one request from harming another:

* **Turns.** A pass holds at most ``max_windows`` windows. The requests with the fewest windows left
  go first, and the oldest request always gets at least a quarter of the pass, so a ten-minute
  recording (240 windows) is worked through a slice per pass while the 3-s requests that arrive
  meanwhile go through in the next pass instead of waiting for all of it.
* **Failures.** If a pass fails, each of its requests is run again on its own: only the request
  whose input (or a bug it triggers) fails gets the error, and an error never carries another
  request's data.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import torch

from emofusion.inference.recognizer import EmotionRecognizer, PreparedInput, WindowSlice

_STOP = object()
_WAKE = object()  # re-check the announced count (one was withdrawn)
# The longest a pass waits for requests still being prepared: about one utterance's decoding and
# features (1.8 ms for 3 s of audio on one core), with room for a busy machine.
GATHER_S = 0.005


@dataclass
class _Job:
    prepared: PreparedInput
    future: Future
    done: int = 0  # windows computed so far
    model_ms: float = 0.0  # time of the passes it took part in
    probabilities: list[np.ndarray] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return len(self.prepared.windows) - self.done


class MicroBatcher:
    """Arguments:
        recognizer: the model; its `window_probabilities` runs every pass.
        max_windows: windows per forward pass. A pass's duration is what a newly arrived request
            may have to wait before its own turn: 32 windows of the paper-size model take about
            0.15 s on one core.
        torch_threads: intra-op threads of the model thread (None leaves torch's setting).
        gather_s: the longest a pass waits for announced requests (module docstring).
    """

    def __init__(
        self, recognizer: EmotionRecognizer, *, max_windows: int = 32, torch_threads: int | None = 1,
        gather_s: float = GATHER_S,
    ):
        if max_windows < 1:
            raise ValueError(f"max_windows must be at least 1, got {max_windows}")
        self.recognizer = recognizer
        self.max_windows = max_windows
        self.torch_threads = torch_threads
        self.passes = 0
        self.windows = 0
        self.gather_s = gather_s
        self._queue: queue.Queue = queue.Queue()
        self._announced = 0  # requests being prepared that will be submitted (or withdrawn)
        self._announce_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="emofusion-model", daemon=True)
        self._thread.start()

    def announce(self) -> None:
        """A request is being prepared: it will come with ``submit(..., announced=True)`` or `withdraw`."""
        with self._announce_lock:
            self._announced += 1

    def withdraw(self) -> None:
        """An announced request will not come (its preparation failed)."""
        with self._announce_lock:
            self._announced -= 1
        self._queue.put(_WAKE)  # a pass may be waiting for it

    def submit(self, prepared: PreparedInput, *, announced: bool = False) -> Future:
        """A future resolving to the `Prediction` of ``prepared`` (or raising its own error)."""
        future: Future = Future()
        # Under the lock: the model thread never sees the request neither announced nor queued.
        with self._announce_lock:
            if announced:
                self._announced -= 1
            if not prepared.windows:
                future.set_exception(ValueError("a prepared input without windows"))
            else:
                self._queue.put(_Job(prepared, future))
        return future

    def close(self) -> None:
        """Finish the requests already submitted, then stop the model thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    # ------------------------------------------------------------------ the model thread

    def _run(self) -> None:
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        active: list[_Job] = []
        stopping = False
        try:
            while active or not stopping:
                # Block only when idle; otherwise take whatever arrived during the last pass.
                block = not active
                while True:
                    try:
                        item = self._queue.get(block=block)
                    except queue.Empty:
                        break
                    block = False
                    if item is _STOP:
                        stopping = True
                    elif item is not _WAKE:
                        active.append(item)
                if active and not stopping:
                    self._gather(active)
                if active:
                    self._pass(self._plan(active))
                    active = [job for job in active if not job.future.done()]
        except BaseException as exc:  # never leave a request hanging
            for job in active:
                if not job.future.done():
                    job.future.set_exception(exc)
            raise

    def _gather(self, active: list[_Job]) -> None:
        """Wait (at most ``gather_s``) for announced requests while the pass has room for them."""
        deadline = time.monotonic() + self.gather_s
        while self._announced > 0 and sum(job.remaining for job in active) < self.max_windows:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                return
            if item is _STOP:
                self._queue.put(_STOP)  # seen by the next round, after this pass
                return
            if item is not _WAKE:
                active.append(item)

    def _plan(self, active: list[_Job]) -> list[tuple[_Job, int]]:
        """(job, windows to compute now) for the next pass, within ``max_windows``."""
        budget = self.max_windows
        plan: dict[int, int] = {}
        oldest = active[0]  # `active` keeps arrival order
        # The oldest request always advances, so a stream of short ones cannot starve a long one.
        plan[0] = min(oldest.remaining, max(1, budget // 4))
        budget -= plan[0]
        # Then the fewest windows left first: short requests finish in this pass.
        for i in sorted(range(len(active)), key=lambda i: active[i].remaining):
            if budget <= 0:
                break
            take = min(active[i].remaining - plan.get(i, 0), budget)
            if take > 0:
                plan[i] = plan.get(i, 0) + take
                budget -= take
        return [(active[i], n) for i, n in sorted(plan.items())]

    def _pass(self, plan: list[tuple[_Job, int]]) -> None:
        self.passes += 1
        try:
            self._compute(plan)
        except BaseException:
            # One member's failure must not become the others': run each on its own.
            for job, count in plan:
                try:
                    self._compute([(job, count)])
                except BaseException as exc:
                    job.future.set_exception(exc)

    def _compute(self, plan: list[tuple[_Job, int]]) -> None:
        parts: list[WindowSlice] = [(job.prepared, job.done, job.done + count) for job, count in plan]
        t0 = time.perf_counter()
        probabilities = self.recognizer.window_probabilities(parts)
        elapsed = (time.perf_counter() - t0) * 1e3
        self.windows += sum(count for _, count in plan)
        for (job, count), probs in zip(plan, probabilities):
            job.probabilities.append(probs)
            job.done += count
            job.model_ms += elapsed
            if job.remaining == 0:
                try:
                    prediction = self.recognizer.combine(job.prepared, np.concatenate(job.probabilities), job.model_ms)
                except BaseException as exc:
                    job.future.set_exception(exc)
                else:
                    job.future.set_result(prediction)
