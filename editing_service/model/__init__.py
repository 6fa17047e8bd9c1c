"""Classifiers: loading, sites, hooks and the linear head."""

from editing_service.model.classifier import ModelSource, TextClassifier, find_head, mean_pool
from editing_service.model.head import fit_linear_head
from editing_service.model.hooks import capture, capture_input, hidden_of, intervene, with_hidden
from editing_service.model.load import embedded_default_path, load_classifier
from editing_service.model.sites import Site, find_blocks, find_sites, parse_site_name, resolve_sites

__all__ = [
    "ModelSource",
    "Site",
    "TextClassifier",
    "capture",
    "capture_input",
    "embedded_default_path",
    "find_blocks",
    "find_head",
    "find_sites",
    "fit_linear_head",
    "hidden_of",
    "intervene",
    "load_classifier",
    "mean_pool",
    "parse_site_name",
    "resolve_sites",
    "with_hidden",
]
