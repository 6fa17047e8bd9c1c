"""The SHIFT edit: ablating flagged features (served form), retraining the head, saving the model."""

from editing_service.edit.ablation import FeatureAblation, check_features
from editing_service.edit.io import load_model, read_model_config, save_model
from editing_service.edit.retrain import head_features, retrain_head

__all__ = ["FeatureAblation", "check_features", "head_features", "load_model", "read_model_config",
           "retrain_head", "save_model"]
