"""btcmlops: an hourly Bitcoin direction predictor that runs its own MLOps loop."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("btcmlops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
