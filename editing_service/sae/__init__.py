"""Sparse autoencoders: TopK, BatchTopK, ReLU + L1 and JumpReLU modules, their trainer, quality and SAELens-format io.

Importing the package registers every architecture (`topk`, `batchtopk`, `relu`, `jumprelu`).
"""

from editing_service.sae.base import SAE, StepOutput, TrainContext
from editing_service.sae.batchtopk import BatchTopKSAE
from editing_service.sae.config import SAEConfig
from editing_service.sae.convert import TopKGate, fit_topk_gate, topk_to_jumprelu
from editing_service.sae.io import load_sae, sae_digest, save_sae
from editing_service.sae.jumprelu import JumpReLUSAE
from editing_service.sae.quality import SAEQuality, sae_quality
from editing_service.sae.registry import get_sae_class, known_architectures, register_sae
from editing_service.sae.relu import ReLUSAE
from editing_service.sae.topk import TopKSAE
from editing_service.sae.trainer import SAETrainer, fit_together, train_saes

__all__ = [
    "SAEQuality",
    "SAE",
    "BatchTopKSAE",
    "JumpReLUSAE",
    "ReLUSAE",
    "SAEConfig",
    "SAETrainer",
    "StepOutput",
    "TopKGate",
    "TopKSAE",
    "TrainContext",
    "get_sae_class",
    "known_architectures",
    "load_sae",
    "sae_digest",
    "register_sae",
    "sae_quality",
    "save_sae",
    "fit_together",
    "fit_topk_gate",
    "topk_to_jumprelu",
    "train_saes",
]
