"""Which column of a tabular file holds which field: the mapping, its ``--columns`` text form, and
the event names an event column may hold.

Example:
    >>> parse_column_mapping("user=CustomerID,item=StockCode,timestamp=").columns()
    {'user': 'CustomerID', 'item': 'StockCode'}
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from recdrill.data.dataset import EventType
from recdrill.errors import ConfigError

# Event names accepted in an event column (case-insensitive). The aliases are RetailRocket's names.
EVENT_NAMES: dict[str, EventType] = {
    "view": EventType.VIEW,
    "click": EventType.CLICK,
    "cart": EventType.CART,
    "addtocart": EventType.CART,
    "add_to_cart": EventType.CART,
    "purchase": EventType.PURCHASE,
    "transaction": EventType.PURCHASE,
}


@dataclass(frozen=True)
class ColumnMapping:
    """Which column of the file holds each field; ``None`` means the file has no such column.

    ``timestamp=None`` keeps the file order (the dataset then has no time); ``event=None`` makes
    every row a purchase. ``title``, ``category`` and ``brand`` describe items: the first non-null
    value per item is used. ``price`` is the price of the event; the catalogue gets each item's median.

    Example:
        >>> ColumnMapping(user="CustomerID", item="StockCode", timestamp=None).item
        'StockCode'
    """

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str | None = "timestamp"
    event: str | None = None
    query: str | None = None
    price: str | None = None
    title: str | None = None
    category: str | None = None
    brand: str | None = None

    def __post_init__(self) -> None:
        for name in ("user", "item"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(
                    f"The {name!r} column of a ColumnMapping must be a column name, got {value!r}"
                )

    def columns(self) -> dict[str, str]:
        """The mapped fields and their column names, skipping fields mapped to ``None``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def parse_column_mapping(text: str) -> ColumnMapping:
    """Parse ``"field=column,..."`` (the CLI's ``--columns``); unnamed fields keep their defaults.

    An empty column (``"timestamp="``) unmaps an optional field.

    Raises:
        ConfigError: a pair without ``=``, an unknown or repeated field, or ``user``/``item`` left empty.

    Example:
        >>> parse_column_mapping("user=CustomerID,item=StockCode,timestamp=InvoiceDate").timestamp
        'InvoiceDate'
    """
    known = [f.name for f in fields(ColumnMapping)]
    values: dict[str, str | None] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        name, sep, column = (part.strip() for part in pair.partition("="))
        if not sep or not name:
            raise ConfigError(f"column mapping entry {pair!r} must look like field=column")
        if name not in known:
            raise ConfigError(f"column mapping names unknown field {name!r}; fields are: {', '.join(known)}")
        if name in values:
            raise ConfigError(f"column mapping names field {name!r} twice")
        values[name] = column or None
    return ColumnMapping(**values)  # type: ignore[arg-type]  # user/item None is rejected inside
