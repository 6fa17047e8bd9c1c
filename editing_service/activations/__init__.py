"""Activation caches: one forward pass over a split, memory-mapped per site."""

from editing_service.activations.cache import ActivationCache, CacheDtype
from editing_service.activations.collect import collect_activations

__all__ = ["ActivationCache", "CacheDtype", "collect_activations"]
