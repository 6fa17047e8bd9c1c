"""editing_service: find, flag and remove spurious features in text classifiers (SHIFT)."""

__version__ = "0.1.0"
