"""Every error recdrill raises on purpose, in one tree.

The hierarchy, with the exit code the CLI returns for each (one line on stderr, ``recdrill: error:
...``; a subclass without a code of its own takes its parent's)::

    RecdrillError                         root, never raised itself                         (exit 1)
    ├── ConfigError (ValueError)          a parameter, option or setting has a bad value     (exit 2)
    │   ├── KeyNameError                  an API key name is malformed, taken or unknown
    │   ├── KeyStoreError                 the API key store is missing or unreadable
    │   └── RayNotInstalledError          --backend ray without the ray extra installed
    ├── DataError (ValueError)            shop data cannot be used                           (exit 4)
    │   ├── DataFileNotFoundError         a named file does not exist                        (exit 3)
    │   ├── DataFormatError               a file is malformed (names file, line)
    │   └── DataSchemaError               a column or field is missing or unknown
    ├── ModelError                        a model cannot be used                             (exit 5)
    │   ├── NotFittedError (AttributeError) predicting before ``fit``
    │   └── ModelFileError (ValueError)   a saved model is missing, corrupt or for other data
    ├── RegistryError                     the model registry cannot do what was asked        (exit 6)
    │   ├── VersionNotFoundError (ValueError) no such registered version
    │   ├── StageError (ValueError)       a promotion or rollback the stage rules forbid
    │   ├── KeyMaterialError              a signing or data key is missing or unusable
    │   └── ArtifactRefusedError          a stored artifact failed verification              (exit 7)
    │       ├── UnsignedArtifactError, BadSignatureError, ForeignSignatureError,
    │       └── ManifestEditedError, DigestMismatchError, TruncatedFileError, MissingFileError,
    │           DecryptionError (wrong data key)
    ├── ServingError                      a server cannot start or keep what it accepted     (exit 8)
    │   ├── ServerStartError              the server process exited or was not ready in time
    │   ├── ProcessGoneError              a server process (worker, supervisor) is not there
    │   └── FeedbackLogError              the feedback log cannot take an event or be read
    └── DrillError                        a drill cannot run as asked                        (exit 9)
        ├── FaultUnavailableError         a fault needs what the target lacks (pids, files...)
        ├── FaultRefusedError             the target refused to inject a fault
        ├── ProcessFaultError             too few workers to fault one, or the worker vanished
        ├── ArtifactFaultError            the target refused a model it should have taken
        ├── ProxyError                    the loopback proxy of the network faults failed
        ├── RevertError                   a fault could not be reverted (it is kept for a retry)
        └── DrillAborted                  an abort condition held for its whole window      (exit 10)

Input errors subclass ``ValueError`` so that generic callers can still catch them as such. Foreign
exceptions are wrapped at the boundary with ``raise ... from exc``. Exit code 130 is an interrupt
(Ctrl-C), and a click usage error exits 2.

Internal signals, never seen by a user (so not in the tree): ``TierSkip`` and
``InvalidAnswerError`` (``serving.tiers``: a tier passes a request on, and why), ``InjectedFaultError``
(``serving.fault_points``: a drill's injected failure, a ``RuntimeError`` so it behaves as a real
model failure would), ``CiphertextError`` (``registry.encryption``, wrapped in
:class:`DecryptionError`), ``SignedContentMismatch`` (``registry.signing``, wrapped in
:class:`DigestMismatchError`) and ``StopServing`` (``serving.runtime.ray_backend``: a
``BaseException`` that ends the serving loop on SIGTERM), ``BodyTooLarge``
(``serving.middleware.body_reader``: a body passed the limit while read, answered 413 there).
"""

from __future__ import annotations

from pathlib import Path


class RecdrillError(Exception):
    """Root of every error recdrill raises on purpose."""

    exit_code = 1


# -- configuration ---------------------------------------------------------------------------------


class ConfigError(RecdrillError, ValueError):
    """A parameter or option has a value recdrill cannot use."""

    exit_code = 2


class KeyNameError(ConfigError):
    """An API key name is malformed, already live, or names no live key."""


class KeyStoreError(ConfigError):
    """The API key store cannot be opened or read."""


class RayNotInstalledError(ConfigError):
    """Ray Serve is an optional extra and is not installed."""

    def __init__(self) -> None:
        super().__init__("Ray Serve is not installed: pip install 'recdrill[ray]'")


# -- data ------------------------------------------------------------------------------------------


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


# -- models ----------------------------------------------------------------------------------------


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


# -- registry --------------------------------------------------------------------------------------


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


# -- serving ---------------------------------------------------------------------------------------


class ServingError(RecdrillError):
    """A server cannot start, or cannot keep what it was asked to keep."""

    exit_code = 8


class ServerStartError(ServingError):
    """The server process exited or did not become ready in time."""


class ProcessGoneError(ServingError):
    """A process could not be found (it exited, or its pid was never used)."""


class FeedbackLogError(ServingError):
    """The feedback log cannot take the event or answer the read: it is closed, or the disk failed."""


# -- drills ----------------------------------------------------------------------------------------


class DrillError(RecdrillError):
    """The drill could not run: the target was not there, or lacks what a fault needs."""

    exit_code = 9


class FaultUnavailableError(DrillError):
    """A fault needs something of the target that this drill does not have."""


class FaultRefusedError(DrillError):
    """The target refused to inject a fault (bad key, unknown point, not a recdrill server)."""


class ProcessFaultError(DrillError):
    """A process fault could not be injected: no such worker, or too few to fault one safely."""


class ArtifactFaultError(DrillError):
    """An artifact fault could not be injected (the server refused a model it should have taken)."""


class ProxyError(DrillError):
    """The loopback proxy could not start (or was used before it started)."""


class RevertError(DrillError):
    """One or more faults could not be reverted (they stay registered, so a later revert retries)."""


class DrillAborted(DrillError):
    """An abort condition held for its whole window: the blast radius was exceeded."""

    exit_code = 10
