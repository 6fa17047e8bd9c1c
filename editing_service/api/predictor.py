"""Serving predictions: loaded models kept in a small LRU cache, and adaptive batching per model.

Concurrent requests for the same model are merged: the first request opens a batch, others join it
until `max_batch` texts or `max_tokens` tokens wait or `max_latency_ms` has passed, then one forward
pass answers them. A pass takes at most `max_batch` texts and `max_tokens` tokens (`take_pass`): the
longest-waiting request one text first, then the requests with the fewest texts left, so a large
request is answered over many short passes and a small request that arrives meanwhile rides in the
very next one. Within a pass, texts run in length-sorted forwards of `forward_texts` texts (a short
text is padded to its neighbours' length, not to the longest text of the pass). Forward passes run on
one dedicated thread, which leaves the event loop free, runs one pass at a
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
import copy
import gc
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from editing_service.edit import load_model
from editing_service.model import TextClassifier
from editing_service.model.batching import clip_texts, token_lengths
from editing_service.model.placement import DeviceMap

T = TypeVar("T")
# A request whose texts hold more characters than this is tokenised (for its token counts) off the event loop.
TOKENISE_INLINE_CHARS = 20_000


class TokenCounter:
    """Tokens per text as a model's forward pass will see them (clipped, truncated), counted with a copy
    of the model's tokenizer: the forward thread tokenises with the model's own (with padding), and a
    fast tokenizer called from two threads with different settings can fail ("Already borrowed").
    The copy is only ever called with one set of settings."""

    def __init__(self) -> None:
        self._tokenizers: weakref.WeakKeyDictionary[TextClassifier, PreTrainedTokenizerBase] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    def tokenizer(self, model: TextClassifier) -> PreTrainedTokenizerBase:
        with self._lock:
            if model not in self._tokenizers:
                self._tokenizers[model] = copy.deepcopy(model.tokenizer)
            return self._tokenizers[model]

    def __call__(self, model: TextClassifier, texts: list[str]) -> np.ndarray:
        return token_lengths(self.tokenizer(model), clip_texts(texts, model.max_length), model.max_length)


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

    def __init__(self, size: int, device: torch.device, loader: Callable[..., TextClassifier] = load_model,
                 device_map: DeviceMap | None = None) -> None:
        self.size, self.device, self.loader, self.device_map = size, device, loader, device_map
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
        model = self.loader(folder, device=self.device, device_map=self.device_map)
        with self._lock:
            self._models[folder] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        settle_heap()
        return model


@dataclass(eq=False)
class _Request:
    """One predict call: its texts and their token counts, how many are scheduled and answered, and
    where answers go."""

    texts: list[str]
    lengths: np.ndarray
    future: asyncio.Future[np.ndarray]
    scheduled: int = 0
    answered: int = 0
    out: np.ndarray | None = None

    @property
    def unscheduled(self) -> int:
        return len(self.texts) - self.scheduled

    @property
    def unscheduled_tokens(self) -> int:
        return int(self.lengths[self.scheduled:].sum())


Slice = tuple[_Request, int, int]  # a request and the range of its texts in one forward pass


@dataclass(eq=False)
class _Lane:
    """The requests waiting for one model, served by one pump task at a time."""

    model: TextClassifier
    waiting: deque[_Request] = field(default_factory=deque)
    n_waiting: int = 0
    tokens_waiting: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None


def take_pass(waiting: deque[_Request], *, max_texts: int, max_tokens: int) -> list[Slice]:
    """The next forward pass: at most `max_texts` texts and `max_tokens` tokens (and at least one text).

    The request waiting longest (the head of `waiting`) gets one text first, so a large request moves
    on under any load; then the requests with the fewest texts left fill the pass in turn, each with its
    next texts while they fit, so a batch-1 request is never queued behind a large request's texts.
    Requests whose caller has gone (cancelled) are dropped; the others keep their place in `waiting`
    until all their texts are scheduled.
    """
    live = [r for r in waiting if not r.future.done()]
    stops = {id(r): r.scheduled for r in live}
    texts = tokens = 0

    def take(request: _Request, limit: int) -> None:
        nonlocal texts, tokens
        stop = stops[id(request)]
        while stop < len(request.texts) and texts < limit:
            cost = int(request.lengths[stop])
            if texts and tokens + cost > max_tokens:
                break
            stop, texts, tokens = stop + 1, texts + 1, tokens + cost
        stops[id(request)] = stop

    if live:
        take(live[0], 1)
    for request in sorted(live, key=lambda r: r.unscheduled):
        take(request, max_texts)
    taken: list[Slice] = []
    for request in live:
        if stops[id(request)] > request.scheduled:
            taken.append((request, request.scheduled, stops[id(request)]))
            request.scheduled = stops[id(request)]
    waiting.clear()
    waiting.extend(r for r in live if r.unscheduled)
    return taken


class AdaptiveBatcher:
    """Merges concurrent `predict_proba` calls for one model into shared, fairly filled forward passes."""

    def __init__(self, cache: ModelCache, *, max_batch: int, max_latency_ms: float, max_tokens: int,
                 forward_texts: int) -> None:
        self.cache, self.max_batch, self.max_latency = cache, max_batch, max_latency_ms / 1000
        self.max_tokens, self.forward_texts = max_tokens, forward_texts
        self.count_tokens = TokenCounter()
        self._lanes: dict[Path, _Lane] = {}
        self._forward_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")

    async def predict_proba(self, folder: Path, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """(class names, probabilities [len(texts), C]) of the model saved in `folder`."""
        model = self.cache.loaded(folder)
        if model is None:
            model = await asyncio.to_thread(self.cache.get, folder)  # raises for a bad folder
        texts = list(texts)
        if sum(map(len, texts)) > TOKENISE_INLINE_CHARS:
            lengths = await asyncio.to_thread(self.count_tokens, model, texts)
        else:
            lengths = self.count_tokens(model, texts)
        loop = asyncio.get_running_loop()
        request = _Request(texts, lengths, loop.create_future())
        lane = self._lanes.get(folder)
        if lane is None:
            lane = self._lanes[folder] = _Lane(model)
        lane.waiting.append(request)
        lane.n_waiting += len(texts)
        lane.tokens_waiting += int(lengths.sum())
        lane.arrived.set()
        if lane.pump is None:
            lane.pump = loop.create_task(self._pump(folder, lane))
        return list(lane.model.classes), await request.future

    async def _gather(self, lane: _Lane) -> None:
        """Wait up to `max_latency` for `max_batch` texts or `max_tokens` tokens to be waiting."""
        deadline = asyncio.get_running_loop().time() + self.max_latency
        while lane.n_waiting < self.max_batch and lane.tokens_waiting < self.max_tokens:
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
                taken = take_pass(lane.waiting, max_texts=self.max_batch, max_tokens=self.max_tokens)
                lane.n_waiting = sum(r.unscheduled for r in lane.waiting)
                lane.tokens_waiting = sum(r.unscheduled_tokens for r in lane.waiting)
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
        lengths = np.concatenate([request.lengths[start:stop] for request, start, stop in taken])
        try:
            proba = await asyncio.get_running_loop().run_in_executor(
                self._forward_thread, self._forward, model, texts, lengths)
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

    def _forward(self, model: TextClassifier, texts: list[str], lengths: np.ndarray) -> np.ndarray:
        return model.predict_proba(texts, batch_size=self.forward_texts, lengths=lengths)

    def close(self) -> None:
        """Stop the forward thread once the pass under way (if any) ends; queued passes are dropped."""
        self._forward_thread.shutdown(wait=False, cancel_futures=True)
