"""Forward-pass batch sizes chosen from the free memory of the device and the model's shape.

`auto_batch_size` is the formula (pure, tested with made-up figures); `free_memory` reads the device;
`forward_batch_size` puts them together for a loaded classifier, or returns a user's fixed size.
"""

from __future__ import annotations

import logging
from typing import Literal

import psutil
import torch

from editing_service.model.classifier import TextClassifier

logger = logging.getLogger(__name__)

BatchSize = int | Literal["auto"]
LIVE_ACTIVATIONS = 12  # [T, hidden] tensors alive at once inside a block: residual, q, k, v, context,
# attention output, the MLP's 4x-wide hidden state (4), and temporaries of the norms and residual adds
ATTENTION_MAPS = 2  # [heads, T, T] tensors alive at once: the scores and the probabilities
MEMORY_FRACTION = 0.5  # of the free memory, leaving the rest to fragmentation, the SAEs and other work
MAX_AUTO_BATCH = 256  # more texts per pass gain nothing in throughput and waste memory on padding


def auto_batch_size(
    free_bytes: int, *, hidden: int, heads: int, max_length: int, n_sites: int, bytes_per_value: int,
) -> int:
    """Texts per forward pass that fit in `MEMORY_FRACTION` of `free_bytes` (the weights already loaded):

        per_text = T * (hidden * (LIVE_ACTIVATIONS * b + 4 * n_sites) + ATTENTION_MAPS * heads * T * b)
        batch    = clamp(floor(MEMORY_FRACTION * free_bytes / per_text), 1, MAX_AUTO_BATCH)

    with T = max_length (a batch is padded to its longest text, at most T), b = bytes per value of the
    model's dtype, and n_sites the sites a pass records or edits (up to the depth: one per block), each
    kept as a float32 [T, hidden] copy until the batch ends. Depth enters only through n_sites: an
    inference forward frees each block's intermediates before the next block runs.
    """
    per_text = max_length * (hidden * (LIVE_ACTIVATIONS * bytes_per_value + 4 * n_sites)
                             + ATTENTION_MAPS * heads * max_length * bytes_per_value)
    return max(1, min(MAX_AUTO_BATCH, int(MEMORY_FRACTION * free_bytes // per_text)))


def free_memory(device: torch.device) -> int:
    """Bytes free on `device`: CUDA's free memory, or the host's available memory for the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return int(psutil.virtual_memory().available)


def forward_batch_size(size: BatchSize, classifier: TextClassifier, n_sites: int) -> int:
    """`size` itself, or ("auto") the size `auto_batch_size` picks for `classifier` now (logged)."""
    if size != "auto":
        return size
    config = classifier.backbone.config
    free = free_memory(classifier.device)
    batch = auto_batch_size(
        free, hidden=int(config.hidden_size), heads=int(getattr(config, "num_attention_heads", 1) or 1),
        max_length=classifier.max_length, n_sites=n_sites, bytes_per_value=classifier.dtype.itemsize,
    )
    logger.info("Forward batch size %d (auto: %.1f GB free on %s, width %d, max_length %d, %d sites)", batch,
                free / 1e9, classifier.device, config.hidden_size, classifier.max_length, n_sites)
    return batch
