"""The stop switch: the first reason wins, and its state says whether a runner is watching."""

from __future__ import annotations

from recdrill.drills.stop import StopSwitch


def test_the_first_trip_wins() -> None:
    switch = StopSwitch()
    assert not switch.tripped
    assert switch.trip("SIGTERM") is True and switch.trip("SIGINT") is False
    assert switch.tripped and switch.reason == "SIGTERM"


def test_a_runner_arms_then_disarms_it() -> None:
    switch = StopSwitch()
    assert switch.state == "idle"
    switch.arm()
    assert switch.state == "armed"
    switch.disarm()
    assert switch.state == "done" and not switch.tripped
