"""The four API-key roles: parsing, which role grants which, and which actions are audited."""

from __future__ import annotations

import pytest

from recdrill.errors import ConfigError
from recdrill.security.roles import Role

# The table of the module docstring: role -> the roles whose endpoints it may call.
GRANTS = {
    Role.READER: {Role.READER},
    Role.WRITER: {Role.WRITER},
    Role.OPERATOR: {Role.OPERATOR, Role.READER, Role.WRITER},
    Role.ADMIN: {Role.ADMIN, Role.OPERATOR, Role.READER, Role.WRITER},
}


@pytest.mark.parametrize("held", list(Role))
@pytest.mark.parametrize("needed", list(Role))
def test_grants_follows_the_documented_table(held: Role, needed: Role) -> None:
    assert held.grants(needed) is (needed in GRANTS[held])


def test_a_writer_cannot_read_and_a_reader_cannot_write() -> None:
    assert not Role.WRITER.grants(Role.READER)
    assert not Role.READER.grants(Role.WRITER)
    assert not Role.OPERATOR.grants(Role.ADMIN)


@pytest.mark.parametrize("name", ["reader", "writer", "operator", "admin"])
def test_parse_accepts_each_role_by_name_and_by_value(name: str) -> None:
    role = Role.parse(name)
    assert role.value == name
    assert Role.parse(role) is role


@pytest.mark.parametrize("bad", ["Admin", "root", "", " reader"])
def test_parse_refuses_an_unknown_role_naming_the_valid_ones(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown role .*expected one of reader, writer, operator, admin"):
        Role.parse(bad)


def test_only_operator_and_admin_actions_are_audited() -> None:
    assert {role for role in Role if role.audited} == {Role.OPERATOR, Role.ADMIN}


def test_roles_compare_equal_to_their_names() -> None:
    assert Role.ADMIN == "admin" and str(Role.OPERATOR) == "operator"
    assert [role.value for role in Role] == ["reader", "writer", "operator", "admin"]
