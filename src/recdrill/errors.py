"""Every error recdrill raises on purpose.

The hierarchy::

    RecdrillError                      root: the CLI maps it to one line on stderr and exit code 1+
    ├── DataError (ValueError)         shop data cannot be used
    │   ├── DataFileNotFoundError      a named file does not exist          (exit 3)
    │   ├── DataFormatError            a file is malformed (names file, line) (exit 4)
    │   └── DataSchemaError            a column or field is missing/unknown   (exit 4)
    ├── ConfigError (ValueError)       a parameter or option has a bad value  (exit 2)
    ├── ModelError                     a model cannot be used
    │   ├── NotFittedError             predicting before ``fit``
    │   └── ModelFileError             a saved model is missing, corrupt or for other data (exit 5)
    └── RegistryError                  the model registry cannot do what was asked (exit 6)
        ├── VersionNotFoundError       no such registered version
        ├── StageError                 a promotion or rollback the stage rules forbid
        ├── KeyMaterialError           a signing or data key is missing or unusable
        └── ArtifactRefusedError       a stored artifact failed verification (exit 7); its reason:
            ├── UnsignedArtifactError, BadSignatureError, ForeignSignatureError,
            └── ManifestEditedError, DigestMismatchError, TruncatedFileError, MissingFileError,
                DecryptionError (wrong data key)

Input errors subclass ``ValueError`` so that generic callers can still catch them as such.
Foreign exceptions are wrapped at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from pathlib import Path


class RecdrillError(Exception):
    """Root of every error recdrill raises on purpose."""

    exit_code = 1


class DataError(RecdrillError, ValueError):
    """Shop data cannot be used."""

    exit_code = 4


class DataFileNotFoundError(DataError):
    """A data file named by the user does not exist."""

    exit_code = 3

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: no such file")


class DataFormatError(DataError):
    """A data file is malformed; the message names the file and, where known, the line."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


class DataSchemaError(DataError):
    """A required column is missing or a mapping names a column the file does not have."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(RecdrillError, ValueError):
    """A parameter or option has a value recdrill cannot use."""

    exit_code = 2


class ModelError(RecdrillError):
    """A model cannot be used as asked."""

    exit_code = 5


class NotFittedError(ModelError, AttributeError):
    """A model was asked to predict before ``fit`` was called."""

    def __init__(self, model: object) -> None:
        super().__init__(f"This {type(model).__name__} is not fitted yet: call fit() before using it")


class ModelFileError(ModelError, ValueError):
    """A saved model is missing, corrupt, or was trained on a different catalogue."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


class RegistryError(RecdrillError):
    """The model registry cannot do what was asked."""

    exit_code = 6


class VersionNotFoundError(RegistryError, ValueError):
    """No registered version has this id."""


class StageError(RegistryError, ValueError):
    """A promotion or rollback that the stage rules forbid."""


class KeyMaterialError(RegistryError):
    """A signing or data key is missing, malformed or of the wrong type (never echoes the key)."""


class ArtifactRefusedError(RegistryError):
    """A stored artifact failed verification and must not be loaded; ``reason`` is a stable slug."""

    exit_code = 7
    reason = "refused"

    def __init__(self, version: str, problem: str) -> None:
        self.version = version
        super().__init__(f"{version}: refused ({self.reason}): {problem}")


class UnsignedArtifactError(ArtifactRefusedError):
    reason = "unsigned"


class BadSignatureError(ArtifactRefusedError):
    reason = "bad signature"


class ForeignSignatureError(ArtifactRefusedError):
    reason = "signed by another key"


class ManifestEditedError(ArtifactRefusedError):
    reason = "manifest edited"


class DigestMismatchError(ArtifactRefusedError):
    reason = "digest mismatch"


class TruncatedFileError(ArtifactRefusedError):
    reason = "truncated file"


class MissingFileError(ArtifactRefusedError):
    reason = "missing file"


class DecryptionError(ArtifactRefusedError):
    reason = "wrong data key"
