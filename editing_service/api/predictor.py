"""Serving predictions: loaded models kept in a small LRU cache, and adaptive batching per model.

Concurrent requests for the same model are merged: the first request opens a batch, others join it
until `max_batch` texts wait or `max_latency_ms` has passed, then one forward pass answers them.
A forward pass takes at most `max_batch` texts, at most a `chunk` of them from each request in turn
(round robin), so a large request is answered over several passes and the small requests that arrive
meanwhile ride in the very next pass instead of waiting for all of it. Forward passes run on one dedicated thread, which leaves the event loop free, runs one pass at a
time (requests never oversubscribe the device) and is always the same thread: the CPU math library
keeps a team of helper threads per calling thread, and on a rotating thread pool each pass would wake
a cold team (measured on 2 cores: about 5 ms more per batch-1 request, and an edit's small products
cost twice as much).

The process's long-lived objects (libraries, loaded models: over half a million) are frozen out of the
garbage collector's full collections (`settle_heap`), which otherwise stall every request in flight for
a quarter of a second each time one runs.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from editing_service.edit import load_model
from editing_service.model import TextClassifier

T = TypeVar("T")


def settle_heap() -> None:
    """Collect garbage once, then freeze what survives out of later full collections.

    Call it when long-lived objects have just been made (start-up, a model load). Frozen objects are
    still freed when their last reference goes; thawing first lets this collection also reclaim the
    reference cycles of anything dropped since the last call (an evicted model, a finished job).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelCache:
    """Up to `size` loaded models by folder, least recently used dropped first."""

    def __init__(self, size: int, device: torch.device, loader: Callable[..., TextClassifier] = load_model) -> None:
        self.size, self.device, self.loader = size, device, loader
        self._models: OrderedDict[Path, TextClassifier] = OrderedDict()
        self._lock = threading.Lock()

    def loaded(self, folder: Path) -> TextClassifier | None:
        """The model of `folder` if it is loaded (marked recently used), else None; never loads."""
        with self._lock:
            model = self._models.get(folder)
            if model is not None:
                self._models.move_to_end(folder)
            return model

    def get(self, folder: Path) -> TextClassifier:
        """The model of `folder`, loaded first if needed (slow: call it off the event loop)."""
        with self._lock:
            if folder in self._models:
                self._models.move_to_end(folder)
                return self._models[folder]
        model = self.loader(folder, device=self.device)
        with self._lock:
            self._models[folder] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        settle_heap()
        return model


@dataclass(eq=False)
class _Request:
    """One predict call: its texts, how many are scheduled and answered, and where answers go."""

    texts: list[str]
    future: asyncio.Future[np.ndarray]
    scheduled: int = 0
    answered: int = 0
    out: np.ndarray | None = None

    @property
    def unscheduled(self) -> int:
        return len(self.texts) - self.scheduled


Slice = tuple[_Request, int, int]  # a request and the range of its texts in one forward pass


@dataclass(eq=False)
class _Lane:
    """The requests waiting for one model, served by one pump task at a time."""

    model: TextClassifier
    waiting: deque[_Request] = field(default_factory=deque)
    n_waiting: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None


def take_round_robin(waiting: deque[_Request], *, max_batch: int, chunk: int) -> list[Slice]:
    """The next forward pass: up to `max_batch` texts, at most `chunk` from each request per turn, in
    turn from the head of `waiting`; a request with texts left goes to the back. Requests whose caller
    has gone (cancelled) are dropped."""
    taken: list[Slice] = []
    room = max_batch
    while room > 0 and waiting:
        request = waiting.popleft()
        if request.future.done():
            continue
        n = min(chunk, room, request.unscheduled)
        taken.append((request, request.scheduled, request.scheduled + n))
        request.scheduled += n
        room -= n
        if request.unscheduled:
            waiting.append(request)
    return taken


class AdaptiveBatcher:
    """Merges concurrent `predict_proba` calls for one model into shared, fairly filled forward passes."""

    def __init__(self, cache: ModelCache, *, max_batch: int, max_latency_ms: float, chunk: int | None = None) -> None:
        self.cache, self.max_batch, self.max_latency = cache, max_batch, max_latency_ms / 1000
        self.chunk = chunk or max(1, max_batch // 4)
        self._lanes: dict[Path, _Lane] = {}
        self._forward_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")

    async def predict_proba(self, folder: Path, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """(class names, probabilities [len(texts), C]) of the model saved in `folder`."""
        model = self.cache.loaded(folder)
        if model is None:
            model = await asyncio.to_thread(self.cache.get, folder)  # raises for a bad folder
        loop = asyncio.get_running_loop()
        request = _Request(list(texts), loop.create_future())
        lane = self._lanes.get(folder)
        if lane is None:
            lane = self._lanes[folder] = _Lane(model)
        lane.waiting.append(request)
        lane.n_waiting += len(texts)
        lane.arrived.set()
        if lane.pump is None:
            lane.pump = loop.create_task(self._pump(folder, lane))
        return list(lane.model.classes), await request.future

    async def _gather(self, lane: _Lane) -> None:
        """Wait up to `max_latency` for `max_batch` texts to be waiting."""
        deadline = asyncio.get_running_loop().time() + self.max_latency
        while lane.n_waiting < self.max_batch:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            lane.arrived.clear()
            try:
                await asyncio.wait_for(lane.arrived.wait(), left)
            except TimeoutError:
                return

    async def _pump(self, folder: Path, lane: _Lane) -> None:
        """Forward passes for `lane` until nothing waits, then the lane closes."""
        try:
            while lane.waiting:
                await self._gather(lane)
                taken = take_round_robin(lane.waiting, max_batch=self.max_batch, chunk=self.chunk)
                lane.n_waiting = sum(r.unscheduled for r in lane.waiting)
                if taken:
                    await self._answer(lane.model, taken)
        finally:
            lane.pump = None
            if self._lanes.get(folder) is lane:
                del self._lanes[folder]  # later requests open the next lane
            for request in lane.waiting:  # only when the pump itself was cancelled
                if not request.future.done():
                    request.future.cancel()

    async def _answer(self, model: TextClassifier, taken: list[Slice]) -> None:
        texts = [t for request, start, stop in taken for t in request.texts[start:stop]]
        try:
            proba = await asyncio.get_running_loop().run_in_executor(self._forward_thread, self._forward, model, texts)
        except Exception as err:
            for request, _, _ in taken:
                request.scheduled = len(request.texts)  # nothing more of it is run
                if not request.future.done():
                    request.future.set_exception(err)
            return
        row = 0
        for request, start, stop in taken:
            if request.out is None:
                request.out = np.empty((len(request.texts), proba.shape[1]), dtype=proba.dtype)
            request.out[start:stop] = proba[row : row + stop - start]
            row += stop - start
            request.answered += stop - start
            if request.answered == len(request.texts) and not request.future.done():
                request.future.set_result(request.out)

    async def run_on_forward_thread(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on the forward thread, between batched passes: a pass that reads a model's sites
        through hooks never overlaps another pass of the same model."""
        return await asyncio.get_running_loop().run_in_executor(self._forward_thread, fn, *args)

    def _forward(self, model: TextClassifier, texts: list[str]) -> np.ndarray:
        # Sub-batches of `chunk` texts, grouped by length: a short text is padded to its neighbours'
        # length, not to the longest text of the pass (a large request's clipped texts).
        return model.predict_proba(texts, batch_size=self.chunk)

    def close(self) -> None:
        """Stop the forward thread once the pass under way (if any) ends; queued passes are dropped."""
        self._forward_thread.shutdown(wait=False, cancel_futures=True)
