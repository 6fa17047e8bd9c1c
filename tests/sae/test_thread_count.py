"""A seeded SAE trains to the same bits whatever the torch thread count, so a seeded run's SAEs, and so its
flags and report, repeat on a machine with another number of cores."""

from __future__ import annotations

import pytest
import torch

from editing_service.sae import SAETrainer
from editing_service.sae.registry import get_sae_class, known_architectures


@pytest.fixture(scope="module")
def activations() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(512, 384, generator=g)
    codes = torch.relu(torch.randn(12_000, 512, generator=g) - 1.5)
    return codes @ basis + 0.1 * torch.randn(12_000, 384, generator=g)


@pytest.mark.parametrize("architecture", known_architectures())
def test_an_sae_trains_to_the_same_bits_on_one_thread_and_on_two(architecture: str, activations) -> None:
    trained = {}
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            trainer = SAETrainer(architecture=architecture, d_sae=1024, k=16, batch_size=1024, n_epochs=2, seed=0,
                                 aux_coefficient=1 / 32)  # on, where the architecture has it, even if off by default
            trainer.fit(activations)
            trained[threads] = trainer.sae_.state_dict()
    finally:
        torch.set_num_threads(before)
    if get_sae_class(architecture).uses_aux_loss:  # the path that once parted: dead features were revived
        assert trainer.history_[-1]["aux"] > 0
    for name, tensor in trained[1].items():
        assert torch.equal(tensor, trained[2][name]), name
