"""Who used the CPU during a benchmark: its own processes, the rest of the host, the hypervisor.

A long benchmark on a shared machine sees waves it did not cause (another job's tests, a build, a
neighbour on the same host). Without a ledger they read as the server's fault. ``CpuLedger`` samples
the host's busy and steal time (``/proc/stat`` through psutil) and the CPU time of the processes the
benchmark runs (its server's processes and itself); per interval, what is not theirs was used by
other processes. ``per_bucket`` folds the samples into the benchmark's own time buckets, in cores:
``ours_cores`` + ``other_cores`` is the host's busy time, ``steal_cores`` the time a virtual machine
waited for a physical CPU it was due.

    ledger = CpuLedger()
    ledger.sample(0.0, [server_pid, *worker_pids])
    ...  # the load
    ledger.sample(60.0, [server_pid, *worker_pids])
    ledger.per_bucket(60.0, 1)  # [{"t_s": 0.0, "ours_cores": ..., "other_cores": ..., "steal_cores": ...}]
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psutil

Json = dict[str, Any]


@dataclass
class CpuLedger:
    """Cumulative host and per-process CPU seconds, sampled; the differences per interval."""

    rows: list[tuple[float, float, float, float]] = field(default_factory=list)  # t, busy, steal, ours
    _seen: dict[int, float] = field(default_factory=dict)  # pid -> its CPU seconds at the last sample
    _ours_total: float = 0.0

    def sample(self, t_s: float, pids: Iterable[int]) -> None:
        """One sample at ``t_s`` (the benchmark's clock): the host's totals and ``pids`` (this
        process is always included). A pid first seen counts from its first sample onwards."""
        host = psutil.cpu_times()
        busy = host.user + host.nice + host.system + host.irq + host.softirq  # steal and iowait apart
        steal = getattr(host, "steal", 0.0)
        for pid in {os.getpid(), *pids}:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:  # gone: its last interval is lost, a few ms at most
                self._seen.pop(pid, None)
                continue
            now = times.user + times.system
            self._ours_total += now - self._seen.get(pid, now)
            self._seen[pid] = now
        self.rows.append((t_s, busy, steal, self._ours_total))

    def per_bucket(self, bucket_s: float, n_buckets: int) -> list[Json]:
        """Average cores used in each bucket of ``bucket_s``: by the benchmark's processes, by all
        others (never below 0: sampling skew), and stolen. Intervals are given to the bucket their
        end falls in; a bucket without one is None."""
        sums = [[0.0, 0.0, 0.0, 0.0] for _ in range(n_buckets)]  # seconds: span, ours, other, steal
        for (t0, busy0, steal0, ours0), (t1, busy1, steal1, ours1) in itertools.pairwise(self.rows):
            b = min(n_buckets - 1, max(0, int((t1 - 1e-9) // bucket_s)))
            ours = ours1 - ours0
            sums[b][0] += t1 - t0
            sums[b][1] += ours
            sums[b][2] += max(0.0, (busy1 - busy0) - ours)
            sums[b][3] += steal1 - steal0
        return [
            {
                "t_s": i * bucket_s,
                **(
                    {"ours_cores": o / span, "other_cores": x / span, "steal_cores": s / span}
                    if span > 0
                    else {"ours_cores": None, "other_cores": None, "steal_cores": None}
                ),
            }
            for i, (span, o, x, s) in enumerate(sums)
        ]

    def summary(self) -> Json:
        """The whole run: cores on average, the busiest interval of other processes, and the host's
        core count."""
        rows = self.rows
        if len(rows) < 2:
            return {"cores": psutil.cpu_count()}
        span = rows[-1][0] - rows[0][0]
        others = [
            max(0.0, (b1 - b0) - (o1 - o0)) / (t1 - t0)
            for (t0, b0, _, o0), (t1, b1, _, o1) in itertools.pairwise(rows)
            if t1 > t0
        ]
        return {
            "cores": psutil.cpu_count(),
            "ours_cores_mean": (rows[-1][3] - rows[0][3]) / span,
            "other_cores_mean": sum(others) / len(others),
            "other_cores_max_interval": max(others),
            "steal_cores_mean": (rows[-1][2] - rows[0][2]) / span,
        }
