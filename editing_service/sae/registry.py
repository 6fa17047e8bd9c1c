"""Architecture name -> SAE module class. Each architecture module registers itself once at import."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # avoid an import cycle: the modules import this registry
    from editing_service.sae.base import SAE

ERR_UNKNOWN_ARCHITECTURE = "unknown SAE architecture {name!r}; known architectures: {known}"

_REGISTRY: dict[str, type[SAE]] = {}


def register_sae(architecture: str, sae_class: type[SAE]) -> None:
    """Register `sae_class` under `architecture`; a second registration of the same name is refused."""
    if architecture in _REGISTRY:
        raise ValueError(f"an SAE class is already registered for architecture {architecture!r}")
    _REGISTRY[architecture] = sae_class


def get_sae_class(architecture: str) -> type[SAE]:
    """The module class for `architecture`, or a ValueError naming the known architectures."""
    try:
        return _REGISTRY[architecture]
    except KeyError as err:
        raise ValueError(
            ERR_UNKNOWN_ARCHITECTURE.format(name=architecture, known=list(known_architectures()))
        ) from err


def known_architectures() -> tuple[str, ...]:
    """Registered architecture names, sorted."""
    return tuple(sorted(_REGISTRY))
