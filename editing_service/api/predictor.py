"""Serving predictions: loaded models kept in a small LRU cache, and adaptive batching per model.

Concurrent requests for the same model are merged: the first request opens a batch, others join it
until it holds `max_batch` texts or `max_latency_ms` has passed, then one forward pass answers them
all. Forward passes run on one dedicated thread, which leaves the event loop free, runs one pass at a
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
from collections import OrderedDict
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


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future[np.ndarray]


@dataclass
class _Queue:
    items: list[_Pending] = field(default_factory=list)
    n_texts: int = 0
    full: asyncio.Event = field(default_factory=asyncio.Event)


class AdaptiveBatcher:
    """Merges concurrent `predict_proba` calls for one model into shared forward passes."""

    def __init__(self, cache: ModelCache, *, max_batch: int, max_latency_ms: float) -> None:
        self.cache, self.max_batch, self.max_latency = cache, max_batch, max_latency_ms / 1000
        self._queues: dict[Path, _Queue] = {}
        self._forward_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")

    async def predict_proba(self, folder: Path, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """(class names, probabilities [len(texts), C]) of the model saved in `folder`."""
        model = self.cache.loaded(folder)
        if model is None:
            model = await asyncio.to_thread(self.cache.get, folder)  # raises for a bad folder
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(folder)
        if queue is None:
            queue = self._queues[folder] = _Queue()
            asyncio.get_running_loop().create_task(self._flush_later(folder, queue, model))
        queue.items.append(_Pending(texts, future))
        queue.n_texts += len(texts)
        if queue.n_texts >= self.max_batch:
            queue.full.set()
        return list(model.classes), await future

    async def _flush_later(self, folder: Path, queue: _Queue, model: TextClassifier) -> None:
        try:
            await asyncio.wait_for(queue.full.wait(), self.max_latency)
        except TimeoutError:
            pass
        if self._queues.get(folder) is queue:
            del self._queues[folder]  # later requests open the next batch
        texts = [t for item in queue.items for t in item.texts]
        try:
            proba = await asyncio.get_running_loop().run_in_executor(self._forward_thread, self._forward, model, texts)
        except Exception as err:
            for item in queue.items:
                item.future.set_exception(err)
            return
        start = 0
        for item in queue.items:
            item.future.set_result(proba[start : start + len(item.texts)])
            start += len(item.texts)

    async def run_on_forward_thread(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on the forward thread, between batched passes: a pass that reads a model's sites
        through hooks never overlaps another pass of the same model."""
        return await asyncio.get_running_loop().run_in_executor(self._forward_thread, fn, *args)

    def _forward(self, model: TextClassifier, texts: list[str]) -> np.ndarray:
        return model.predict_proba(texts, batch_size=max(self.max_batch, 1))

    def close(self) -> None:
        """Stop the forward thread once the pass under way (if any) ends; queued passes are dropped."""
        self._forward_thread.shutdown(wait=False, cancel_futures=True)
