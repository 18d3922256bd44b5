"""The main job end to end: ``btcmlops demo --no-serve`` leaves a home ``btcmlops serve`` serves."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from support import free_port, wait_until_listening

# Runs `btcmlops demo` and then `btcmlops serve` as real processes.
pytestmark = pytest.mark.e2e


def test_a_short_demo_runs_and_leaves_a_servable_home(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
    env["BTCMLOPS_HOME"] = str(home)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "btcmlops",
            "demo",
            "--no-serve",
            "--days",
            "44",
            "--warm-days",
            "22",
            "--regime-change-day",
            "30",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "demo summary" in result.stdout
    assert "first champion" in result.stderr  # events go to stderr beside the progress bar
    assert (home / "simulation.json").exists()

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "btcmlops", "serve", "--port", str(port), "--no-scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_listening(base, server)
        health = httpx.get(f"{base}/health").json()
        assert health["status"] == "healthy"
        prediction = httpx.post(f"{base}/predict", params={"feature_set": "vader"}).json()
        assert prediction["success"] is True
        recent = httpx.get(f"{base}/predictions/recent", params={"limit": 5}).json()
        assert recent["count"] == 5  # the replay logged hourly predictions
        history = httpx.get(f"{base}/retrain/history").json()
        assert history["count"] >= 1
        page = httpx.get(f"{base}/dashboard")
        assert page.status_code == 200 and "btcmlops" in page.text
    finally:
        server.terminate()
        server.wait(timeout=30)
