"""Exact pruning, ACDC-style (Conmy et al. 2023), on nodes.

Start from the attribution circuit (everything else ablated). Visit its nodes from the last site back
to the first (weakest first within a site) and remove a node for good when its exact removal raises
KL(model || circuit), averaged over the examples, by less than `tau`. Reported: the kept nodes, the
faithfulness of the pruned circuit, and the AUROC of |attribution score| as a predictor of "kept".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from sklearn.metrics import roc_auc_score

from editing_service.circuit.faithfulness import NodeSetEvaluator, normalised
from editing_service.circuit.graph import Pruning

BAD_TAU = "tau must be >= 0, got {tau}."


def kl_from_model(model_logits: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean over examples of KL(p_model || p)."""
    log_p = torch.log_softmax(model_logits.double(), -1)
    log_q = torch.log_softmax(logits.double(), -1)
    return float((log_p.exp() * (log_p - log_q)).sum(-1).mean())


def visit_order(nodes: list[str], scores: Mapping[str, float], sites: list[str]) -> list[str]:
    """Last site first; within a site, the weakest |score| first."""
    depth = {name: i for i, name in enumerate(sites)}
    return sorted(nodes, key=lambda n: (-depth[n.rpartition("/")[0]], abs(scores[n])))


def exact_pruning(
    evaluator: NodeSetEvaluator, nodes: list[str], scores: Mapping[str, float], *, tau: float,
    on_progress: Callable[[float], None] | None = None,
) -> Pruning:
    """Prune `nodes` (ids of the starting circuit) by exact ablation against the KL threshold `tau`."""
    if not tau >= 0:
        raise ValueError(BAD_TAU.format(tau=tau))
    model_logits = evaluator.logits(None)
    current = set(nodes)
    kl_now = kl_from_model(model_logits, evaluator.logits(evaluator.keep_masks(current)))
    order = visit_order(nodes, scores, evaluator.site_names)
    for step, node in enumerate(order):
        trial = current - {node}
        kl_trial = kl_from_model(model_logits, evaluator.logits(evaluator.keep_masks(trial)))
        if kl_trial - kl_now < tau:
            current, kl_now = trial, kl_trial
        if on_progress is not None:
            on_progress((step + 1) / len(order))
    kept = [n for n in order if n in current]
    f_pruned = evaluator.f(evaluator.keep_masks(current))
    labels = [n in current for n in order]
    auroc = (float(roc_auc_score(labels, [abs(scores[n]) for n in order])) if 0 < sum(labels) < len(labels)
             else None)
    return Pruning(tau=tau, ablation=evaluator.values.kind, n_examples=evaluator.n, visited=order, kept=kept,
                   faithfulness=normalised(f_pruned, evaluator.f_model(), evaluator.f_empty()), kl=kl_now,
                   auroc=auroc)
