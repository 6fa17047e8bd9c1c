"""Streamed activations: SAE training data drawn from forward passes, with no cache of them on disk.

As SAELens's ActivationsStore: a buffer of up to `capacity` token activations of one site is filled by
forward passes over the training texts (their order reshuffled every epoch), and batches are drawn from a
random half of it; the other half stays and is mixed with the rows the next refill writes in place of the
served ones. Tokens are thus decorrelated across texts without ever holding more than `capacity` rows per
site. One forward pass serves every site (`SharedForward`), each site reading through its own buffer
(`SiteFeed`, the source `SAETrainer.fit(..., stream=...)` reads: `editing_service.sae.data.BatchSource`).
Blocks and buffers hold activations in the cache's storage type (`cache_dtype`, float16 by default: half the
memory, and as exact as the disk cache); batches come out in float32.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from transformers import BatchEncoding

from editing_service.activations.cache import TORCH_DTYPES, CacheDtype
from editing_service.model.batching import length_sorted_batches, token_lengths
from editing_service.model.classifier import TextClassifier
from editing_service.model.hooks import capture
from editing_service.model.sites import Site

BAD_CAPACITY = "The stream buffer must hold at least two batches ({need} tokens), got capacity {capacity}."
WINDOW_BATCHES = 16  # forward batches whose texts are length-sorted together


class ActivationBuffer:
    """A shuffled buffer over an endless iterator of activation blocks [n_i, d], held in one tensor of
    `capacity` rows that refills overwrite in place: the memory of a site's stream is one buffer, a block
    and a batch (a refill that concatenated and permuted the buffer held about four buffers at once)."""

    def __init__(self, blocks: Iterator[torch.Tensor], capacity: int, seed: int = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        self.blocks = blocks
        self.capacity = capacity
        self.dtype = dtype  # the store's; batches come out in float32
        self.generator = torch.Generator().manual_seed(seed)
        self.refills = 0  # how many times the buffer was topped up and reshuffled (for tests and logs)
        self.store: torch.Tensor | None = None  # [capacity, d], allocated by the first block

    def _fill(self, rows: torch.Tensor) -> None:
        """Write the next blocks' rows into `rows` of the store (the rest of the last block is dropped)."""
        written = 0
        while written < len(rows):
            block = next(self.blocks)
            if self.store is None:
                self.store = block.new_empty(self.capacity, block.shape[1], dtype=self.dtype)
            take = min(block.shape[0], len(rows) - written)
            self.store.index_copy_(0, rows[written : written + take], block[:take].to(self.dtype))
            written += take
        self.refills += 1

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        """Endless shuffled batches [batch_size, d]: after each refill, batches are drawn without repetition
        from a random half of the buffer; those rows are refilled, the other half stays to mix with them."""
        if self.capacity < 2 * batch_size:
            raise ValueError(BAD_CAPACITY.format(need=2 * batch_size, capacity=self.capacity))
        free = torch.arange(self.capacity)
        served = (self.capacity // 2) // batch_size * batch_size
        while True:
            self._fill(free)
            order = torch.randperm(self.capacity, generator=self.generator)
            for b in range(0, served, batch_size):
                yield self.store[order[b : b + batch_size]].float()
            free = order[:served]


@dataclass
class SharedForward:
    """Forward passes over `texts`, epoch after epoch, capturing every one of `sites` at once: one pass feeds
    every site's SAE. Each site reads its blocks (non-pad tokens, float32, on the CPU) through its own queue
    (`feed(site)`); a pass runs only when the reading site's queue is empty, so SAEs trained in step
    (`editing_service.sae.fit_together`) keep each queue to about one buffer refill."""

    classifier: TextClassifier
    texts: list[str]
    sites: list[Site]
    batch_size: int
    capacity: int
    seed: int = 0
    dtype: CacheDtype = "float32"  # how blocks and buffers hold activations (the cache's storage types)
    passes: int = field(default=0, init=False)  # forward batches run (for tests and logs)

    def __post_init__(self) -> None:
        self._queues: dict[str, deque[torch.Tensor]] = {site.name: deque() for site in self.sites}
        self._blocks = self._forward_blocks()

    @cached_property
    def lengths(self) -> np.ndarray:
        return token_lengths(self.classifier.tokenizer, self.texts, self.classifier.max_length)

    @property
    def n_tokens(self) -> int:
        """Tokens of one epoch (at every site)."""
        return int(self.classifier.token_counts(self.lengths).sum())

    def feed(self, site: Site) -> SiteFeed:
        """The `BatchSource` of one of the sites."""
        if site.name not in self._queues:
            raise KeyError(f"{site.name} is not one of this stream's sites: {sorted(self._queues)}")
        return SiteFeed(self, site)

    def next_block(self, site: Site) -> torch.Tensor:
        """The site's next block of token activations, running a forward pass when its queue is empty."""
        queue = self._queues[site.name]
        while not queue:
            for name, block in next(self._blocks).items():
                self._queues[name].append(block)
        return queue.popleft()

    def _forward_blocks(self) -> Iterator[dict[str, torch.Tensor]]:
        """One dict of site blocks per forward batch. Every epoch takes the texts in a new random order, in
        windows of WINDOW_BATCHES batches sorted by length within the window (low padding, and no drift from
        short to long texts across the epoch)."""
        rng = np.random.default_rng(self.seed)
        window = WINDOW_BATCHES * self.batch_size
        while True:
            order = rng.permutation(len(self.texts))
            for start in range(0, len(order), window):
                rows = order[start : start + window]
                texts = [self.texts[i] for i in rows]
                for _, batch in length_sorted_batches(self.classifier.tokenizer, texts, batch_size=self.batch_size,
                                                      max_length=self.classifier.max_length,
                                                      lengths=self.lengths[rows]):
                    yield self._forward(batch)

    @torch.no_grad()
    def _forward(self, batch: BatchEncoding) -> dict[str, torch.Tensor]:
        batch = batch.to(self.classifier.device)
        with capture(self.classifier.backbone, self.sites) as store:
            self.classifier.head_features(batch["input_ids"], batch["attention_mask"])
        self.passes += 1
        tokens = self.classifier.token_mask(batch["attention_mask"])
        held = TORCH_DTYPES[self.dtype]
        return {site.name: store[site.name][tokens].to("cpu", held) for site in self.sites}


@dataclass
class SiteFeed:
    """One site's share of a `SharedForward`: the source `SAETrainer.fit(..., stream=...)` reads
    (`editing_service.sae.data.BatchSource`)."""

    shared: SharedForward
    site: Site

    @property
    def n_tokens(self) -> int:
        return self.shared.n_tokens

    def blocks(self) -> Iterator[torch.Tensor]:
        while True:
            yield self.shared.next_block(self.site)

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        """Shuffled batches through a buffer of `capacity` tokens, but never more than one epoch (a larger
        buffer would only hold repeats, each fill costing extra forward passes) nor fewer than two batches."""
        capacity = max(min(self.shared.capacity, self.n_tokens), 2 * batch_size)
        return ActivationBuffer(self.blocks(), capacity, self.shared.seed,
                                TORCH_DTYPES[self.shared.dtype]).batches(batch_size)
