"""Exception types raised by the core.

The core raises these; the edges translate them in one place each: the CLI to an exit code
and one line on stderr (``btcmlops.cli.app``), the HTTP API to a status code and a JSON body
(``btcmlops.api.error_handlers``). Messages are written for the person who has to fix the problem.
"""

from __future__ import annotations


class BtcmlopsError(Exception):
    """Base class. ``exit_code`` is what the CLI returns, ``http_status`` what the API answers."""

    exit_code: int = 1
    http_status: int = 400


class ConfigurationError(BtcmlopsError):
    """A setting is missing or invalid."""

    exit_code = 2
    http_status = 500


class StoreUnavailableError(BtcmlopsError):
    """The database cannot be reached."""

    exit_code = 2
    http_status = 503


class SchemaTooNewError(BtcmlopsError):
    """The database was migrated by a newer btcmlops than the one running."""

    exit_code = 2
    http_status = 503


class InvalidInputError(BtcmlopsError):
    """The caller sent something malformed: a bad file, an unknown name, an impossible value."""

    exit_code = 2
    http_status = 422


class NotFoundError(BtcmlopsError):
    """The thing asked for does not exist (a prediction id, a model version, a champion)."""

    http_status = 404


class ConflictError(BtcmlopsError):
    """The request clashes with work already under way (for example a running retraining)."""

    http_status = 409


class InsufficientDataError(BtcmlopsError):
    """There is not enough data to do what was asked; the message carries the counts."""

    http_status = 422


class DependencyUnavailableError(BtcmlopsError):
    """Something the request needs is not ready yet (no feature row, a model cannot load)."""

    http_status = 503


class ArtifactIntegrityError(BtcmlopsError):
    """A model artifact is missing, tampered with or unreadable."""

    http_status = 503
