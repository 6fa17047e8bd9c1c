"""Reports: metrics, baselines, report.json / html, model card."""

from editing_service.report.metrics import group_accuracy

__all__ = ["group_accuracy"]
