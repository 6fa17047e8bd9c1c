"""The stream's shuffle buffer (refill, shuffling, no row served twice per fill) and its forward passes, shared
by every site's SAE."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from factories import make_model_folder

from editing_service.activations import collect_activations
from editing_service.activations.stream import BAD_CAPACITY, ActivationBuffer, SharedForward
from editing_service.model import load_classifier
from editing_service.sae import SAETrainer, fit_together

TEXTS = ["she works as a nurse in the ward", "he is a surgeon", "the hospital team", "a nurse", "he",
         "she is a nurse", "the surgeon and the nurse", "he works in the hospital"]


def numbered_blocks(block_rows: int = 10) -> Iterator[torch.Tensor]:
    """Blocks of rows whose single column is the row's number in the stream: 0, 1, 2, ..."""
    start = 0
    while True:
        yield torch.arange(start, start + block_rows, dtype=torch.float32)[:, None]
        start += block_rows


def test_the_buffer_serves_each_row_at_most_once_shuffled_and_refills() -> None:
    buffer = ActivationBuffer(numbered_blocks(), capacity=100, seed=0)
    stream = buffer.batches(batch_size=10)
    served = [next(stream)[:, 0].long() for _ in range(30)]
    rows = torch.cat(served).tolist()
    assert all(b.shape == (10,) for b in served)
    assert len(rows) == len(set(rows)), "a row was served twice"
    # 5 batches (half the buffer) per refill: 30 batches took 6 fills, each reading 50 new rows.
    assert buffer.refills == 6 and max(rows) < 100 + 5 * 50
    first = served[0]
    assert not torch.equal(first, first.sort().values), "the first batch is not shuffled"
    # The first fill's half that is kept is mixed with new rows: later batches draw old and new rows.
    later = torch.cat(served[5:10])
    assert (later < 100).any() and (later >= 100).any()


def test_refills_write_into_the_one_buffer_in_place() -> None:
    """A refill overwrites the served rows of one preallocated tensor: no concatenated or permuted copy of the
    buffer (a refill used to hold about four buffers of a site at once)."""
    buffer = ActivationBuffer(numbered_blocks(), capacity=100, seed=0)
    stream = buffer.batches(batch_size=10)
    served = [next(stream)[:, 0].long()]
    store = buffer.store
    pointer = store.data_ptr()
    served += [next(stream)[:, 0].long() for _ in range(19)]
    assert buffer.refills == 4 and buffer.store is store and store.data_ptr() == pointer
    rows = torch.cat(served)
    assert len(set(rows.tolist())) == len(rows)
    # The store holds the 250 rows read in 4 fills but the 150 that refills overwrote: those served before
    # the last fill (the last fill's 50 served rows are overwritten by the next one).
    held = set(store[:, 0].long().tolist())
    assert held == set(range(250)) - set(torch.cat(served[:15]).tolist())


def test_a_float16_buffer_holds_half_the_bytes_and_serves_the_rounded_rows_in_float32() -> None:
    thirds = (block / 3 for block in numbered_blocks())  # values float16 cannot hold exactly
    buffer = ActivationBuffer(thirds, capacity=100, seed=0, dtype=torch.float16)
    batch = next(buffer.batches(batch_size=10))
    assert buffer.store is not None and buffer.store.dtype == torch.float16 and batch.dtype == torch.float32
    rows = torch.round(batch[:, 0].double() * 3).long()  # each value is row / 3, rounded to float16
    torch.testing.assert_close(batch[:, 0], (rows.float() / 3).half().float(), atol=0, rtol=0)
    assert not torch.equal(batch[:, 0], rows.float() / 3)


def test_the_buffer_is_seeded_and_refuses_fewer_than_two_batches() -> None:
    first = [next(ActivationBuffer(numbered_blocks(), capacity=64, seed=3).batches(8)) for _ in range(2)]
    torch.testing.assert_close(first[0], first[1])
    with pytest.raises(ValueError, match=BAD_CAPACITY.split("(")[0][:30]):
        next(ActivationBuffer(numbered_blocks(), capacity=15, seed=0).batches(8))


def test_one_epoch_of_the_forward_stream_is_the_cached_tokens_at_every_site(tmp_path) -> None:
    clf = load_classifier(make_model_folder(tmp_path, "bert"), classes=["nurse", "surgeon"])
    sites = clf.sites()  # blocks.0.out and blocks.1.out
    cache = collect_activations(clf, TEXTS, sites=sites, out_dir=tmp_path / "cache", dtype="float32",
                                batch_size=3, progress=False)
    stream = SharedForward(clf, TEXTS, sites, batch_size=3, capacity=1024, seed=0)
    assert stream.n_tokens == cache.n_tokens
    key = lambda x: x[np.lexsort(x.T[::-1])]  # noqa: E731  rows in a canonical order
    for site in sites:
        blocks = stream.feed(site).blocks()
        epoch = torch.cat([next(blocks) for _ in range(3)]).numpy()  # 8 texts in batches of 3
        cached = cache.read(site.name)
        assert epoch.shape == cached.shape
        np.testing.assert_allclose(key(epoch), key(cached), atol=1e-5)
    assert stream.passes == 3, "the second site read the first site's passes"
    half = SharedForward(clf, TEXTS, sites, batch_size=3, capacity=1024, seed=0, dtype="float16")
    block = next(half.feed(sites[0]).blocks())
    assert block.dtype == torch.float16  # the blocks waiting in a site's queue take the cache's storage type
    full = SharedForward(clf, TEXTS, sites, batch_size=3, capacity=1024, seed=0)
    torch.testing.assert_close(block, next(full.feed(sites[0]).blocks()).half(), rtol=0, atol=0)


def train_from_stream(clf, sites, train_site) -> tuple[torch.nn.Module, int]:
    """Train an SAE at every one of `sites` in step from one stream; returns `train_site`'s SAE and the
    number of forward passes run."""
    stream = SharedForward(clf, TEXTS, sites, batch_size=3, capacity=48, seed=0)
    sample = torch.cat([next(stream.feed(site).blocks()) for site in sites[:1]])
    stream = SharedForward(clf, TEXTS, sites, batch_size=3, capacity=48, seed=0)  # the sample is not a pass
    trainers = {site.name: SAETrainer(d_sae=16, k=4, batch_size=8, n_epochs=3, seed=1) for site in sites}
    fit_together([trainers[site.name].fit_steps(sample, stream=stream.feed(site)) for site in sites])
    return trainers[train_site.name].sae_, stream.passes


def test_saes_trained_in_step_share_the_forward_passes_and_train_as_if_alone(tmp_path) -> None:
    clf = load_classifier(make_model_folder(tmp_path, "bert"), classes=["nurse", "surgeon"])
    first, second = clf.sites()
    alone, passes_alone = train_from_stream(clf, [first], first)
    together, passes_together = train_from_stream(clf, [first, second], first)
    assert passes_together == passes_alone, "each site ran its own forward passes"
    n_tokens = SharedForward(clf, TEXTS, [first], batch_size=3, capacity=48).n_tokens
    per_epoch = 3  # 8 texts in batches of 3
    assert passes_alone <= per_epoch * (3 + 48 // n_tokens) + 1  # 3 epochs and one buffer (48 tokens) of look-ahead
    for name, tensor in alone.state_dict().items():
        torch.testing.assert_close(together.state_dict()[name], tensor, rtol=0, atol=0)
