"""The drift detector protocol: parameter checks, the sliding window, the min_current floor, the
threshold direction, and the batch ``compare``; on small detectors written against the base class."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recdrill.errors import ConfigError, DataError
from recdrill.monitor.drift.detector import Detector, DriftResult, finite_numbers
from recdrill.monitor.drift.window import RingBuffer


class MeanGap(Detector):
    """A distance: how far the window's mean is from the reference's."""

    method = "mean_gap"
    higher_is_drift = True
    default_threshold = 1.0
    kinds = frozenset({"numeric"})

    def _fit(self, reference: np.ndarray) -> None:
        self.reference_mean = float(finite_numbers(reference, "MeanGap").mean())
        self.ring = RingBuffer(self._window, np.float64)
        self.computed = 0

    def _coerce(self, batch: np.ndarray) -> np.ndarray:
        return finite_numbers(super()._coerce(batch), "MeanGap")

    def _push(self, values: np.ndarray) -> None:
        self.ring.push(values)

    def _compute(self) -> float:
        self.computed += 1
        return abs(float(self.ring.values().mean()) - self.reference_mean)


class LastValue(Detector):
    """A p-value test whose p-value is the last value pushed: the score is whatever the test says."""

    method = "last_value"
    higher_is_drift = False
    default_threshold = 0.05
    kinds = frozenset({"numeric"})

    def _fit(self, reference: np.ndarray) -> None:
        self.last = 1.0

    def _push(self, values: np.ndarray) -> None:
        self.last = float(values[-1])

    def _compute(self) -> float:
        return self.last


def test_update_returns_the_detector_and_an_empty_batch_changes_nothing() -> None:
    detector = MeanGap(np.zeros(10), window=5, min_current=1)
    assert detector.update([3.0]) is detector
    assert (detector.n_seen, detector.score) == (1, 3.0)
    assert detector.update([]) is detector
    assert (detector.n_seen, detector.score, detector.computed) == (1, 3.0, 1)


def test_the_window_keeps_only_the_last_values_even_of_one_long_batch() -> None:
    detector = MeanGap(np.zeros(10), window=3, min_current=1)
    detector.update(np.arange(10.0))  # keeps 7, 8, 9
    assert detector.n_seen == 3 and detector.score == 8.0
    detector.update([0.0, 0.0])  # keeps 9, 0, 0
    assert detector.n_seen == 3 and detector.score == 3.0
    assert detector.window == 3


def test_below_min_current_the_score_is_neutral_and_nothing_is_flagged() -> None:
    distance = MeanGap(np.zeros(10), window=100)
    assert distance.min_current == 30  # the base default
    distance.update(np.full(29, 50.0))
    assert (distance.score, distance.drift_detected, distance.computed) == (0.0, False, 0)
    distance.update([50.0])
    assert (distance.score, distance.drift_detected) == (50.0, True)
    test = LastValue([0.0], window=100)
    test.update(np.zeros(29))
    assert (test.score, test.drift_detected) == (1.0, False)  # a p-value's neutral is 1


def test_a_window_shorter_than_min_current_lowers_it_to_the_window() -> None:
    assert MeanGap(np.zeros(10), window=5).min_current == 5
    assert MeanGap(np.zeros(10), window=500, min_current=7).min_current == 7
    assert MeanGap(np.zeros(10), window=4, min_current=7).min_current == 4


@pytest.mark.parametrize(("score", "drift"), [(0.9, False), (1.0, True), (1.1, True)])
def test_a_distance_drifts_at_or_above_its_threshold(score: float, drift: bool) -> None:
    detector = MeanGap(np.zeros(3), min_current=1).update([score])
    assert detector.score == score and detector.drift_detected is drift


@pytest.mark.parametrize(("score", "drift"), [(0.04, True), (0.05, False), (0.5, False)])
def test_a_p_value_drifts_strictly_below_its_threshold(score: float, drift: bool) -> None:
    detector = LastValue([0.0], min_current=1).update([score])
    assert detector.score == score and detector.drift_detected is drift


def test_the_threshold_defaults_to_the_methods_and_a_given_one_is_used() -> None:
    assert MeanGap(np.zeros(3)).threshold == 1.0
    assert MeanGap(np.zeros(3), threshold=2).threshold == 2.0
    assert LastValue([0.0], threshold=0.0).threshold == 0.0
    assert LastValue([0.0], threshold=1.0).threshold == 1.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: MeanGap([1.0], window=0),
            "'window' parameter of MeanGap must be an int >= 1, got 0 instead",
        ),
        (lambda: MeanGap([1.0], window=2.5), "'window' parameter of MeanGap must be an int >= 1, got 2.5"),
        (lambda: MeanGap([1.0], threshold=-0.1), "'threshold' parameter of MeanGap must be a number >= 0"),
        (lambda: MeanGap([1.0], threshold=float("inf")), "'threshold' parameter of MeanGap"),
        (lambda: LastValue([1.0], threshold=1.5), r"must be a number in \[0, 1\], got 1.5 instead"),
        (lambda: LastValue([1.0], threshold=float("nan")), "'threshold' parameter of LastValue"),
        (lambda: MeanGap([1.0], min_current=0), "'min_current' parameter of MeanGap must be >= 1, got 0"),
    ],
)
def test_out_of_range_parameters_are_named(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]


def test_bad_data_raises_data_errors() -> None:
    with pytest.raises(DataError, match="MeanGap: the reference sample is empty"):
        MeanGap([])
    detector = MeanGap(np.zeros(3))
    with pytest.raises(DataError, match=r"MeanGap: expected a 1-D batch, got shape \(2, 2\)"):
        detector.update(np.zeros((2, 2)))
    with pytest.raises(DataError, match="MeanGap: values must be finite numbers"):
        detector.update([1.0, np.nan])
    assert detector.n_seen == 0  # a refused batch leaves the window as it was


def test_a_scalar_batch_is_one_value() -> None:
    detector = MeanGap(np.zeros(3), min_current=1).update(np.float64(2.0))
    assert (detector.n_seen, detector.score) == (1, 2.0)


def test_state_is_read_only() -> None:
    detector = MeanGap(np.zeros(3))
    for name in ("score", "threshold", "drift_detected", "n_seen", "window"):
        with pytest.raises(AttributeError):
            setattr(detector, name, 1)


def test_compare_scores_the_whole_current_sample_without_a_floor() -> None:
    result = MeanGap.compare(np.zeros(10), [2.0, 4.0])  # 2 values: far below min_current=30
    assert result == DriftResult("mean_gap", 3.0, 1.0, True)
    assert MeanGap.compare(np.zeros(10), [0.5], threshold=0.6) == DriftResult("mean_gap", 0.5, 0.6, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.score = 0.0  # type: ignore[misc]


def test_compare_refuses_an_empty_current_sample() -> None:
    with pytest.raises(DataError, match="MeanGap: the current sample is empty"):
        MeanGap.compare([1.0], [])


def test_finite_numbers_returns_float64_or_names_who_refused() -> None:
    out = finite_numbers(np.array([1, 2], dtype=np.int32), "who")
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0]
    with pytest.raises(DataError, match="who: expected numbers, got <U1 values"):
        finite_numbers(np.array(["a"]), "who")
    with pytest.raises(DataError, match="who: values must be finite numbers"):
        finite_numbers(np.array([-np.inf]), "who")
