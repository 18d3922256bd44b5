"""Schema migrations: upgrade a database to this code's schema, or refuse a newer one."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from btcmlops.config import mask_url
from btcmlops.errors import SchemaTooNewError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every btcmlops process.
_PG_MIGRATION_LOCK = 0x62746D6C  # "btml"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_status(engine: Engine) -> str:
    """``fresh`` (no schema), ``current``, ``behind`` (older code made it) or ``ahead``."""
    revision = current_revision(engine)
    if revision is None:
        return "fresh"
    if revision == head_revision():
        return "current"
    known = {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }
    return "behind" if revision in known else "ahead"


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the head revision. Returns (revision before, revision after).

    Refuses with :class:`SchemaTooNewError` when the database carries a revision this code
    does not know (it was migrated by a newer btcmlops). On PostgreSQL an advisory lock makes
    concurrent upgrades from several processes safe.
    """
    url_for_messages = mask_url(engine.url.render_as_string(hide_password=False))
    before = current_revision(engine)
    if schema_status(engine) == "ahead":
        raise SchemaTooNewError(
            f"the database at {url_for_messages} is at schema revision {before}, which this "
            f"btcmlops (head {head_revision()}) does not know: it was upgraded by a newer "
            "version. Run that version, or restore a backup made for this one."
        )
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, current_revision(engine) or ""
