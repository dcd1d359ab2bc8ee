"""The ``recdrill`` command line. Importing this package registers every command."""

from recdrill.cli import demo, drift, drills, feedback, keys, modelling, monitor, registry, serving  # noqa: F401  (registers the commands)
from recdrill.cli.app import cli, main

__all__ = ["cli", "main"]
