"""The disk-full alarm ends with a success that proves there is room again: one that began after the last failure,
not a step whose writes were done before the disk filled (a report written, then recorded after the fill)."""

from __future__ import annotations

import time

from gateway.ops import diskfull


def test_a_success_begun_before_the_last_failure_does_not_end_the_alarm():
    alarm = diskfull.alarm()
    began = time.monotonic()  # a worker starts writing its batch's reports
    alarm.report("intake", OSError(28, "No space left on device"))  # meanwhile the volume fills
    assert alarm.on
    alarm.clear(since=began)  # the worker's batch commits: its writes were made before the failure
    assert alarm.on, "a success older than the failure is no sign of room"
    alarm.clear(since=time.monotonic())  # a step begun after the failure went through
    assert not alarm.on


def test_a_success_without_its_start_ends_the_alarm():
    alarm = diskfull.alarm()
    alarm.report("delivery", OSError(28, "No space left on device"))
    alarm.clear()
    assert not alarm.on
