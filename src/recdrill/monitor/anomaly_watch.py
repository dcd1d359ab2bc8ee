"""Kept for observer specs written before the move: ``recdrill.monitor.anomaly_watch:anomaly_watch``
(in ``RECDRILL_OBSERVERS`` or a deployment's configuration) still names the anomaly observer, which
now lives in :mod:`recdrill.monitor.anomaly.watch`."""

from recdrill.monitor.anomaly.watch import anomaly_watch

__all__ = ["anomaly_watch"]
