"""A progress callback that logs each step's start, its quarters and its end with the time it took.

The CLI passes it to the pipeline so a long run says where it is (a budget point, a row's forward pass)."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("editing_service.progress")


class LoggedProgress:
    """Log a step when it starts, when it passes 25/50/75 %, and when it reaches 100 % (with seconds)."""

    marks = (0.25, 0.5, 0.75)

    def __init__(self, log: logging.Logger = logger, clock=time.perf_counter) -> None:
        self.log, self.clock = log, clock
        self.step: str | None = None
        self.started = 0.0
        self.marks_passed = 0
        self.done = False

    def __call__(self, step: str, fraction: float) -> None:
        if step != self.step:
            self.step, self.started, self.marks_passed, self.done = step, self.clock(), 0, False
            self.log.info("%s: started", step)
        if self.done:
            return
        if fraction >= 1.0:
            self.done = True
            self.log.info("%s: done in %.0f s", step, self.clock() - self.started)
            return
        for mark in self.marks[self.marks_passed:]:
            if fraction < mark:
                break
            self.log.info("%s: %d%%", step, round(100 * mark))
            self.marks_passed += 1
