"""Configuration: one :class:`Settings` object, read from ``BTCMLOPS_*`` and ``.env``."""

from btcmlops.config.settings import Settings, Severity, mask_url

__all__ = ["Settings", "Severity", "mask_url"]
