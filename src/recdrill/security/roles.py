"""The four roles an API key can hold, and which role each kind of action needs.

=========  ==============================================  ==========================
role       may call                                        includes
=========  ==============================================  ==========================
reader     ``/v1/recommend`` (and search)                  -
writer     ``/v1/feedback``                                -
operator   ``/admin/faults*`` (drills, fault injection)    reader, writer
admin      ``/admin/models/*`` (models; keys via the CLI)  operator (so all the above)
=========  ==============================================  ==========================

An operator includes reader and writer because a drill replays traffic (recommendations and feedback)
while it injects faults; a writer does not include reader, because an event collector that posts
feedback has no need to read recommendations (least privilege). Operator and admin actions are the
dangerous ones: every call to them, allowed or refused, goes to the audit log (see ``audit.py``).
"""

from __future__ import annotations

from enum import StrEnum

from recdrill.errors import ConfigError


class Role(StrEnum):
    READER = "reader"
    WRITER = "writer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @classmethod
    def parse(cls, value: str | Role) -> Role:
        """The role named ``value``; raises :class:`ConfigError` naming the valid ones."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(r.value for r in cls)
            raise ConfigError(f"unknown role {value!r}: expected one of {names}") from None

    def grants(self, needed: Role) -> bool:
        """Whether a key holding this role may call an endpoint that needs ``needed``.

        >>> Role.ADMIN.grants(Role.READER), Role.WRITER.grants(Role.READER)
        (True, False)
        """
        return needed in _INCLUDES[self]

    @property
    def audited(self) -> bool:
        """Whether actions that need this role are written to the audit log."""
        return self in (Role.OPERATOR, Role.ADMIN)


_INCLUDES: dict[Role, frozenset[Role]] = {
    Role.READER: frozenset({Role.READER}),
    Role.WRITER: frozenset({Role.WRITER}),
    Role.OPERATOR: frozenset({Role.OPERATOR, Role.READER, Role.WRITER}),
    Role.ADMIN: frozenset(Role),
}
