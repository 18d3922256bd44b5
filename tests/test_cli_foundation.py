"""The command line: help everywhere, idempotent upgrades, clear errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BTCMLOPS = [sys.executable, "-m", "btcmlops"]


def run_cli(*args: str, home: Path, env: dict[str, str] | None = None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
    environment["BTCMLOPS_HOME"] = str(home)
    environment.update(env or {})
    return subprocess.run(
        [*BTCMLOPS, *args], capture_output=True, text=True, env=environment, timeout=120
    )


def command_paths():
    from typer.main import get_command

    from btcmlops.cli.app import app

    root = get_command(app)
    paths = [[]]
    for name, command in root.commands.items():
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    return paths


def test_every_command_has_help():
    from typer.testing import CliRunner

    from btcmlops.cli.app import app

    runner = CliRunner()
    paths = command_paths()
    assert len(paths) > 30
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output, path


def test_help_through_the_installed_entry_point(tmp_path):
    result = run_cli("retrain", "execute", "--help", home=tmp_path)
    assert result.returncode == 0 and "--feature-set" in result.stdout


@pytest.mark.slow
def test_db_upgrade_twice_second_is_a_no_op(tmp_path):
    first = run_cli("db", "upgrade", home=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "upgraded from empty" in first.stdout
    second = run_cli("db", "upgrade", home=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    assert (tmp_path / "btcmlops.db").exists()


def test_unreachable_database_is_one_line_with_masked_url_and_exit_2(tmp_path):
    url = "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/nowhere"
    result = run_cli("db", "upgrade", home=tmp_path, env={"BTCMLOPS_DATABASE_URL": url})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1:1/nowhere" in lines[0]
    assert "alice:***@" in lines[0]
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_config_show_masks_secrets(tmp_path):
    result = run_cli(
        "config",
        "show",
        "--json",
        home=tmp_path,
        env={
            "BTCMLOPS_API_KEY": "topsecret-key",
            "BTCMLOPS_DATABASE_URL": "postgresql+psycopg://bob:hunter2@db.example:5432/x",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "topsecret-key" not in result.stdout
    assert "hunter2" not in result.stdout
    assert '"api_key": "********"' in result.stdout
    assert "bob:***@db.example" in result.stdout


@pytest.mark.parametrize("position", ["before", "after"])
def test_as_of_pins_the_clock_before_or_after_the_command(tmp_path, position):
    pin = ["--as-of", "2021-07-30T00:00:00Z"]
    args = (
        [*pin, "config", "show", "--json"]
        if position == "before"
        else ["config", "show", "--json", *pin]
    )
    result = run_cli(*args, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"now": "2021-07-30T00:00:00+00:00"' in result.stdout


def test_invalid_setting_is_a_clear_error(tmp_path):
    result = run_cli("config", "show", home=tmp_path, env={"BTCMLOPS_NOW": "not-a-date"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "BTCMLOPS_NOW" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["db", "upgrade", "--bogus"],
        ["features", "build", "--feature-set"],
        ["ingest", "simulate", "--days", "-3"],
    ],
)
def test_usage_errors_exit_2_without_a_traceback(tmp_path, args):
    result = run_cli(*args, home=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Error" in result.stderr


@pytest.mark.slow
def test_domain_errors_are_one_line(tmp_path):
    result = run_cli("features", "build", "--feature-set", "textblob", home=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: unknown feature set 'textblob': expected one of vader, finbert"
    )
