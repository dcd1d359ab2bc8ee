"""The automatic response to sustained drift: fine-tune the primary on recent data, compare it with
the current model on a held-out recent slice, and decide whether to promote it.

The flow (issue 7, item 5)::

    drifting_since (LiveMonitor) --should_respond--> features held >= sustain_s
        --respond--> split the recent window by time (response_data.split_recent)
                     warm-start fine-tune a copy of the primary on the window's users, up to the split
                     NDCG@10 / HR@10 of current and candidate on the held-out slice
                     ResponseDecision: promote when the candidate wins by min_gain, else keep
        --apply (response_apply)--> registry candidate, then canary on the server or production;
                     every decision appended to <home>/responses.jsonl

Plain data in and out, in scikit-learn's spirit: the policy only stores settings, ``respond`` returns
a frozen record and changes nothing outside its work folder.

Example (decisions need data; ``should_respond`` needs none)::

    >>> AutoResponder(ResponsePolicy(sustain_s=600)).should_respond(
    ...     {"history_category": 1000.0, "top_score": 1500.0}, now=1700.0)
    ['history_category']
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recdrill.data.dataset import Dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.digests import add_digest
from recdrill.errors import ConfigError
from recdrill.models.base import BaseRecommender
from recdrill.monitor.response.data import RecentWindow, split_recent
from recdrill.monitor.response.policy import ResponsePolicy
from recdrill.monitor.response.tuning import fine_tune, heldout_metrics

__all__ = ["AutoResponder", "ResponseDecision", "ResponsePolicy"]

DECISION_FILE = "response.json"  # written into the candidate's folder, so it is pushed and signed with it


@dataclass(frozen=True)
class ResponseDecision:
    """One response, as recorded: what triggered it, on what data, both models' figures, and why.

    ``decision`` is ``"promote"`` or ``"keep"``; ``candidate_version`` and ``applied`` are filled
    in by :func:`recdrill.monitor.response.apply.apply`. Times are epoch seconds of the data's
    clock; ``decided_at`` is the wall clock (UTC) when the decision was made.
    """

    decision: Literal["promote", "keep"]
    reason: str
    triggered_by: tuple[str, ...]
    model_kind: str
    now: float
    window_start: float
    split_time: float
    n_recent_events: int
    n_fine_tune_events: int
    n_held_out_events: int
    n_held_out_users: int
    n_dropped_events: int
    current: dict[str, float]
    candidate: dict[str, float]
    gain: float | None
    candidate_path: str | None
    fine_tune_seconds: float
    policy: dict[str, Any]
    current_version: str | None = None
    candidate_version: str | None = None
    applied: str | None = None
    decided_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape (``recdrill monitor respond --json`` and ``responses.jsonl``)."""
        body = asdict(self)
        body["triggered_by"] = list(self.triggered_by)
        return body


class AutoResponder:
    """Decides on and prepares the response to sustained drift (see the module docstring).

    Parameters:
        policy: the settings; ``ResponsePolicy()`` by default.
        workdir: where candidates are saved (a ``candidate-<now>`` folder each); a new temporary
            folder per response when None.
    """

    def __init__(self, policy: ResponsePolicy | None = None, workdir: str | Path | None = None) -> None:
        self.policy = policy if policy is not None else ResponsePolicy()
        self.workdir = workdir

    def should_respond(self, drifting_since: Mapping[str, float], now: float) -> list[str]:
        """The features flagged for at least ``sustain_s`` at ``now``, sorted; empty: no response.

        ``drifting_since`` is :attr:`recdrill.monitor.live.LiveMonitor.drifting_since`: each flagged
        feature and the second its flag went up.
        """
        return sorted(name for name, since in drifting_since.items() if now - since >= self.policy.sustain_s)

    def respond(
        self,
        current_model: BaseRecommender,
        training_data: Dataset,
        recent_events: Dataset,
        now: float | None = None,
        *,
        triggered_by: Sequence[str] = (),
        current_version: str | None = None,
    ) -> ResponseDecision:
        """Fine-tune a copy of ``current_model`` on recent data and compare the two on held-out events.

        Parameters:
            current_model: the deployed primary, fitted on ``training_data``'s catalogue.
            training_data: what it was trained on.
            recent_events: events since, over any catalogue and users matched by external id (a
                feedback export loaded with ``load_interactions``, or a slice of a shop).
            now: end of the recent window (default: the last recent event).
            triggered_by: the features that called for the response (``should_respond``).
            current_version: the registry version of ``current_model``, recorded as the parent.

        Returns:
            The decision; the candidate (if one was trained) is saved at ``candidate_path`` as
            ``recdrill train`` saves a model (with the shop snapshot a server loads beside it), and
            the decision beside it in ``response.json``.

        Raises:
            ConfigError: the model was trained on another catalogue, or the window is empty.
        """
        if current_model.fingerprint_ != training_data.fingerprint():
            raise ConfigError(
                f"the current model was trained on another catalogue than {training_data.name} "
                f"(fingerprint {current_model.fingerprint_}, data {training_data.fingerprint()})"
            )
        policy = self.policy
        window = split_recent(
            training_data,
            recent_events,
            now=now,
            window_s=policy.recent_window_s,
            holdout_share=policy.holdout_share,
        )
        base = self._base_decision(window, current_model, tuple(triggered_by), current_version)
        short = self._too_little(window)
        if short is not None:
            return replace(base, reason=short)
        started = time.perf_counter()
        candidate = fine_tune(current_model, window, policy)
        seconds = time.perf_counter() - started
        current_metrics = heldout_metrics(current_model, window)
        candidate_metrics = heldout_metrics(candidate, window)
        gain = _relative_gain(candidate_metrics["NDCG@10"], current_metrics["NDCG@10"])
        verdict: Literal["promote", "keep"] = "promote" if gain >= policy.min_gain else "keep"
        reason = (
            f"candidate NDCG@10 {candidate_metrics['NDCG@10']:.4f} vs current "
            f"{current_metrics['NDCG@10']:.4f} on {len(window.held_out)} held-out events of "
            f"{_count_users(window)} users: "
            f"{gain:+.1%} {'>=' if verdict == 'promote' else '<'} the required {policy.min_gain:+.1%}"
        )
        folder = self._candidate_folder(window.now)
        candidate.save(folder)
        ShopSnapshot.from_dataset(window.combined).save(folder)  # what a server needs beside the model
        decision = replace(
            base,
            decision=verdict,
            reason=reason,
            current=current_metrics,
            candidate=candidate_metrics,
            gain=gain,
            candidate_path=str(folder),
            fine_tune_seconds=seconds,
        )
        (folder / DECISION_FILE).write_text(json.dumps(decision.to_dict(), indent=2) + "\n")
        add_digest(folder, DECISION_FILE)  # part of the saved folder: a load checks it with the rest
        return decision

    def _base_decision(
        self,
        window: RecentWindow,
        current_model: BaseRecommender,
        triggered_by: tuple[str, ...],
        current_version: str | None,
    ) -> ResponseDecision:
        """The record as it stands before any training: what a "keep" for lack of data returns."""
        return ResponseDecision(
            "keep",
            "",
            triggered_by=triggered_by,
            model_kind=current_model.kind,
            now=float(window.now),
            window_start=float(window.window_start),
            split_time=float(window.split_time),
            n_recent_events=window.n_recent,
            n_fine_tune_events=window.n_fine_tune,
            n_held_out_events=len(window.held_out),
            n_held_out_users=_count_users(window),
            n_dropped_events=window.n_dropped,
            current={},
            candidate={},
            gain=None,
            candidate_path=None,
            fine_tune_seconds=0.0,
            policy=asdict(self.policy),
            current_version=current_version,
        )

    def _too_little(self, window: RecentWindow) -> str | None:
        policy = self.policy
        if window.n_recent < policy.min_recent_events:
            return (
                f"too few recent events to judge a candidate: {window.n_recent} < {policy.min_recent_events}"
            )
        users = _count_users(window)
        if users < policy.min_holdout_users:
            return f"too few held-out users to judge a candidate: {users} < {policy.min_holdout_users}"
        return None

    def _candidate_folder(self, now: int) -> Path:
        root = Path(self.workdir) if self.workdir is not None else Path(tempfile.mkdtemp(prefix="recdrill-"))
        folder = root / f"candidate-{now}"
        suffix = 1
        while folder.exists():
            suffix += 1
            folder = root / f"candidate-{now}-{suffix}"
        return folder


def _count_users(window: RecentWindow) -> int:
    return len(np.unique(window.held_out.users))


def _relative_gain(candidate: float, current: float) -> float:
    """``candidate / current - 1``; a current score of 0 counts any positive candidate as +100%."""
    if current > 0:
        return candidate / current - 1.0
    return 1.0 if candidate > 0 else 0.0
