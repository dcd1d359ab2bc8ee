"""recdrill: e-commerce search and recommendation that keeps serving through failures."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("recdrill")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
