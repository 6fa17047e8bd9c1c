"""Mean ablation's values: the means of every feature and error term over the cached tokens, computed by hand,
and kept in the run so that the graph and the report compute them once, recomputed when the SAEs change."""

from __future__ import annotations

import pytest
import torch

from editing_service.artifacts import ArtifactDir
from editing_service.circuit.ablation import ablation_values
from editing_service.pipeline import ablation_means
from editing_service.pipeline.ablation_means import run_ablation_values
from editing_service.sae import save_sae


def test_the_means_are_the_per_token_means_of_features_and_errors(tiny_circuit) -> None:
    _, saes, _, _, cache = tiny_circuit
    values = ablation_values(saes, "mean", cache)
    for site, sae in saes.items():
        with torch.no_grad():
            x = torch.tensor(cache.read(site.name)).float()
            f = sae.encode(x)
            e = x - sae.decode(f)
        torch.testing.assert_close(values.features[site.name].double(), f.double().mean(0), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(values.error[site.name].double(), e.double().mean(0), atol=1e-6, rtol=1e-5)
    zero = ablation_values(saes, "zero", cache)
    assert all(not v.any() for v in (*zero.features.values(), *zero.error.values()))


def test_a_run_computes_its_means_once_and_again_when_an_sae_changes(tiny_circuit, tmp_path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, saes, _, _, cache = tiny_circuit
    artifacts = ArtifactDir(tmp_path)
    for site, sae in saes.items():
        save_sae(sae, artifacts.sae(site.name))
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return ablation_values(*args, **kwargs)

    monkeypatch.setattr(ablation_means, "ablation_values", counted)
    first = run_ablation_values(artifacts, saes, "mean", cache)
    assert artifacts.ablation_means.is_file() and len(calls) == 1
    again = run_ablation_values(artifacts, saes, "mean", cache)
    assert len(calls) == 1  # read back, not computed
    one_site = dict(list(saes.items())[:1])
    run_ablation_values(artifacts, one_site, "mean", cache)
    assert len(calls) == 1  # a subset of the sites it holds
    for name in first.features:
        assert torch.equal(first.features[name], again.features[name])
        assert torch.equal(first.error[name], again.error[name])

    site, sae = next(iter(saes.items()))
    changed = type(sae)(sae.cfg)
    changed.load_state_dict(sae.state_dict())
    with torch.no_grad():
        changed.b_enc.add_(0.5)
    save_sae(changed, artifacts.sae(site.name))
    fresh = run_ablation_values(artifacts, {site: changed, **dict(list(saes.items())[1:])}, "mean", cache)
    assert len(calls) == 2
    assert not torch.equal(fresh.features[site.name], first.features[site.name])
    run_ablation_values(artifacts, saes, "zero", cache)
    assert len(calls) == 3  # zeros are not kept
