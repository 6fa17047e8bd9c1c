"""Neuron ablation: zero chosen dimensions of a site's output (the baseline that shows the SAE's worth)."""

from __future__ import annotations

import torch

from editing_service.model.classifier import SiteIntervention
from editing_service.model.sites import Site

NO_NEURONS = "A neuron ablation at site {site} needs at least one neuron."


class NeuronAblation(SiteIntervention):
    """x[..., i] <- 0 for every chosen neuron i of one site."""

    def __init__(self, site: Site, neurons: list[int]) -> None:
        super().__init__()
        if not neurons:
            raise ValueError(NO_NEURONS.format(site=site.name))
        self.site = site
        self.neurons = [int(i) for i in neurons]
        self.register_buffer("index", torch.as_tensor(self.neurons, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_fill(-1, self.index.to(x.device), 0.0)

    def extra_repr(self) -> str:
        return f"site={self.site.name}, neurons={self.neurons}"
