"""A plain model folder's digest manifest: the SHA-256 of every file, written at save, checked at load.

``digests.json`` sits in the folder beside the files it lists::

    {"algorithm": "sha256", "files": {"model.json": "<hex>", "snapshot.npz": "<hex>", ...}}

It covers every regular file directly in the folder except itself. Sub-folders are not covered: a
model folder's ``fallback/`` is a model folder of its own with its own manifest, checked when it is
loaded. A load is refused, naming the file, when a listed file is missing or changed (one flipped
byte, or an ``.npz`` rewritten with valid zip CRCs), when a file is there that the manifest does not
list, or when the folder has no manifest at all (``recdrill seal FOLDER`` gives an older folder one).

What it protects against: a model folder that changed after it was saved, by accident or by
someone who did not rewrite the manifest too. It is not a signature (anyone who can write the folder
can write a new manifest): ``recdrill serve --require-signed`` serves only signed registry versions.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "model.json").write_text("{}")
    >>> write_digests(folder)
    >>> validate_digests(folder)  # nothing changed: no error
    >>> _ = (folder / "model.json").write_text("{ }")
    >>> try:
    ...     validate_digests(folder)
    ... except ModelFileError as exc:
    ...     print(exc.path.name, "refused:", str(exc).split(": ", 1)[1])
    model.json refused: SHA-256 differs from the one in digests.json: the file changed after it was saved
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from recdrill.errors import ModelFileError

DIGESTS_FILE = "digests.json"
ALGORITHM = "sha256"
CHUNK_BYTES = 1 << 20
_HEX = re.compile(r"[0-9a-f]{64}")


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks (a Transformer's weights need not fit in memory twice)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def has_digests(folder: str | Path) -> bool:
    """Whether ``folder`` has a digest manifest (checked or not)."""
    return (Path(folder) / DIGESTS_FILE).is_file()


def write_digests(folder: str | Path) -> None:
    """List every file directly in ``folder`` (except the manifest) with its SHA-256, replacing any
    earlier manifest. A model's ``save`` calls it after writing its files.

    Raises:
        ModelFileError: the folder holds a symbolic link (what it points at could change unseen).
    """
    root = Path(folder)
    files = {path.name: file_sha256(path) for path in _listed_files(root)}
    _write(root, files)


def add_digest(folder: str | Path, name: str) -> None:
    """Record (or update) the digest of file ``name`` in ``folder``'s manifest, if it has one.

    For what is saved beside a model after it (the shop snapshot); a folder without a manifest is
    left without one, since the model's ``save`` lists every file already there when it writes one.
    """
    root = Path(folder)
    if not has_digests(root):
        return
    files = read_digests(root)
    files[name] = file_sha256(root / name)
    _write(root, files)


def read_digests(folder: str | Path) -> dict[str, str]:
    """The manifest's ``{file name: SHA-256}``.

    Raises:
        ModelFileError: no manifest (with how to make one), or one that is not a valid manifest.
    """
    root = Path(folder)
    path = root / DIGESTS_FILE
    if not path.is_file():
        raise ModelFileError(
            root,
            f"no {DIGESTS_FILE}, so changes to its files cannot be detected: save the model again, "
            f"or run 'recdrill seal {root}' once if it was saved before recdrill wrote digests",
        )
    try:
        body = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ModelFileError(path, f"unreadable digest manifest: {exc}") from exc
    if not isinstance(body, dict) or body.get("algorithm") != ALGORITHM:
        raise ModelFileError(path, f'not a digest manifest: it must say "algorithm": "{ALGORITHM}"')
    files = body.get("files")
    if not isinstance(files, dict) or not all(_is_entry(name, value) for name, value in files.items()):
        raise ModelFileError(
            path, "not a digest manifest: 'files' must map file names to SHA-256 hex digests"
        )
    return {str(name): str(value) for name, value in files.items()}


def validate_digests(folder: str | Path) -> None:
    """Check every file of ``folder`` against its manifest, before anything of it is read.

    Raises:
        ModelFileError: naming the file that is missing, changed or not listed, or the folder when it
            has no manifest.
    """
    root = Path(folder)
    expected = read_digests(root)
    for name, digest in sorted(expected.items()):
        path = root / name
        if path.is_symlink() or not path.is_file():
            raise ModelFileError(
                path, f"missing: {DIGESTS_FILE} lists it, but it is not a file in the folder"
            )
        if file_sha256(path) != digest:
            raise ModelFileError(
                path, f"SHA-256 differs from the one in {DIGESTS_FILE}: the file changed after it was saved"
            )
    for path in _listed_files(root):
        if path.name not in expected:
            raise ModelFileError(
                path, f"not listed in {DIGESTS_FILE}: a file was added after the model was saved"
            )


def _listed_files(root: Path) -> list[Path]:
    """The regular files directly in ``root`` that a manifest covers, sorted by name."""
    files = []
    for path in sorted(root.iterdir()):
        if path.name == DIGESTS_FILE:
            continue
        if path.is_symlink():
            raise ModelFileError(path, "symbolic links are not allowed in a model folder")
        if path.is_file():
            files.append(path)
    return files


def _is_entry(name: object, value: object) -> bool:
    """A plain file name (no folder, not the manifest) and a lower-case SHA-256 hex digest."""
    plain = isinstance(name, str) and name not in ("", ".", "..", DIGESTS_FILE) and "/" not in name
    return plain and isinstance(value, str) and _HEX.fullmatch(value) is not None


def _write(root: Path, files: dict[str, str]) -> None:
    body = {"algorithm": ALGORITHM, "files": dict(sorted(files.items()))}
    (root / DIGESTS_FILE).write_text(json.dumps(body, indent=2) + "\n")
