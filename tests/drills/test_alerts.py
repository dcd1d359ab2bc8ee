"""Alert signals read from a real Prometheus exposition: rising edges of gauges, growth of counters."""

from __future__ import annotations

from recdrill.drills.alerts import AlertWatcher, read_signals

EXPOSITION = """# HELP recdrill_drift_detected Whether a feature drifted.
# TYPE recdrill_drift_detected gauge
recdrill_drift_detected{{feature="history_length"}} {length}
recdrill_drift_detected{{feature="history_category"}} {category}
# HELP recdrill_shed_total Requests refused with 429.
# TYPE recdrill_shed_total counter
recdrill_shed_total{{route="/v1/recommend"}} {shed}
"""


def poll(length: int, category: int, shed: float) -> dict[str, float | frozenset[str]]:
    return read_signals(EXPOSITION.format(length=length, category=category, shed=shed))


def test_a_flag_that_stays_up_is_one_alert_and_a_new_one_is_another() -> None:
    watcher = AlertWatcher()
    watcher.observe(0.0, poll(0, 0, 0))
    watcher.observe(1.0, poll(1, 0, 0))  # history_length rises: one alert
    watcher.observe(2.0, poll(1, 0, 0))  # still up: none
    watcher.observe(3.0, poll(1, 1, 0))  # a second feature rises: another
    watcher.observe(4.0, poll(0, 1, 0))
    watcher.observe(5.0, poll(1, 1, 0))  # history_length again, after it fell
    assert [(e.t, e.signal) for e in watcher.events] == [(1.0, "drift"), (3.0, "drift"), (5.0, "drift")]


def test_counters_signal_when_they_grow_and_baseline_noise_is_ignored() -> None:
    watcher = AlertWatcher()
    for t, shed in [(0.0, 0), (1.0, 3), (2.0, 3), (10.0, 3), (11.0, 9)]:
        watcher.observe(t, poll(0, 0, shed))
    assert [(e.t, e.signal) for e in watcher.events] == [(1.0, "shedding"), (11.0, "shedding")]
    assert watcher.noisy(until_s=5.0) == {"shedding"}
    assert watcher.first_after(5.0, 20.0, ignore=set()) is not None
    assert watcher.first_after(5.0, 20.0, ignore={"shedding"}) is None


def test_a_family_the_server_does_not_export_gives_no_signal() -> None:
    assert read_signals("# TYPE other gauge\nother 1\n") == {}


def test_every_fault_names_the_alerts_that_can_detect_it() -> None:
    from recdrill.drills.alerts import SIGNALS
    from recdrill.drills.faults.catalogue import catalogue

    faults = catalogue()
    declared = {f.name: f.detected_by for f in faults if f.detected_by is not None}
    assert len(declared) == len(faults), "declare detected_by on every fault"
    assert set().union(*declared.values()) <= set(SIGNALS)
    by_name = declared
    assert by_name["ranker-error"] == {"fallback", "breaker-open"} and by_name["fallback-nan"] == {
        "breaker-open"
    }
    assert by_name["bad-model-push"] == frozenset()  # only the quality hypotheses can see it


def test_a_stalled_server_loop_is_a_signal_of_its_own() -> None:
    exposition = "# TYPE recdrill_event_loop_stalls_total counter\nrecdrill_event_loop_stalls_total {n}\n"
    watcher = AlertWatcher()
    for t, n in [(0.0, 0), (1.0, 0), (2.0, 1)]:
        watcher.observe(t, read_signals(exposition.format(n=n)))
    assert [(e.t, e.signal) for e in watcher.events] == [(2.0, "loop-stall")]
