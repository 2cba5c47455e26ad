"""Gather concurrent requests into one model forward pass (opportunistic micro-batching).

Requests are decoded and featurised in parallel in the server's worker threads; the model itself
runs on one dedicated thread. Whenever it is free it takes *everything* that queued while it was
busy (up to ``max_batch``) and predicts it in one pass. Nothing waits on a timer, so a lone request
pays no extra latency, while under load the per-request model cost falls several-fold: an LSTM's
cost is per time step and grows little with the batch.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

import torch

from emofusion.inference.recognizer import EmotionRecognizer, Prediction, PreparedInput

_STOP = object()


class MicroBatcher:
    def __init__(self, recognizer: EmotionRecognizer, *, max_batch: int = 32, torch_threads: int | None = 1):
        self.recognizer = recognizer
        self.max_batch = max_batch
        self.torch_threads = torch_threads
        self.batches = 0
        self.items = 0
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="emofusion-model", daemon=True)
        self._thread.start()

    def submit(self, prepared: PreparedInput) -> Future:
        """A future resolving to the `Prediction` of ``prepared``."""
        future: Future = Future()
        self._queue.put((prepared, future))
        return future

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)  # finish this batch, then stop
                    break
                batch.append(item)
            self._predict(batch)

    def _predict(self, batch: list[tuple[PreparedInput, Future]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            predictions: list[Prediction] = self.recognizer.predict_prepared([p for p, _ in batch])
        except BaseException as exc:  # never leave a request hanging
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), prediction in zip(batch, predictions):
            future.set_result(prediction)
