"""The job quota per principal, on a fake clock: a sliding window, per principal, and a failed creation
does not use it."""

from __future__ import annotations

import pytest

from editing_service.api.quota import JobQuota, TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_slides_and_failures_are_given_back() -> None:
    clock = Clock()
    quota = JobQuota(2, 60.0, clock=clock)
    with quota.reserve("ana"):
        pass
    clock.now += 30
    with pytest.raises(RuntimeError), quota.reserve("ana"):
        raise RuntimeError("the project does not exist")  # not counted
    with quota.reserve("ana"):
        pass
    with pytest.raises(TooManyRequests) as refused, quota.reserve("ana"):
        pass
    assert refused.value.retry_after == 30 and "'ana' has created 2 jobs in the last 60 s" in str(refused.value)
    with quota.reserve("ben"):  # another principal has its own count
        pass
    clock.now += 30  # the first job leaves the window
    with quota.reserve("ana"):
        pass
