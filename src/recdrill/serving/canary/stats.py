"""Online quality per serving arm, from labels the clients send anyway (``/v1/feedback``).

Each answer to a known user is remembered as the user's last served list in that arm (a bounded
LRU keyed by the user's pseudonym, so no raw id is kept here). When a click, add-to-cart or
purchase for that user arrives, the item's NDCG@10 in the remembered list (0 if absent) is added
to the arm's running sums, and the list is forgotten, so one answer yields at most one label. Cheap
on purpose: two dictionary operations and an HMAC (cached) per request, no storage.

Per worker: with several workers, feedback that lands on another worker than the answer finds no
list there and is not scored (counted as ``unmatched``); the sample shrinks, it is not biased, since
which worker a request lands on has nothing to do with either arm's quality.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
from cachetools import LRUCache

from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.eval.metrics import ndcg_of_item
from recdrill.serving.canary.judge import ArmStats

LABEL_EVENTS = frozenset({"click", "cart", "purchase"})
TOP = 10
LATENCY_WINDOW = 2000  # recent answers per arm that the p99 is taken over


class _Arm:
    def __init__(self) -> None:
        self.labels = 0
        self.ndcg_sum = 0.0
        self.ndcg_sq_sum = 0.0
        self.answers = 0
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)

    def stats(self) -> ArmStats:
        p99 = float(np.percentile(np.fromiter(self.latencies_ms, float), 99)) if self.latencies_ms else None
        return ArmStats(self.labels, self.ndcg_sum, self.ndcg_sq_sum, self.answers, p99)


class ArmTracker:
    """Served lists and running statistics for named arms (``primary``, ``candidate``)."""

    def __init__(self, pseudonymiser: Pseudonymiser, max_users: int = 50_000) -> None:
        self._pseudonymiser = pseudonymiser
        self._lists: LRUCache[str, dict[str, tuple[str, ...]]] = LRUCache(maxsize=max_users)
        self._arms: dict[str, _Arm] = {}
        self.unmatched = 0  # label events with no remembered list in this worker

    def answered(self, arm: str, latency_s: float) -> None:
        """Count one answer of ``arm`` and its latency."""
        state = self._arms.setdefault(arm, _Arm())
        state.answers += 1
        state.latencies_ms.append(latency_s * 1000.0)

    def served(self, arm: str, user_id: str, items: Sequence[str]) -> None:
        """Remember the top of the list ``arm`` gave ``user_id``, replacing the previous one."""
        self._arms.setdefault(arm, _Arm())
        key = self._pseudonymiser.pseudonymise_id(user_id)
        lists = self._lists.get(key)
        if lists is None:
            lists = self._lists[key] = {}
        lists[arm] = tuple(items[:TOP])

    def labelled(self, user_id: str, item_id: str, event: str) -> list[tuple[str, float]]:
        """Score a feedback event against each arm's remembered list; ``(arm, ndcg)`` per arm scored."""
        if event not in LABEL_EVENTS:
            return []
        lists = self._lists.pop(self._pseudonymiser.pseudonymise_id(user_id), None)
        if not lists:
            self.unmatched += 1
            return []
        scored = []
        for arm, items in lists.items():
            value = ndcg_of_item(items, item_id, TOP)
            state = self._arms.setdefault(arm, _Arm())
            state.labels += 1
            state.ndcg_sum += value
            state.ndcg_sq_sum += value * value
            scored.append((arm, value))
        return scored

    def stats(self, arm: str) -> ArmStats:
        state = self._arms.get(arm)
        return ArmStats() if state is None else state.stats()

    def reset(self) -> None:
        """Forget every list and statistic (a new canary starts from nothing)."""
        self._lists.clear()
        self._arms.clear()
        self.unmatched = 0
