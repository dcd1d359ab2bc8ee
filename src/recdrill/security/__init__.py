"""Access control: API keys and roles, per-key rate limits, the audit log.

The FastAPI dependencies (``require_role``, ``AccessControl``) are in :mod:`recdrill.security.access`,
not re-exported here, so that the CLI, which imports the key store, does not load FastAPI.
"""

from recdrill.errors import KeyNameError, KeyStoreError
from recdrill.security.audit import AuditLog, AuditMiddleware, AuditRecord
from recdrill.security.keystore import ApiKey, KeyStore, default_key_store_path, served_key_store_path
from recdrill.security.ratelimit import RateLimiter
from recdrill.security.roles import Role

__all__ = [
    "ApiKey",
    "AuditLog",
    "AuditMiddleware",
    "AuditRecord",
    "KeyNameError",
    "KeyStore",
    "KeyStoreError",
    "RateLimiter",
    "Role",
    "default_key_store_path",
    "served_key_store_path",
]
