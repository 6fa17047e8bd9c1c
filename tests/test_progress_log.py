"""The CLI's logged progress: a step's start, quarters and end, each once."""

from __future__ import annotations

import logging

import pytest

from editing_service.pipeline.progress_log import LoggedProgress


def test_each_step_logs_its_start_its_quarters_once_and_its_time(caplog: pytest.LogCaptureFixture) -> None:
    clock = iter([10.0, 17.4, 20.0, 20.0])
    progress = LoggedProgress(logging.getLogger("progress-test"), clock=lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="progress-test"):
        for fraction in (0.0, 0.1, 0.3, 0.31, 0.8, 1.0, 1.0):
            progress("activations:train", fraction)
        progress("edit", 1.0)
    assert [r.getMessage() for r in caplog.records] == [
        "activations:train: started", "activations:train: 25%", "activations:train: 50%",
        "activations:train: 75%", "activations:train: done in 7 s", "edit: started", "edit: done in 0 s",
    ]
