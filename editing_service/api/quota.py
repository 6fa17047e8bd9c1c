"""How many jobs one principal may create in a sliding window (EDITING_SERVICE_JOBS_PER_PRINCIPAL per
EDITING_SERVICE_JOB_WINDOW_S); more is refused with 429 and the time to wait.

The count is kept per server process: with several replicas a principal may create up to that many
jobs on each.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

TOO_MANY_JOBS = (
    "{principal!r} has created {count} jobs in the last {window:g} s, the most allowed "
    "(EDITING_SERVICE_JOBS_PER_PRINCIPAL); try again in {wait} s."
)


class TooManyRequests(Exception):
    """A principal's quota is spent; `retry_after` is the number of seconds until it is not."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobQuota:
    """A sliding window of job creation times per principal."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window_s, clock
        self._created: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, principal: str, now: float) -> deque[float]:
        times = self._created[principal]
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def check(self, principal: str) -> None:
        """Raise `TooManyRequests` when `principal` may not create another job now."""
        with self._lock:
            now = self.clock()
            times = self._recent(principal, now)
            if len(times) >= self.limit:
                wait = max(1, math.ceil(times[0] + self.window - now))
                raise TooManyRequests(TOO_MANY_JOBS.format(principal=principal, count=len(times),
                                                           window=self.window, wait=wait), wait)

    def record(self, principal: str) -> None:
        """Count a job `principal` has just created."""
        with self._lock:
            self._created[principal].append(self.clock())
