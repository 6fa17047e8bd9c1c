"""The predictor behind POST .../predict: the model cache and the adaptive batcher, in process."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from factories import make_model_folder

from editing_service.api.predictor import AdaptiveBatcher, ModelCache
from editing_service.model import TextClassifier
from editing_service.model.batching import MAX_CHARS_PER_TOKEN
from editing_service.model.load import load_classifier
from editing_service.model.placement import DeviceMap

TEXTS = ["he is a surgeon", "she is a nurse at the clinic", "his team works in trauma surgery", "her patients",
         "a registered nurse", "dr smith specializes in heart surgery"]


class Spy:
    """A loader of real tiny classifiers that records loads and every forward pass (texts, thread)."""

    def __init__(self) -> None:
        self.loads: list[Path] = []
        self.passes: list[tuple[list[str], str]] = []
        self.fail_forward = False
        self.hold_first_pass: threading.Event | None = None

    def __call__(self, folder: Path, *, device: torch.device, device_map: DeviceMap | None = None) -> TextClassifier:
        if not folder.exists():
            raise FileNotFoundError(f"no model at {folder}")
        self.loads.append(folder)
        torch.manual_seed(len(self.loads))
        model = load_classifier(folder, classes=["nurse", "surgeon"], probe_layer=-1, device=device,
                                device_map=device_map)
        model.set_head(torch.nn.Linear(32, 2))
        predict_proba = model.predict_proba

        def spied(texts: list[str], *, batch_size: int = 32, lengths: np.ndarray | None = None) -> np.ndarray:
            self.passes.append((list(texts), threading.current_thread().name))
            if self.hold_first_pass is not None and len(self.passes) == 1:
                assert self.hold_first_pass.wait(60), "the test never released the first pass"
            if self.fail_forward:
                raise RuntimeError("the device fell over")
            return predict_proba(texts, batch_size=batch_size, lengths=lengths)

        model.predict_proba = spied  # type: ignore[method-assign]
        return model


@pytest.fixture(autouse=True)
def thaw_heap() -> Iterator[None]:
    """Loads freeze the heap (`settle_heap`); hand the rest of the test session a thawed one."""
    yield
    gc.unfreeze()


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("predictor")
    return [make_model_folder(root / "a", "bert", seed=1), make_model_folder(root / "b", "bert", seed=2)]


def batcher(spy: Spy, *, max_batch: int = 32, max_latency_ms: float = 5.0, size: int = 4,
            max_tokens: int = 4096) -> AdaptiveBatcher:
    return AdaptiveBatcher(ModelCache(size, torch.device("cpu"), loader=spy), max_batch=max_batch,
                           max_latency_ms=max_latency_ms, max_tokens=max_tokens, forward_texts=max(1, max_batch // 4))


def test_requests_that_arrive_together_share_one_forward_pass(folders: list[Path]) -> None:
    spy = Spy()
    predictor = batcher(spy, max_latency_ms=300)

    async def main() -> list[tuple[list[str], np.ndarray]]:
        await predictor.predict_proba(folders[0], TEXTS[:1])  # load the model first
        spy.passes.clear()
        return await asyncio.gather(*(predictor.predict_proba(folders[0], [t]) for t in TEXTS[:4]),
                                    predictor.predict_proba(folders[0], TEXTS[4:]))

    answers = asyncio.run(main())
    assert len(spy.passes) == 1 and sorted(spy.passes[0][0]) == sorted(TEXTS)
    model = predictor.cache.loaded(folders[0])
    assert model is not None
    expected = TextClassifier.predict_proba(model, TEXTS)  # the unspied method
    got = np.concatenate([proba for _, proba in answers])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert all(classes == ["nurse", "surgeon"] for classes, _ in answers)
    predictor.close()


def test_a_full_batch_goes_without_waiting(folders: list[Path]) -> None:
    predictor = batcher(Spy(), max_batch=3, max_latency_ms=60_000)

    async def main() -> None:
        await asyncio.wait_for(predictor.predict_proba(folders[0], TEXTS[:3]), timeout=30)

    asyncio.run(main())  # a wait of max_latency_ms would time out
    predictor.close()


def test_every_forward_pass_runs_on_one_dedicated_thread(folders: list[Path]) -> None:
    spy = Spy()
    predictor = batcher(spy, max_latency_ms=0)

    async def main() -> None:
        for text in TEXTS:
            for folder in folders:
                await predictor.predict_proba(folder, [text])

    asyncio.run(main())
    threads = {thread for _, thread in spy.passes}
    assert len(spy.passes) == 2 * len(TEXTS) and len(threads) == 1
    assert threads.pop().startswith("forward") and spy.loads == folders  # each model loaded once
    predictor.close()


def test_the_cache_keeps_the_most_recently_used_models(folders: list[Path]) -> None:
    spy = Spy()
    cache = ModelCache(1, torch.device("cpu"), loader=spy)
    assert cache.loaded(folders[0]) is None and spy.loads == []  # `loaded` never loads
    first = cache.get(folders[0])
    assert cache.loaded(folders[0]) is first and cache.get(folders[0]) is first
    cache.get(folders[1])
    assert cache.loaded(folders[0]) is None and spy.loads == folders


def test_the_cache_loads_with_the_services_placement(folders: list[Path]) -> None:
    whole = ModelCache(1, torch.device("cpu"), loader=Spy()).get(folders[0])
    offloaded = ModelCache(1, torch.device("cpu"), loader=Spy(), device_map=DeviceMap(device_gb=1e-9)).get(folders[0])
    assert offloaded.offloaded_to == torch.device("cpu")
    assert any(p.device.type == "meta" for p in offloaded.backbone.parameters())
    np.testing.assert_allclose(offloaded.predict_proba(TEXTS), whole.predict_proba(TEXTS), atol=1e-6)


def test_a_load_freezes_the_heap_and_an_evicted_model_is_still_freed(folders: list[Path]) -> None:
    gc.unfreeze()
    cache = ModelCache(1, torch.device("cpu"), loader=Spy())
    first = weakref.ref(cache.get(folders[0]))
    assert gc.get_freeze_count() > 10_000  # the libraries and the model, out of full collections
    cache.get(folders[1])  # evicts the first model
    assert first() is None


def test_a_failed_forward_pass_fails_every_request_in_it_and_the_next_one_works(
    folders: list[Path],
) -> None:
    spy = Spy()
    predictor = batcher(spy, max_latency_ms=300)

    async def main() -> tuple[list[object], np.ndarray]:
        await predictor.predict_proba(folders[0], TEXTS[:1])
        spy.fail_forward = True
        failed = await asyncio.gather(*(predictor.predict_proba(folders[0], [t]) for t in TEXTS[:3]),
                                      return_exceptions=True)
        spy.fail_forward = False
        _, proba = await predictor.predict_proba(folders[0], TEXTS[:2])
        return failed, proba

    failed, proba = asyncio.run(main())
    assert [str(err) for err in failed] == ["the device fell over"] * 3
    assert proba.shape == (2, 2) and np.allclose(proba.sum(1), 1)
    predictor.close()


def test_a_model_that_cannot_load_fails_the_request(tmp_path: Path) -> None:
    predictor = batcher(Spy())
    with pytest.raises(FileNotFoundError, match="no model at"):
        asyncio.run(predictor.predict_proba(tmp_path / "missing", TEXTS[:1]))
    predictor.close()


async def _until(condition, what: str) -> None:
    """Wait (yielding to the event loop) until `condition()` holds; fail after a generous minute."""
    for _ in range(6000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_a_large_request_yields_to_small_ones(folders: list[Path]) -> None:
    """Small requests that arrive while a large one runs ride in the very next forward pass (the large
    request keeps one text in it), no pass exceeds max_batch, and every answer is still the model's own."""
    spy = Spy()
    predictor = batcher(spy, max_batch=4, max_latency_ms=0)
    large = [f"{t} number {i}" for i, t in enumerate(TEXTS * 2)]
    small = ["she is a nurse", "he operates", "a surgeon"]

    async def main() -> tuple[np.ndarray, list[np.ndarray]]:
        await predictor.predict_proba(folders[0], TEXTS[:1])  # load the model first
        spy.passes.clear()
        spy.hold_first_pass = threading.Event()
        big = asyncio.create_task(predictor.predict_proba(folders[0], large))
        await _until(lambda: len(spy.passes) == 1, "the first pass of the large request started")
        smalls = [asyncio.create_task(predictor.predict_proba(folders[0], [t])) for t in small]
        await asyncio.sleep(0)  # the small requests are queued behind the running pass
        spy.hold_first_pass.set()
        answers = await asyncio.gather(big, *smalls)
        return answers[0][1], [proba for _, proba in answers[1:]]

    big_proba, small_probas = asyncio.run(main())
    passes = [texts for texts, _ in spy.passes]
    assert passes[0] == large[:4]  # alone, the large request fills the pass
    assert sorted(passes[1]) == sorted([*small, large[4]])  # then it yields: one of its texts, every small one
    assert all(len(p) <= 4 for p in passes) and sum(map(len, passes)) == len(large) + len(small)
    model = predictor.cache.loaded(folders[0])
    assert model is not None
    np.testing.assert_allclose(big_proba, TextClassifier.predict_proba(model, large), atol=1e-6)
    np.testing.assert_allclose(np.concatenate(small_probas), TextClassifier.predict_proba(model, small), atol=1e-6)
    predictor.close()


def test_tokens_are_counted_as_the_forward_pass_sees_them_with_a_tokenizer_of_their_own(folders: list[Path]) -> None:
    from editing_service.api.predictor import TokenCounter

    model = Spy()(folders[0], device=torch.device("cpu"))
    counter = TokenCounter()
    long_text = " ".join(TEXTS * 200)  # truncated at max_length
    lengths = counter(model, [TEXTS[0], long_text])
    encoded = model.tokenizer([TEXTS[0], long_text], truncation=True, max_length=model.max_length)
    assert lengths.tolist() == [len(ids) for ids in encoded["input_ids"]]
    assert lengths[1] == model.max_length
    # Not the model's tokenizer, which the forward thread calls (with padding) at the same time; one copy per model.
    assert counter.tokenizer(model) is not model.tokenizer and counter.tokenizer(model) is counter.tokenizer(model)


def _passes(requests: dict[str, list[int]], *, max_texts: int, max_tokens: int) -> list[list[tuple[str, int, int]]]:
    """take_pass until nothing waits, on requests given as name -> token count of each text (in arrival order)."""
    from editing_service.api.predictor import _Request, take_pass

    async def main() -> list[list[tuple[str, int, int]]]:
        loop = asyncio.get_running_loop()
        made = {name: _Request([name] * len(lengths), np.array(lengths), loop.create_future())
                for name, lengths in requests.items()}
        names = {id(r): name for name, r in made.items()}
        waiting = deque(made.values())
        passes = []
        while waiting:
            passes.append([(names[id(r)], start, stop) for r, start, stop in
                           take_pass(waiting, max_texts=max_texts, max_tokens=max_tokens)])
        return passes

    return asyncio.run(main())


def test_a_pass_serves_the_oldest_request_then_the_smallest_within_its_token_budget() -> None:
    # The oldest (big) gets one text (10 tokens); then the fewest texts left first: a (3), b's three
    # (4 each): 25 tokens; big's next text would make 35 > 30. Then big alone, 3 texts (30 tokens) a pass.
    assert _passes({"big": [10] * 10, "a": [3], "b": [4, 4, 4]}, max_texts=6, max_tokens=30) == [
        [("big", 0, 1), ("a", 0, 1), ("b", 0, 3)],
        [("big", 1, 4)],
        [("big", 4, 7)],
        [("big", 7, 10)],
    ]


def test_a_pass_respects_its_text_count_and_always_takes_one_text() -> None:
    assert _passes({"big": [1] * 5, "a": [1], "b": [1, 1]}, max_texts=3, max_tokens=100) == [
        [("big", 0, 1), ("a", 0, 1), ("b", 0, 1)],
        [("big", 1, 3), ("b", 1, 2)],  # big's one text, b's last, then big fills the pass
        [("big", 3, 5)],
    ]
    assert _passes({"huge": [50, 50], "a": [3]}, max_texts=8, max_tokens=30) == [
        [("huge", 0, 1)],  # over the budget on its own: a pass still takes it
        [("huge", 1, 2)],
        [("a", 0, 1)],
    ]


class RecordingTokenizer:
    """A tokenizer that records the longest text it was given."""

    def __init__(self, inner: object) -> None:
        self.inner, self.longest = inner, 0

    def __call__(self, texts: list[str], **kwargs: object) -> object:
        self.longest = max(self.longest, *(len(t) for t in texts))
        return self.inner(texts, **kwargs)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_long_texts_are_clipped_before_they_are_tokenised(folders: list[Path]) -> None:
    model = Spy()(folders[0], device=torch.device("cpu"))
    limit = model.max_length * MAX_CHARS_PER_TOKEN
    prefix = " ".join(TEXTS * 400)[:limit]
    long_text = prefix + " she" * 20_000  # 58 KB more that truncation would drop anyway
    recording = RecordingTokenizer(model.tokenizer)
    model.tokenizer = recording
    proba = TextClassifier.predict_proba(model, [long_text, "a nurse"])
    assert recording.longest <= limit
    np.testing.assert_allclose(proba, TextClassifier.predict_proba(model, [prefix, "a nurse"]), atol=1e-6)
