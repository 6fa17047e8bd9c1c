"""The steps of a run in order, with progress callbacks and one artifact directory.

The outer layer that strings the core together; the CLI and the API call these functions and
nothing deeper.
"""

from editing_service.pipeline.common import ProgressFn, load_inputs, resolve_device
from editing_service.pipeline.discover import run_discover
from editing_service.pipeline.edit import run_edit
from editing_service.pipeline.run import resolve_flags, run_all
from editing_service.pipeline.saes import run_saes, train_site_saes

__all__ = ["ProgressFn", "load_inputs", "resolve_device", "resolve_flags", "run_all", "run_discover",
           "run_edit", "run_saes", "train_site_saes"]
