"""Tests of recdrill.data.columns: the column mapping, its --columns text form and the event names."""

from __future__ import annotations

import dataclasses

import pytest

from recdrill.data.columns import EVENT_NAMES, ColumnMapping, parse_column_mapping
from recdrill.data.dataset import EventType
from recdrill.errors import ConfigError


def test_the_default_mapping_names_user_item_and_timestamp_columns_only() -> None:
    assert ColumnMapping().columns() == {"user": "user_id", "item": "item_id", "timestamp": "timestamp"}


def test_columns_lists_every_mapped_field_in_field_order_and_skips_unmapped_ones() -> None:
    mapping = ColumnMapping(user="u", item="i", timestamp=None, event="e", price="p", brand="b")
    assert list(mapping.columns().items()) == [
        ("user", "u"),
        ("item", "i"),
        ("event", "e"),
        ("price", "p"),
        ("brand", "b"),
    ]


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [("user", "", "''"), ("item", None, "None"), ("user", 3, "3")],
)
def test_user_and_item_must_be_column_names(field: str, value: object, shown: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"The '{field}' column of a ColumnMapping must be a column name, got {shown}$"
    ):
        ColumnMapping(**{field: value})  # type: ignore[arg-type]


def test_a_mapping_is_frozen() -> None:
    mapping = ColumnMapping()
    with pytest.raises(dataclasses.FrozenInstanceError):
        mapping.user = "other"  # type: ignore[misc]


def test_event_names_cover_retailrocket_aliases_and_are_lower_case() -> None:
    assert EVENT_NAMES["addtocart"] is EventType.CART
    assert EVENT_NAMES["add_to_cart"] is EventType.CART
    assert EVENT_NAMES["transaction"] is EventType.PURCHASE
    assert set(EVENT_NAMES.values()) == set(EventType)
    assert all(name == name.lower() for name in EVENT_NAMES)


def test_parse_column_mapping() -> None:
    mapping = parse_column_mapping(" user=CustomerID, item=StockCode ,timestamp=InvoiceDate,event=")
    assert mapping == ColumnMapping(user="CustomerID", item="StockCode", timestamp="InvoiceDate", event=None)
    assert parse_column_mapping("timestamp=") == ColumnMapping(timestamp=None)
    assert parse_column_mapping("") == ColumnMapping()


def test_empty_entries_between_commas_are_skipped() -> None:
    assert parse_column_mapping(",,price=Price,, ,") == ColumnMapping(price="Price")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("usr=CustomerID", r"unknown field 'usr'; fields are: user, item, timestamp,"),
        ("user", r"entry 'user' must look like field=column"),
        ("=x", r"entry '=x' must look like field=column"),
        ("user=a,user=b", r"names field 'user' twice"),
        ("item=", r"The 'item' column of a ColumnMapping must be a column name, got None"),
    ],
)
def test_parse_column_mapping_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_column_mapping(text)
