"""The training split's activations for the SAEs: the full cache on disk, or forward-pass streams.

Disk mode caches every training token (or `cache_tokens_per_text` of each text). Stream mode trains every
site's SAE at once from one stream of forward passes, each site through its own shuffled buffer
(`editing_service.activations.stream`), and
keeps on disk only a bounded token sample of the training split in the same cache layout, which every
other reader of the training cache uses (feature means for mean ablation, the served-form fits, the
random-ablation draw, the quality summary; head features and labels stay complete, one row per text).
Auto mode picks stream when the full cache's estimated size exceeds the disk budget; the choice and its
reason are logged and recorded in the quality report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from editing_service.activations import ActivationCache
from editing_service.activations.cache import CacheDtype, bytes_per_value
from editing_service.activations.stream import SharedForward, SiteFeed
from editing_service.artifacts import ArtifactDir
from editing_service.data import DatasetSpec, TextSplit, load_role
from editing_service.model import Site, TextClassifier
from editing_service.model.batching import token_lengths
from editing_service.pipeline.common import ProgressFn, cache_role, quiet
from editing_service.report.sae_quality import TrainingData
from editing_service.settings import CacheSettings

logger = logging.getLogger(__name__)

CacheMode = Literal["disk", "stream"]
GB = 1e9


def estimated_cache_bytes(n_tokens: int, widths: list[int], dtype: str) -> int:
    """Bytes of a cache of `n_tokens` tokens at sites of the given widths (the site matrices only)."""
    return n_tokens * sum(widths) * bytes_per_value(dtype)


def choose_mode(settings: CacheSettings, estimated_bytes: int) -> tuple[CacheMode, str]:
    """The cache mode to use, and why."""
    size = f"estimated training cache {estimated_bytes / GB:.3g} GB"
    if settings.cache_mode != "auto":
        return settings.cache_mode, f"cache_mode={settings.cache_mode} ({size})"
    budget = f"budget {settings.cache_budget_gb:g} GB"
    if estimated_bytes > settings.cache_budget_gb * GB:
        return "stream", f"{size} > {budget}"
    return "disk", f"{size} <= {budget}"


@dataclass
class TrainingActivations:
    """The training split, its cache (every token in disk mode, a token sample in stream mode) and, in
    stream mode, what each site's stream needs."""

    split: TextSplit
    cache: ActivationCache
    mode: CacheMode
    reason: str
    classifier: TextClassifier
    batch_size: int
    buffer_tokens: int
    seed: int
    dtype: CacheDtype  # the stream's blocks and buffers hold activations as the cache stores them

    def streams(self, sites: list[Site]) -> dict[str, SiteFeed] | None:
        """In stream mode, each site's share of one forward-pass stream over the training texts (the SAEs
        must then be trained in step: `editing_service.sae.fit_together`); None in disk mode (train from the
        cache)."""
        if self.mode == "disk":
            return None
        shared = SharedForward(self.classifier, self.split.texts, sites, batch_size=self.batch_size,
                               capacity=self.buffer_tokens, seed=self.seed, dtype=self.dtype)
        return {site.name: shared.feed(site) for site in sites}

    def describe(self) -> TrainingData:
        return TrainingData(mode=self.mode, reason=self.reason, cached_tokens=self.cache.n_tokens,
                            tokens_per_text=self.cache.meta.get("tokens_per_text"))


def training_activations(
    classifier: TextClassifier,
    spec: DatasetSpec,
    *,
    sites: list[Site],
    artifacts: ArtifactDir,
    settings: CacheSettings,
    batch_size: int,
    seed: int = 0,
    progress: ProgressFn = quiet,
    reuse: bool = False,
) -> TrainingActivations:
    """Choose the mode, cache the training split accordingly (one forward pass) and log the choice."""
    split = load_role(spec, "train")
    counts = classifier.token_counts(token_lengths(classifier.tokenizer, split.texts, classifier.max_length))
    per_text = settings.cache_tokens_per_text
    n_tokens = int((counts if per_text is None else np.minimum(counts, per_text)).sum())
    width = int(classifier.backbone.config.hidden_size)
    mode, reason = choose_mode(settings, estimated_cache_bytes(n_tokens, [width] * len(sites), settings.cache_dtype))
    if mode == "stream":
        sampled = max(1, settings.stream_sample_tokens // len(split.texts))
        per_text = sampled if per_text is None else min(per_text, sampled)
    _, cache = cache_role(classifier, spec, "train", sites=sites, artifacts=artifacts, dtype=settings.cache_dtype,
                          batch_size=batch_size, progress=progress, tokens_per_text=per_text, reuse=reuse, split=split)
    logger.info("SAE training data: %s (%s); %d training tokens cached on disk%s", mode, reason, cache.n_tokens,
                " (the token sample)" if mode == "stream" else "")
    return TrainingActivations(split=split, cache=cache, mode=mode, reason=reason, classifier=classifier,
                               batch_size=batch_size, buffer_tokens=settings.stream_buffer_tokens, seed=seed,
                               dtype=settings.cache_dtype)
