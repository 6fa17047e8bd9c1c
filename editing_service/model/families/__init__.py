"""Model-family rules: what differs between transformer families, one file per family.

A rule says where a family's blocks are (and which application of a shared block each layer is), where
its attention and MLP outputs are, which module is its classification head, which token a decoder
classifier's head reads, and what extra inputs its base model needs. `rule_for(model)` picks the rule
whose `model_types` include the model's `config.model_type`, else the default rule. Every module of this
package is imported here, so adding a family is adding one file that calls `register`.
"""

from __future__ import annotations

import importlib
import pkgutil

from torch import nn

from editing_service.model.families.base import BlockRef, FamilyRule

_RULES: dict[str, FamilyRule] = {}
DEFAULT = FamilyRule()
DUPLICATE_MODEL_TYPE = "model_type {model_type!r} already has the family rule {name!r}."


def register(rule: FamilyRule) -> FamilyRule:
    """Make `rule` the rule of each of its model types."""
    for model_type in rule.model_types:
        if model_type in _RULES:
            raise ValueError(DUPLICATE_MODEL_TYPE.format(model_type=model_type, name=_RULES[model_type].name))
        _RULES[model_type] = rule
    return rule


def rule_for(model: nn.Module) -> FamilyRule:
    """The family rule of a model (by its `config.model_type`)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return _RULES.get(str(model_type), DEFAULT)


def registered() -> dict[str, FamilyRule]:
    """{model_type: rule} of every registered family."""
    return dict(_RULES)


for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["DEFAULT", "BlockRef", "FamilyRule", "register", "registered", "rule_for"]
