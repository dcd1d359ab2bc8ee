"""The durable feedback log: group-committed writes (``log``), its schema, readers that need no writer,
the quarantine of flagged events, the sealed raw user ids (``crypto``) and the export for
retraining. Imported on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "FeedbackLog": "log",
    "FeedbackEvent": "schema",
    "StoredRow": "schema",
    "FeedbackReader": "reader",
    "Quarantine": "quarantine",
    "UserIdSealer": "crypto",
    "load_user_id_sealer": "crypto",
    "reencrypt_feedback": "crypto",
    "count_withheld": "export",
    "export_feedback": "export",
}

__all__ = [
    "FeedbackEvent",
    "FeedbackLog",
    "FeedbackReader",
    "Quarantine",
    "StoredRow",
    "UserIdSealer",
    "count_withheld",
    "export_feedback",
    "load_user_id_sealer",
    "reencrypt_feedback",
]

if TYPE_CHECKING:
    from recdrill.serving.feedback.crypto import UserIdSealer, load_user_id_sealer, reencrypt_feedback
    from recdrill.serving.feedback.export import count_withheld, export_feedback
    from recdrill.serving.feedback.log import FeedbackLog
    from recdrill.serving.feedback.quarantine import Quarantine
    from recdrill.serving.feedback.reader import FeedbackReader
    from recdrill.serving.feedback.schema import FeedbackEvent, StoredRow


__getattr__ = lazy_getattr("recdrill.serving.feedback", _EXPORTS, globals())
