"""What every pipeline step shares: device choice, loading inputs, caching a role, the progress type."""

from __future__ import annotations

from collections.abc import Callable

import torch

from editing_service.activations import ActivationCache, collect_activations
from editing_service.artifacts import ArtifactDir
from editing_service.data import DatasetSpec, TextSplit, load_role, load_spec
from editing_service.edit.rows import sites_needed
from editing_service.model import Site, TextClassifier, load_classifier
from editing_service.settings import ModelSettings

ProgressFn = Callable[[str, float], None]
CUDA_UNAVAILABLE = "Device 'cuda' was asked for but torch sees no CUDA device."


def quiet(_step: str, _fraction: float) -> None:
    """A progress callback that reports nothing."""
    return None


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when torch sees a GPU, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(CUDA_UNAVAILABLE)
    return torch.device(name)


def load_inputs(spec_ref: str, model: ModelSettings) -> tuple[DatasetSpec, TextClassifier]:
    """The dataset spec (a shipped name or a YAML path) and the classifier for its labels."""
    spec = load_spec(spec_ref)
    classifier = load_classifier(
        model.path, classes=list(spec.labels), probe_layer=model.probe_layer, max_length=model.max_length,
        device=resolve_device(model.device), dtype=model.dtype, device_map=model.placement(),
    )
    return spec, classifier


def discovery_sites(classifier: TextClassifier, sites: list[str] | None, rows: list[str]) -> list[Site]:
    """The run's edit sites (`sites`; None: every block output) and the extra sites its report rows
    need (`rows`: the optional rows switched on), in model order."""
    names = [s.name for s in classifier.resolve_sites(sites)]
    available = {s.name for s in classifier.sites(("embed", "block", "attn", "mlp"))}
    names += [s for s in sites_needed(rows) if s not in names and s in available]  # a model may lack one
    return classifier.resolve_sites(names)


def group_attribute(spec: DatasetSpec) -> str | None:
    """The protected attribute reports group by: the spec's first one, if any."""
    return spec.protected[0].name if spec.protected else None


def cache_role(
    classifier: TextClassifier,
    spec: DatasetSpec,
    role: str,
    *,
    sites: list[Site],
    artifacts: ArtifactDir,
    dtype: str = "float32",
    batch_size: int = 32,
    progress: ProgressFn = quiet,
    tokens_per_text: int | None = None,
    reuse: bool = False,
    split: TextSplit | None = None,
) -> tuple[TextSplit, ActivationCache]:
    """Load the subset playing `role` and cache its activations (one forward pass).

    `tokens_per_text` samples the training role's tokens only: the validate role's cache feeds the feature
    cards, which show every token of a text. With `reuse`, a cache already there for the same subset,
    sites and storage type is opened instead (the repeats of `--seeds` share the first run's passes).
    `split`: the role's subset when the caller has loaded it already."""
    split = load_role(spec, role) if split is None else split
    if reuse and (artifacts.cache(role) / "meta.json").is_file():
        cache = ActivationCache.open(artifacts.cache(role))
        same = (cache.meta.get("subset") == split.name and cache.meta.get("dtype") == dtype
                and list(cache.meta["sites"]) == [s.name for s in sites] and cache.n_examples == len(split.texts)
                and cache.meta.get("tokens_per_text") == (tokens_per_text if role == "train" else None))
        if same:
            return split, cache
    cache = collect_activations(
        classifier, split.texts, sites=sites, out_dir=artifacts.cache(role), labels=split.labels,
        dtype=dtype, batch_size=batch_size, on_progress=lambda f: progress(f"activations:{role}", f),
        info={"role": role, "subset": split.name, "spec": spec.name},
        tokens_per_text=tokens_per_text if role == "train" else None,
    )
    return split, cache
