"""Faithfulness and completeness of node sets (Marks et al. 2024).

F(C) is the mean metric with every node outside C ablated at every site; F(empty) with every node
ablated; F(M) the model's own. faithfulness(C) = (F(C) - F(empty)) / (F(M) - F(empty)), and
completeness(C) is the same ratio for F(M \\ C), the model with only C's nodes ablated (0: nothing of
the behaviour is left outside C). Node ids are those of circuit.json ('<site>/<i>', '<site>/error').
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

from editing_service.circuit.ablation import AblationValues, SiteKeep, ablate_outside
from editing_service.circuit.graph import ERROR, CurvePoint, FaithfulnessCurve, SetFaithfulness
from editing_service.circuit.metric import true_class_metric
from editing_service.model.batching import length_sorted_batches
from editing_service.model.classifier import TextClassifier
from editing_service.model.sites import Site
from editing_service.sae.splice import Dictionary

DEFAULT_SIZES = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
UNKNOWN_NODE = "Node {id!r} is not a node of the spliced sites {sites} (a feature index past the SAE, or no such site)."


class NodeSetEvaluator:
    """The classifier on a fixed set of examples with any node set kept and the rest ablated.

    The examples are tokenised once; `logits(keep)` costs one forward pass over them, except for the
    model itself and the empty circuit, run once each (keeping every node leaves every site alone, so the
    full circuit's logits are the model's and its complement's the empty circuit's).
    """

    def __init__(
        self, classifier: TextClassifier, saes: Mapping[Site, Dictionary], texts: list[str], labels: np.ndarray,
        values: AblationValues, *, batch_size: int = 32,
    ) -> None:
        if not texts:
            raise ValueError("Faithfulness needs at least one example.")
        self.classifier, self.saes, self.values = classifier, dict(saes), values
        self.labels = torch.as_tensor(np.asarray(labels), device=classifier.device)
        self.batches = [(torch.as_tensor(rows), b.to(classifier.device)) for rows, b in length_sorted_batches(
            classifier.tokenizer, texts, batch_size=batch_size, max_length=classifier.max_length)]
        self.n = len(texts)
        self.forward_passes = 0
        self._known: dict[str, torch.Tensor] = {}  # 'model', 'empty': logits run once

    @property
    def site_names(self) -> list[str]:
        return [s.name for s in self.saes]

    def keep_masks(self, ids: Iterable[str], *, complement: bool = False) -> dict[str, SiteKeep]:
        """Per-site masks keeping `ids` (or, with `complement`, everything but `ids`)."""
        device = self.classifier.device
        keep = {s.name: (SiteKeep.everything if complement else SiteKeep.nothing)(int(sae.W_dec.shape[0]), device)
                for s, sae in self.saes.items()}
        for node in ids:
            site, _, index = node.rpartition("/")
            if site not in keep:
                raise ValueError(UNKNOWN_NODE.format(id=node, sites=self.site_names))
            if index == ERROR:
                keep[site].error = complement is False
            elif index.isdigit() and int(index) < keep[site].features.numel():
                keep[site].features[int(index)] = complement is False
            else:
                raise ValueError(UNKNOWN_NODE.format(id=node, sites=self.site_names))
        return keep

    @torch.no_grad()
    def logits(self, keep: Mapping[str, SiteKeep] | None = None) -> torch.Tensor:
        """[n, C] logits in the examples' order; `keep=None` is the model itself."""
        known = _known_set(keep, self.site_names)
        if known in self._known:
            return self._known[known]
        out = torch.empty((self.n, len(self.classifier.classes)), device=self.classifier.device)
        with ablate_outside(self.classifier.backbone, self.saes, keep or {}, self.values,
                            leading=self.classifier.rule.sink_positions):
            for rows, batch in self.batches:
                out[rows] = self.classifier(batch["input_ids"], batch["attention_mask"]).float()
        self.forward_passes += 1
        if known is not None:
            self._known[known] = out
        return out

    def f(self, keep: Mapping[str, SiteKeep] | None = None) -> float:
        """F: the mean metric with `keep` kept (None: the model)."""
        return float(true_class_metric(self.logits(keep), self.labels).mean())

    def f_model(self) -> float:
        return self.f(None)

    def f_empty(self) -> float:
        return self.f(self.keep_masks([]))


def _known_set(keep: Mapping[str, SiteKeep] | None, sites: list[str]) -> str | None:
    """'model' when `keep` keeps every node (or is None), 'empty' when it keeps none at every site, else None."""
    if keep is None or all(k.error and bool(k.features.all()) for k in keep.values()):
        return "model"
    if set(keep) >= set(sites) and all(not k.error and not bool(k.features.any()) for k in keep.values()):
        return "empty"
    return None


def normalised(f: float, f_model: float, f_empty: float) -> float | None:
    """(f - F(empty)) / (F(M) - F(empty)); None when the model and the empty circuit agree."""
    span = f_model - f_empty
    return float((f - f_empty) / span) if abs(span) > 1e-12 else None


def faithfulness_curve(
    evaluator: NodeSetEvaluator, ranked: list[str], *, sizes: Iterable[int] = DEFAULT_SIZES, target: float = 0.8,
) -> FaithfulnessCurve:
    """Faithfulness and completeness of the `n` first nodes of `ranked` (strongest first) for each size
    (sizes past the end are dropped; the full list is always the last point)."""
    f_model, f_empty = evaluator.f_model(), evaluator.f_empty()
    counts = sorted({n for n in sizes if 0 < n < len(ranked)} | {len(ranked)})
    points = []
    for n in counts:
        chosen = ranked[:n]
        f_c = evaluator.f(evaluator.keep_masks(chosen))
        f_rest = evaluator.f(evaluator.keep_masks(chosen, complement=True))
        points.append(CurvePoint(n_nodes=n, f_circuit=f_c, f_complement=f_rest,
                                 faithfulness=normalised(f_c, f_model, f_empty),
                                 completeness=normalised(f_rest, f_model, f_empty)))
    smallest = next((p.n_nodes for p in points if p.faithfulness is not None and p.faithfulness >= target), None)
    return FaithfulnessCurve(ablation=evaluator.values.kind, n_examples=evaluator.n, f_model=f_model,
                             f_empty=f_empty, points=points, target=target, smallest_faithful=smallest,
                             statement=curve_statement(points, smallest, target, len(ranked)))


def curve_statement(points: list[CurvePoint], smallest: int | None, target: float, total: int) -> str:
    if not points or all(p.faithfulness is None for p in points):
        return "Faithfulness is undefined: ablating every node leaves the metric where the model has it."
    if smallest is None:
        best = max(points, key=lambda p: p.faithfulness if p.faithfulness is not None else -np.inf)
        return (f"The circuit is NOT faithful: no circuit up to {points[-1].n_nodes} nodes reaches "
                f"faithfulness {target:g} (best {best.faithfulness:.2f} at {best.n_nodes} nodes).")
    reached = next(p for p in points if p.n_nodes == smallest)
    return (f"The {smallest} strongest nodes (of {total}) are faithful: faithfulness {reached.faithfulness:.2f} "
            f">= {target:g}; completeness {reached.completeness:.2f} (ablating them leaves that fraction).")


def set_faithfulness(evaluator: NodeSetEvaluator, name: str, ids: list[str]) -> SetFaithfulness:
    """Faithfulness and completeness of one node set (for example the flagged features)."""
    f_model, f_empty = evaluator.f_model(), evaluator.f_empty()
    f_set = evaluator.f(evaluator.keep_masks(ids))
    f_rest = evaluator.f(evaluator.keep_masks(ids, complement=True))
    faith, complete = normalised(f_set, f_model, f_empty), normalised(f_rest, f_model, f_empty)
    if faith is None or complete is None:
        statement = "Undefined: ablating every node leaves the metric where the model has it."
    else:
        statement = (f"Ablating only the {len(ids)} {name} nodes leaves {complete:.0%} of the behaviour "
                     f"(F(M) - F(empty)); the {name} nodes alone carry {faith:.0%} of it.")
    return SetFaithfulness(name=name, node_ids=list(ids), f_set=f_set, f_complement=f_rest,
                           faithfulness=faith, completeness=complete, statement=statement)
