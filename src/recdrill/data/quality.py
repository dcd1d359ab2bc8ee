"""Data-quality report: what a loader read, kept and dropped, counted by reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class DataQualityReport:
    """Counts of rows read, kept and dropped per reason, with the first offending row of each reason.

    Example:
        >>> tally = QualityTally("shop.csv")
        >>> tally.read(3); tally.drop("missing user", rows=[7])
        >>> report = tally.report(kept=2)
        >>> report.dropped["missing user"], report.first_row["missing user"]
        (1, 7)
    """

    source: str
    rows_read: int
    rows_kept: int
    dropped: MappingProxyType[str, int] = field(default_factory=lambda: MappingProxyType({}))
    first_row: MappingProxyType[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_dropped": self.rows_dropped,
            "dropped": dict(self.dropped),
            "first_row": dict(self.first_row),
        }

    def format(self) -> str:
        """A short human-readable table."""
        lines = [f"data quality: {self.source}", f"  rows read    {self.rows_read:>10,}"]
        for reason, count in sorted(self.dropped.items(), key=lambda kv: -kv[1]):
            first = self.first_row.get(reason)
            where = f"  (first at row {first})" if first is not None else ""
            lines.append(f"  dropped      {count:>10,}  {reason}{where}")
        lines.append(f"  rows kept    {self.rows_kept:>10,}")
        return "\n".join(lines)


class QualityTally:
    """Mutable counter a loader fills while reading; ``report`` freezes it.

    ``reasons`` named up front appear in the report even when nothing was dropped for them, so a
    reader sees that a check ran and found nothing.
    """

    def __init__(self, source: str, reasons: tuple[str, ...] = ()) -> None:
        self.source = source
        self._read = 0
        self._dropped: Counter[str] = Counter({reason: 0 for reason in reasons})
        self._first: dict[str, int] = {}

    def read(self, n: int) -> None:
        self._read += int(n)

    def drop(self, reason: str, rows: Any) -> None:
        """Count the rows (row numbers, as given to the user) dropped for ``reason``."""
        rows = list(rows) if not hasattr(rows, "__len__") else rows
        if len(rows) == 0:
            return
        self._dropped[reason] += len(rows)
        first = int(min(rows))
        self._first[reason] = min(first, self._first.get(reason, first))

    def report(self, kept: int) -> DataQualityReport:
        return DataQualityReport(
            source=self.source,
            rows_read=self._read,
            rows_kept=int(kept),
            dropped=MappingProxyType(dict(self._dropped)),  # Counter keeps zero entries
            first_row=MappingProxyType(dict(self._first)),
        )
