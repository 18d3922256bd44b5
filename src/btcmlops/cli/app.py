"""The ``btcmlops`` command line. Errors become one line on stderr and an exit code, here only."""

from __future__ import annotations

import logging
import os
import sys

import click
import typer

try:  # Typer >= 0.29 vendors its own copy of click, whose exceptions are distinct classes
    from typer._click.exceptions import ClickException as TyperClickException
except ImportError:  # pragma: no cover - older Typer raises click's own
    TyperClickException = click.ClickException

from btcmlops import __version__
from btcmlops.cli import config as config_commands
from btcmlops.cli import db as db_commands
from btcmlops.cli import drift as drift_commands
from btcmlops.cli import features as features_commands
from btcmlops.cli import ingest as ingest_commands
from btcmlops.cli import operations
from btcmlops.cli import registry as registry_commands
from btcmlops.cli import sentiment as sentiment_commands
from btcmlops.cli.backtest import backtest
from btcmlops.cli.demo import demo
from btcmlops.cli.output import err_console
from btcmlops.cli.serve import serve
from btcmlops.cli.state import CliState
from btcmlops.clock import parse_utc
from btcmlops.errors import BtcmlopsError

app = typer.Typer(
    name="btcmlops",
    help="Hourly Bitcoin direction predictor with its own MLOps loop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db_commands.app, name="db")
app.add_typer(config_commands.app, name="config")
app.add_typer(ingest_commands.app, name="ingest")
app.add_typer(sentiment_commands.app, name="sentiment")
app.add_typer(features_commands.app, name="features")
app.command("train")(registry_commands.train)
app.add_typer(registry_commands.app, name="models")
app.add_typer(drift_commands.app, name="drift")
app.command("predict")(operations.predict)
app.add_typer(operations.outcomes_app, name="outcomes")
app.add_typer(operations.retrain_app, name="retrain")
app.command("scheduler")(operations.scheduler)
app.command("demo")(demo)
app.command("backtest")(backtest)
app.command("serve")(serve)


def _version(value: bool) -> None:
    if value:
        print(f"btcmlops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        metavar="INSTANT",
        help="Pin the clock to this UTC instant (ISO-8601), as BTCMLOPS_NOW does. "
        "Accepted before or after the command name.",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    ctx.obj = CliState(as_of=parse_utc(as_of) if as_of else None)
    ctx.call_on_close(ctx.obj.close)


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--as-of`` to the front so it works after any command name too."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            rest.extend(argv[index:])
            break
        if token == "--as-of" and index + 1 < len(argv):
            hoisted.extend(argv[index : index + 2])
            index += 2
            continue
        if token.startswith("--as-of="):
            hoisted.append(token)
        else:
            rest.append(token)
        index += 1
    return hoisted + rest


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    logging.basicConfig(
        level=os.environ.get("BTCMLOPS_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="btcmlops", standalone_mode=False)
    except (click.exceptions.Exit, typer.Exit) as exc:
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        err_console.print("aborted")
        sys.exit(130)
    except (click.ClickException, TyperClickException) as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BtcmlopsError as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: never a traceback for users
        if os.environ.get("BTCMLOPS_DEBUG"):
            raise
        err_console.print(
            f"error: unexpected {type(exc).__name__}: {exc} "
            "(set BTCMLOPS_DEBUG=1 for the traceback)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
