"""SAETrainer: learns planted features, folds its input scale, streams memmaps, refuses bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from sae_factories import planted_data, recovered_fraction

from editing_service.sae import SAETrainer, TopKSAE, load_sae, sae_quality, train_saes
from editing_service.sae.data import iter_batches
from editing_service.sae.plan import make_plan
from editing_service.sae.threads import ThreadTuner


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Tiny problems: thread hand-offs cost more than they save, and on a busy machine far more.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray]:
    return planted_data(n=10000, d=32, m=48, active=3, seed=0)


@pytest.mark.parametrize(
    ("arch", "kwargs", "minimum"),
    [
        ("topk", {"k": 3, "n_epochs": 10}, 0.8),
        ("batchtopk", {"k": 3, "n_epochs": 10}, 0.8),
        ("relu", {"l1_coefficient": 1.0, "n_epochs": 30}, 0.8),
        ("jumprelu", {"k": 3, "n_epochs": 10}, 0.6),
    ],
)
def test_training_recovers_planted_directions(
    arch: str, kwargs: dict, minimum: float, planted: tuple[np.ndarray, np.ndarray]
) -> None:
    x, dirs = planted
    trainer = SAETrainer(architecture=arch, d_sae=64, batch_size=256, lr=3e-3, **kwargs).fit(x)
    assert recovered_fraction(trainer.sae_, dirs) >= minimum
    torch.testing.assert_close(trainer.sae_.W_dec.norm(dim=1), torch.ones(64))  # decoder norms folded
    quality = sae_quality(trainer.sae_, x)
    assert quality.fvu < 0.25
    assert 1.5 < quality.l0 < 8


def test_saved_sae_takes_raw_inputs(planted: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    # Doubling the data halves the input scale, so training sees bit-identical normalised batches; the
    # folded SAEs must then satisfy sae2(2 x) == 2 sae1(x), whatever the scale.
    x = planted[0][:4000]
    kwargs = {"architecture": "topk", "d_sae": 64, "k": 3, "batch_size": 256, "n_epochs": 5, "lr": 3e-3}
    one = SAETrainer(**kwargs).fit(x)
    two = SAETrainer(**kwargs).fit(2 * x)
    assert two.input_scale_ == pytest.approx(one.input_scale_ / 2, rel=1e-12)
    assert one.history_ == [
        {**h, "elapsed_s": h2["elapsed_s"]} for h, h2 in zip(two.history_, one.history_, strict=True)
    ]
    xt = torch.from_numpy(x[:500])
    with torch.no_grad():
        torch.testing.assert_close(two.sae_(2 * xt), 2 * one.sae_(xt), rtol=1e-5, atol=1e-5)
    # the folded SAE reconstructs raw activations (a missing fold would be off by the scale, ~2.3 here)
    assert one.input_scale_ > 2
    assert sae_quality(one.sae_, x).fvu < 0.6
    one.save(tmp_path / "sae")
    reloaded = load_sae(tmp_path / "sae")
    torch.testing.assert_close(reloaded(xt), one.sae_(xt))
    assert reloaded.cfg.metadata["input_scale"] == one.input_scale_


def test_history_progress_and_metadata(planted: tuple[np.ndarray, np.ndarray]) -> None:
    seen: list[float] = []
    trainer = SAETrainer(d_sae=64, k=3, batch_size=500, n_tokens=5000, log_every=4, hook_name="blocks.1.out")
    trainer.fit(planted[0], progress=seen.append)
    assert trainer.n_steps_ == 10
    assert [h["step"] for h in trainer.history_] == [4, 8, 10]
    assert seen == [0.4, 0.8, 1.0]
    assert set(trainer.history_[0]) >= {"loss", "mse", "fvu", "aux", "l0", "dead_fraction", "lr", "tokens"}
    assert trainer.sae_.cfg.hook_name == "blocks.1.out"
    assert trainer.sae_.cfg.metadata["n_training_tokens"] == 5000
    assert isinstance(trainer.sae_, TopKSAE)


def test_fits_a_float16_memmap_without_touching_it(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((3000, 16)).astype(np.float16)
    mm = np.lib.format.open_memmap(tmp_path / "acts.npy", mode="w+", dtype=np.float16, shape=x.shape)
    mm[:] = x
    mm.flush()
    data = np.load(tmp_path / "acts.npy", mmap_mode="r")
    trainer = SAETrainer(d_sae=32, k=4, batch_size=256, chunk_rows=700, n_epochs=1).fit(data)
    assert trainer.sae_.d_in == 16
    tensor = torch.from_numpy(x.astype(np.float32))
    copy = tensor.clone()
    SAETrainer(d_sae=32, k=4, batch_size=256, n_epochs=1).fit(tensor)
    assert torch.equal(tensor, copy)


def test_batches_visit_every_row_once_per_epoch() -> None:
    x = np.arange(1000, dtype=np.float32)[:, None].repeat(2, axis=1)
    stream = iter_batches(
        x,
        batch_size=32,
        chunk_rows=100,
        scale=1.0,
        rng=np.random.default_rng(0),
        device=torch.device("cpu"),
        dtype=torch.float32,
    )
    rows = torch.cat([next(stream)[:, 0] for _ in range(1000 // 32)])
    assert len(set(rows.tolist())) == len(rows) == 992
    assert not torch.equal(rows[:32], torch.arange(32.0))  # shuffled


def test_train_saes_trains_one_per_site_and_reports_progress() -> None:
    rng = np.random.default_rng(0)
    sites = {"blocks.0.out": rng.standard_normal((600, 8)), "blocks.1.out": rng.standard_normal((600, 8))}
    calls: list[tuple[str, float]] = []
    saes = train_saes(
        sites,
        progress=lambda site, frac: calls.append((site, frac)),
        d_sae=16,
        k=2,
        batch_size=100,
        log_every=3,
    )
    assert list(saes) == list(sites)
    assert all(sae.cfg.hook_name == site for site, sae in saes.items())
    assert calls == [
        ("blocks.0.out", 0.5),
        ("blocks.0.out", 1.0),
        ("blocks.1.out", 0.5),
        ("blocks.1.out", 1.0),
    ]


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "message"),
    [
        (np.zeros(10, dtype=np.float32), {}, ValueError, r"2-D array \[n_tokens, d_in\], got shape \(10,\)"),
        (np.zeros((10, 4), dtype=np.int64), {}, ValueError, "float16, float32 or float64"),
        (np.zeros((0, 4), dtype=np.float32), {}, ValueError, "empty"),
        ([[0.0, 1.0]], {}, TypeError, "numpy array, np.memmap or torch tensor"),
        (
            np.ones((10, 4), dtype=np.float32),
            {"d_sae": 8, "k": 9},
            ValueError,
            r"1 <= k <= d_sae \(8\), got 9",
        ),
        (np.ones((10, 4), dtype=np.float32), {"architecture": "gated"}, ValueError, "known architectures"),
        (np.ones((10, 4), dtype=np.float32), {"n_epochs": 0}, ValueError, "n_epochs must be > 0"),
    ],
)
def test_bad_inputs_are_refused(data: object, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        SAETrainer(**kwargs).fit(data)


def test_unfitted_trainer_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not fitted yet"):
        SAETrainer().save(tmp_path)


def test_plan_resolves_defaults_and_schedules() -> None:
    params = vars(SAETrainer(batch_size=100, n_epochs=2.0, warmup_steps=4, lr_decay_fraction=0.25, lr=1e-3))
    plan = make_plan(params, n_data=1000, d_in=16)
    assert (plan.d_sae, plan.batch, plan.n_steps, plan.aux_k) == (128, 100, 20, 8)
    lrs = [plan.lr_at(step) for step in range(plan.n_steps)]
    assert lrs[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert lrs[4:15] == pytest.approx([1e-3] * 11)
    assert lrs[15:] == pytest.approx([1e-3 * (5 - i) / 6 for i in range(5)])
    assert make_plan({**params, "lr": None, "d_sae": 2048}, 1000, 16).lr == pytest.approx(2e-3)


def test_thread_tuner_keeps_the_faster_count_and_restores() -> None:
    torch.set_num_threads(2)
    tuner = ThreadTuner(enabled=True, period=10, trials=2)
    seen = []
    for step in range(18):
        tuner.before_step(step)
        threads = torch.get_num_threads()
        seen.append(threads)
        busy = 0.5 if step == 16 else 0.1  # one slow step: load arrived
        tuner.after_step(step, 0.3 if threads == 2 else busy)  # a busy machine: 1 thread is faster
    # trials at steps 1-4, again after the period (12-15) and right after the slow step 16
    assert seen == [2, 2, 1, 2, 1] + [1] * 7 + [2, 1, 2, 1] + [1, 2]
    assert tuner.current == 1
    tuner.restore()
    assert torch.get_num_threads() == 2
    assert not ThreadTuner(enabled=False).enabled
