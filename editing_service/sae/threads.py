"""Pick the faster CPU thread count while training, because a busy machine can make more threads slower.

A TopK step is a few large products and many small ops, each an OpenMP parallel region. When another
process competes for the cores, every region waits for its slowest thread: measured on a 2-core machine
with one busy process beside it, a step took 1.5 s with 2 threads and 0.33 s with 1 (0.09 s with 2 on an
idle machine). So the trainer times a couple of steps with the configured thread count and with one
thread every `period` steps and keeps the faster; on an idle machine that costs about 1% of the steps.
The configured count is restored at the end. CPU only (on CUDA the host threads barely matter).
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


class ThreadTuner:
    """Chooses between `torch.get_num_threads()` and 1 thread, re-trying every `period` steps."""

    def __init__(self, *, enabled: bool, period: int = 100, trials: int = 2) -> None:
        self.base = torch.get_num_threads()
        self.enabled = enabled and self.base > 1
        self.period = period
        self.trials = trials
        self.current = self.base
        self._times: dict[int, list[float]] = {}

    def _trial_threads(self, step: int) -> int | None:
        """Thread count to try at `step`, or None outside a trial window (step 0 is a warm-up)."""
        offset = step % self.period - 1
        if not self.enabled or step == 0 or not 0 <= offset < 2 * self.trials:
            return None
        return self.base if offset % 2 == 0 else 1

    def before_step(self, step: int) -> None:
        threads = self._trial_threads(step)
        if threads is None:
            threads = self.current
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)

    def after_step(self, step: int, seconds: float) -> None:
        threads = self._trial_threads(step)
        if threads is None:
            return
        self._times.setdefault(threads, []).append(seconds)
        if step % self.period == 2 * self.trials:  # window complete
            best = min(self._times, key=lambda t: min(self._times[t]))
            if best != self.current:
                logger.info("training with %d torch thread(s): %s", best, self._summary())
            self.current = best
            self._times.clear()

    def _summary(self) -> str:
        return ", ".join(f"{t}: {min(v) * 1e3:.0f} ms/step" for t, v in sorted(self._times.items()))

    def restore(self) -> None:
        if torch.get_num_threads() != self.base:
            torch.set_num_threads(self.base)
