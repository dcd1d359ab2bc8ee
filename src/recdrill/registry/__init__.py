"""The model registry: content-addressed, signed, encrypted model artifacts with stages and rollback.

The names below are imported on first use (PEP 562): the signing library and the model loaders
cost a quarter of a second to import, which commands that never touch the registry should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "VersionRow": "catalog",
    "DataKey": "keys",
    "DataKeyring": "keys",
    "init_keys": "keys",
    "ManifestRecord": "manifest",
    "StoredFile": "manifest",
    "Registry": "registry",
    "Rotation": "registry",
    "Stage": "stages",
}

__all__ = [
    "DataKey",
    "DataKeyring",
    "ManifestRecord",
    "Registry",
    "Rotation",
    "Stage",
    "StoredFile",
    "VersionRow",
    "init_keys",
]

if TYPE_CHECKING:
    from recdrill.registry.catalog import VersionRow
    from recdrill.registry.keys import DataKey, DataKeyring, init_keys
    from recdrill.registry.manifest import ManifestRecord, StoredFile
    from recdrill.registry.registry import Registry, Rotation
    from recdrill.registry.stages import Stage


__getattr__ = lazy_getattr("recdrill.registry", _EXPORTS, globals())
