"""Settings of a run, shared by the CLI, the pipeline and the API (pydantic, validated when built).

Every size has an upper bound, so one request cannot ask for a job that never ends or fills the disk:
the bounds are generous for real work (a 64k-feature SAE, 100 epochs, 8k-token inputs, 100k
attribution examples, 10k bootstrap resamples).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from editing_service.activations import CacheDtype
from editing_service.circuit.graph import Ablation
from editing_service.edit.rows import check_row_names, default_row_names
from editing_service.edit.served import ServedForm
from editing_service.model.dtype import ModelDtype
from editing_service.model.placement import DeviceMap
from editing_service.report.budget import DEFAULT_BUDGETS
from editing_service.sae import get_sae_class

LexiconWord = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SAESettings(_Settings):
    """How the SAEs of every site are trained."""

    architecture: str = Field(
        "batchtopk", description="a registered SAE architecture (editing_service.sae.registry); batchtopk (default) "
        "is served as the JumpReLU SAE it calibrates, so an edit of it is served exactly",
    )
    d_sae: int = Field(2048, ge=1, le=65536)
    k: int = Field(32, ge=1, le=4096, description="active features per token (topk; the mean for batchtopk)")
    l1_coefficient: float = Field(5.0, ge=0, description="sparsity penalty (relu)")
    l0_coefficient: float = Field(1.0, ge=0, description="sparsity penalty (jumprelu)")
    n_epochs: float = Field(2.0, gt=0, le=100, description="passes over the cached training tokens")
    batch_size: int = Field(1024, ge=1, le=65536)
    lr: float | None = Field(None, gt=0, description="None: scaled with d_sae (Gao et al. 2024)")
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @field_validator("architecture")
    @classmethod
    def _registered(cls, value: str) -> str:
        get_sae_class(value)  # the registry's error names the known architectures
        return value

    def trainer_kwargs(self) -> dict[str, object]:
        """Keyword arguments for `editing_service.sae.SAETrainer`."""
        return self.model_dump()


class ModelSettings(_Settings):
    """Which classifier to load and how to run it."""

    path: str | None = Field(None, description="model folder; None for the embedded default (MiniLM)")
    probe_layer: int = Field(-1, ge=-1024, le=1024, description="block whose mean-pooled output a probe head reads")
    max_length: int = Field(256, ge=8, le=8192)
    batch_size: Annotated[int, Field(ge=1, le=1024)] | Literal["auto"] = Field(
        "auto", description="texts per forward pass; auto: from the device's free memory and the model's shape "
        "(editing_service.model.memory)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: ModelDtype = Field("auto", description="weights' dtype; auto: the checkpoint's on a GPU, float32 on the CPU")
    device_map: Literal["none", "auto"] = Field(
        "none", description="auto: keep on the device the weights that fit (device_memory_gb), offload the rest to "
        "CPU memory (cpu_memory_gb, behind a GPU) and then to disk, and compute on the device (for a model that "
        "does not fit it); none: every weight on the device")
    device_memory_gb: float | None = Field(None, gt=0, le=100_000, description="device_map auto: GiB of weights kept "
                                           "on the device; None: what is free")
    cpu_memory_gb: float | None = Field(None, gt=0, le=100_000, description="device_map auto on a GPU: GiB of "
                                        "weights kept in CPU memory before disk; None: what is free")

    @model_validator(mode="after")
    def _budgets_need_a_map(self) -> ModelSettings:
        given = [name for name in ("device_memory_gb", "cpu_memory_gb") if getattr(self, name) is not None]
        if given and self.device_map == "none":
            raise ValueError(f"{' and '.join(given)} set the budget of device_map auto; device_map is none")
        return self

    def placement(self) -> DeviceMap | None:
        """The budget `load_classifier` offloads by, or None to hold every weight on the device."""
        if self.device_map == "none":
            return None
        return DeviceMap(device_gb=self.device_memory_gb, cpu_gb=self.cpu_memory_gb)


class CacheSettings(_Settings):
    """Where the SAEs' training activations come from: the on-disk cache, or a stream of forward passes."""

    cache_dtype: CacheDtype = Field("float16", description="storage of cached activations (float16: within 0.01 "
                                    "of float32 in FVU and attribution, BENCHMARKS.md)")
    cache_tokens_per_text: int | None = Field(
        None, ge=1, le=8192, description="training split: cache a seeded sample of at most this many tokens per text "
        "(the SAEs' training data); None caches every token")
    cache_mode: Literal["auto", "disk", "stream"] = Field(
        "auto", description="disk: cache every training token; stream: train the SAEs from a shuffled buffer fed by "
        "forward passes and keep only a token sample of the training split on disk; auto: stream when the training "
        "cache's estimated size exceeds cache_budget_gb")
    cache_budget_gb: float = Field(50.0, gt=0, le=1_000_000, description="disk budget of the training cache (auto mode)")
    stream_buffer_tokens: int = Field(2**17, ge=1024, le=2**24, description="tokens per site in the stream's shuffle "
                                      "buffer (at least two SAE batches are kept)")
    stream_sample_tokens: int = Field(2**14, ge=1, le=2**24, description="stream mode: training tokens kept on disk "
                                      "(the sample for means, served-form fits and quality, which read at most 16,384 "
                                      "tokens); at least one per text")


class SAERunSettings(CacheSettings):
    """Everything the `saes` step needs."""

    spec: str
    model: ModelSettings = ModelSettings()
    sites: list[str] | None = Field(None, description="site names; None for every block output")
    sae: SAESettings = SAESettings()
    splice_check: bool = Field(True, description="accuracy with each SAE spliced in, on the validate role")


class AttributionSettings(_Settings):
    """How node effects are computed."""

    method: Literal["attrib", "ig"] = "attrib"
    n_examples: int = Field(512, ge=1, le=100_000, description="training examples, drawn stratified by class")
    batch_size: int = Field(16, ge=1, le=1024)
    ig_steps: int = Field(10, ge=1, le=256)
    seed: int = Field(0, ge=0, le=2**32 - 1)


class CircuitSettings(_Settings):
    """Which features form the circuit shown to reviewers."""

    top_k: int | None = Field(300, ge=1, le=100_000)
    threshold: float | None = Field(None, ge=0)
    per_site: bool = Field(True, description="top_k within each site rather than over all sites")


class GraphSettings(_Settings):
    """The circuit as a graph (circuit.json): nodes, edges, faithfulness, exact pruning, the head lens."""

    build: bool = Field(True, description="compute circuit.json during discover (its longest step); off: compute it "
                        "later with `editing-service circuit --compute`")
    nodes_per_site: int = Field(50, ge=1, le=10_000, description="strongest features per site drawn as nodes (plus "
                                "its error node)")
    node_threshold: float = Field(0.0, ge=0, description="nodes need |score| >= this")
    edge_threshold: float = Field(0.0, ge=0, description="edges kept in circuit.json need |weight| >= this")
    n_examples: int = Field(128, ge=1, le=100_000, description="training examples for edges and faithfulness")
    batch_size: int = Field(2, ge=1, le=1024, description="examples per batch of the graph's passes (edge VJPs, "
                            "the faithfulness curve, pruning); examples do not interact, so small length-sorted "
                            "batches waste least on padding and on the VJP rows that a batch's busiest example sets")
    vjp_chunk: int = Field(16, ge=1, le=1024, description="downstream nodes per batched VJP")
    ablation: Ablation = Field("mean", description="ablated nodes take their training-split mean, or zero")
    curve_sizes: list[Annotated[int, Field(ge=1)]] = Field([5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
                                                           min_length=1, max_length=64)
    faithful_target: float = Field(0.8, gt=0, le=1)
    prune: bool = Field(False, description="exact (ACDC-style) pruning of the attribution circuit")
    prune_tau: float = Field(1e-3, ge=0, description="KL threshold of exact pruning")
    prune_nodes: int = Field(100, ge=1, le=100_000, description="strongest nodes of the graph that pruning starts from")
    prune_examples: int = Field(32, ge=1, le=100_000, description="training examples of exact pruning")
    head_lens: bool = True


class SuggestionSettings(_Settings):
    """Flag suggestions (computed on the validate role, never on evaluation data)."""

    lexicon: str | Annotated[list[LexiconWord], Field(min_length=1, max_length=10_000)] = Field(
        "gendered", description="a shipped lexicon name, the words themselves, or (command line only) a "
        "word-list file")
    lexicon_threshold: float = Field(0.3, ge=0, le=1)
    min_active_tokens: int = Field(10, ge=1, le=1_000_000)
    attribute_threshold: float = Field(0.2, ge=0, le=0.5)
    max_firing_rate: float = Field(
        1.0, gt=0, le=1, description="a feature nonzero on more than this share of the validate tokens is never "
        "suggested (a dense feature: ablating it removes part of nearly every token)")


class EditSettings(_Settings):
    """The edit, the retrained head and the report."""

    mode: Literal["zero", "mean"] = "zero"
    head_C: float | Literal["validate"] = Field(
        "validate", description="inverse L2 strength of the heads, or 'validate': chosen on the validate split"
    )
    seed: int = Field(0, ge=0, le=2**32 - 1)
    served_form: ServedForm = Field(
        "gate", description="how flagged TopK features are served: the gate (a per-feature offset from a linear "
        "estimate of the token's TopK cut; one more thin product), or per-feature JumpReLU thresholds",
    )
    erase_at_edited_sites: bool | Literal["auto"] = Field(
        "auto", description="after the feature ablation at every edited site, a LEACE eraser of the protected "
        "attribute (fitted on the validate split, cell-balanced) removes its linear directions from what the "
        "ablation leaves: the SAE error term and the unflagged features. 'auto': when the dataset has a "
        "protected attribute with groups in the validate split",
    )
    baselines: list[str] = Field(
        default_factory=default_row_names, max_length=50,
        description="the optional report rows to run (the row registry's names; default: every one on by default)",
    )
    budget: list[int] = Field(
        default_factory=list, max_length=20,
        description=f"budget-curve sizes N, plus all flags (e.g. {list(DEFAULT_BUDGETS)}); empty: no curve. Off by "
        "default: each N costs a forward pass over the training and evaluation splits",
    )
    n_boot: int = Field(200, ge=0, le=10_000,
                        description="bootstrap resamples of the report's confidence intervals; 0: no bootstrap "
                        "intervals (the cells keep their Wilson intervals)")

    @field_validator("baselines")
    @classmethod
    def _registered(cls, names: list[str]) -> list[str]:
        return check_row_names(names)

    @field_validator("budget")
    @classmethod
    def _positive(cls, sizes: list[int]) -> list[int]:
        if any(not 1 <= n <= 100_000 for n in sizes):
            raise ValueError(f"budget sizes must be between 1 and 100000, got {sizes}")
        return sizes


class RunSettings(CacheSettings):
    """Everything a whole run (discover, flags, edit, report) needs."""

    spec: str
    model: ModelSettings = ModelSettings()
    sites: list[str] | None = None
    sae: SAESettings = SAESettings()
    attribution: AttributionSettings = AttributionSettings()
    circuit: CircuitSettings = CircuitSettings()
    graph: GraphSettings = GraphSettings()
    suggestions: SuggestionSettings = SuggestionSettings()
    edit: EditSettings = EditSettings()
    seeds: int = Field(1, ge=1, le=100, description="repeats of SAE training and everything after it, seeds 0..N-1 added")

    def with_seed_offset(self, offset: int) -> RunSettings:
        """These settings with `offset` added to every seed from SAE training on."""
        return self.model_copy(update={
            "sae": self.sae.model_copy(update={"seed": self.sae.seed + offset}),
            "attribution": self.attribution.model_copy(update={"seed": self.attribution.seed + offset}),
            "edit": self.edit.model_copy(update={"seed": self.edit.seed + offset}),
            "seeds": 1,
        })
