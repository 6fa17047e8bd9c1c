"""Pick the faster CPU thread count while training, because a busy machine can make more threads slower.

A TopK step is a few large products and many small ops, each an OpenMP parallel region. When another
process competes for the cores, every region waits for its slowest thread: measured on a 2-core machine
with one busy process beside it, a step took 1.5 s with 2 threads and 0.33 s with 1 (0.09 s with 2 on an
idle machine). So the trainer times two steps with the configured thread count and two with one thread,
keeps the faster, and tries again when a step takes much longer than the chosen count's trial did (load
arrived) or after `period` steps (load may have gone). The configured count is restored at the end. CPU
only: on CUDA the host threads barely matter.
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


class ThreadTuner:
    """Chooses between `torch.get_num_threads()` and 1 thread during a training loop."""

    def __init__(self, *, enabled: bool, period: int = 100, trials: int = 2, slowdown: float = 2.0) -> None:
        self.base = torch.get_num_threads()
        self.enabled = enabled and self.base > 1
        self.period = period
        self.trials = trials
        self.slowdown = slowdown  # a step this many times slower than its trial starts a new trial
        self.current = self.base
        self._window_start: int | None = 1  # step 0 warms up; the first trial starts at step 1
        self._times: dict[int, list[float]] = {}
        self._reference: float | None = None  # best trial time of the chosen count

    def _trial_threads(self, step: int) -> int | None:
        """Thread count to try at `step`, or None outside a trial window."""
        if not self.enabled or self._window_start is None or step < self._window_start:
            return None
        offset = step - self._window_start
        if offset >= 2 * self.trials:
            return None
        return self.base if offset % 2 == 0 else 1

    def before_step(self, step: int) -> None:
        threads = self._trial_threads(step)
        threads = self.current if threads is None else threads
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)

    def after_step(self, step: int, seconds: float) -> None:
        if not self.enabled:
            return
        threads = self._trial_threads(step)
        if threads is not None:
            self._times.setdefault(threads, []).append(seconds)
            if step - self._window_start == 2 * self.trials - 1:  # window complete
                self._choose(step)
        elif self._reference is not None and seconds > self.slowdown * self._reference:
            self._window_start = step + 1  # the machine got busier: measure again
        elif self._window_start is not None and step - self._window_start >= self.period:
            self._window_start = step + 1

    def _choose(self, step: int) -> None:
        best = min(self._times, key=lambda t: min(self._times[t]))
        if best != self.current:
            summary = ", ".join(f"{t}: {min(v) * 1e3:.0f} ms" for t, v in sorted(self._times.items()))
            logger.info("step %d: training with %d torch thread(s) (%s per step)", step, best, summary)
        self.current = best
        self._reference = min(self._times[best])
        self._times.clear()

    def restore(self) -> None:
        if torch.get_num_threads() != self.base:
            torch.set_num_threads(self.base)
