"""What every CLI command shares: the pinned instant and the lazily built app context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import typer
from pydantic import ValidationError

from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.errors import ConfigurationError


@dataclass
class CliState:
    as_of: datetime | None = None
    _context: AppContext | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        return self.context().settings

    def context(self) -> AppContext:
        if self._context is None:
            settings = load_settings()
            if self.as_of is not None:
                settings = settings.model_copy(update={"now": self.as_of})
            self._context = AppContext.from_settings(settings)
        return self._context

    def close(self) -> None:
        if self._context is not None:
            self._context.close()


def load_settings() -> Settings:
    """Read settings, turning validation errors into one readable line."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"BTCMLOPS_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from exc


def state(ctx: typer.Context) -> CliState:
    """The state the root callback put on the context."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
