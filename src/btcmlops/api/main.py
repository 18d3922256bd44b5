"""The ASGI entry point for ``uvicorn btcmlops.api.main:app`` (what ``btcmlops serve`` runs).

Each worker process builds its own context from the environment (``BTCMLOPS_*``).
"""

from __future__ import annotations

from btcmlops.api.app import create_app
from btcmlops.config import Settings
from btcmlops.context import AppContext

_settings = Settings()
app = create_app(AppContext.from_settings(_settings), with_scheduler=_settings.serve_scheduler)
