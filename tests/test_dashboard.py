"""The dashboard in a real headless Chromium, against the real app serving a home with history.

Every view must load without a console error and draw its charts from the API; the actions
(retraining, rollback, promotion with an API key) must change what the API reports. Set
``BTCMLOPS_SCREENSHOTS=docs/img`` to write the README's screenshots (one per view).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from datetime import timedelta
from importlib import resources
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from btcmlops.clock import ManualClock, parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.store import Store
from dashboard_home import DashboardHome, build_dashboard_home

from browser import (
    CHROMIUM_ARGS,
    VIEWPORT,
    WatchedPage,
    dashboard_app,
    ensure_chromium,
    serve_in_thread,
    watch,
)

END = parse_utc("2024-03-01T00:00:00Z")
API_KEY = "dashboard-test-key"
VIEWS = ("overview", "drift", "models", "retraining", "health")
CHARTS = {
    "overview": ("chart-price", "chart-accuracy", "chart-latency"),
    "drift": ("chart-drift-history", "chart-distribution", "chart-sequential-vader"),
    "models": ("chart-champions", "chart-importances"),
    "retraining": (
        "chart-runs",
        "chart-shadows-vader-random_forest",
        "chart-shadows-vader-logistic_regression",
    ),
    "health": (),
}
FIRST_PAIR = "vader/random_forest"
ROLE_WORDS = {"challenger": "challenger", "previous_champion": "previous champion"}
# What the shadow table says when a challenger fails one of the promotion conditions.
CONDITION_WORDS = {
    "sequential_test": "the paired trial has not yet shown it better than the champion",
    "beats_majority": "does not beat the majority class",
    "beats_last_hour": 'does not beat "same direction as the last hour"',
    "beats_base_rate_log_loss": "not below the base rate's",
    "not_degenerate": "degenerate: one class on",
}
browser = pytest.mark.browser
# Every test serves the app over a replayed home; most drive Chromium.
pytestmark = pytest.mark.slow


def e_words(value: float) -> str:
    """An e-value as the dashboard prints it: three significant digits, exponent when huge."""
    if value >= 1e4 or 0 < value < 1e-3:
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa}e{int(exponent):+d}"
    return f"{float(f'{value:.3g}'):g}"


def look_words(look: int, looks: int) -> str:
    return f"look {look + 1:,} of {looks:,}"


def decision_test_words(test: dict) -> str:
    """A decision's paired test in the decision table: the trial's wins needed, or e-values."""
    if "e_value" in test:  # a fallback's rule, or a run stored before the trial
        return f"e-value {e_words(test['e_value'])} of {e_words(test['threshold'])}"
    return f"needs {test['threshold']:,} ({look_words(test['look'], test['trial_looks'])})"


def shadow_evidence_words(shadow: dict) -> str:
    """A shadow's statistic against its bar, as its Evidence cell says it."""
    if shadow["role"] == "previous_champion":  # log e-value against ln(1 / rollback alpha)
        return (
            f"e-value {e_words(math.exp(shadow['statistic']))} of "
            f"{e_words(math.exp(shadow['bar']))}"
        )
    if shadow["trial_over"]:
        return "trial over"
    test = shadow["decision"]["test"]
    return (
        f"{int(shadow['statistic']):,} wins of {int(shadow['bar']):,} needed "
        f"({look_words(test['look'], test['trial_looks'])})"
    )


def decision_margin(test: dict) -> float:
    """Where a decision sits on the evidence chart: its statistic minus its bar."""
    if "e_value" in test:
        return math.log(test["e_value"]) - math.log(test["threshold"])
    return test["wins"] - test["threshold"]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def chromium(pytestconfig: pytest.Config) -> Iterator[object]:
    executable = ensure_chromium(pytestconfig)
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright comes with the dev extra: pip install -e .[dev]"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(executable), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardHome]:
    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'btcmlops.db'}"
    store = Store.open(url)
    settings = Settings(
        home=folder / "home",
        database_url=url,
        finbert_model=str(folder / "no-finbert-here"),  # a VADER-only replay on any machine
        _env_file=None,
    )
    try:
        yield build_dashboard_home(store, settings, END)
    finally:
        store.close()


@pytest.fixture(scope="module")
def base_url(home: DashboardHome) -> Iterator[str]:
    context = AppContext(settings=home.settings, clock=home.clock, _store=home.store)
    with serve_in_thread(dashboard_app(context)) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_url(home: DashboardHome) -> Iterator[str]:
    """The same home served by a second app that requires an API key for actions."""
    settings = home.settings.model_copy(update={"api_key": SecretStr(API_KEY)})
    context = AppContext(settings=settings, clock=home.clock, _store=home.store)
    with serve_in_thread(dashboard_app(context)) as url:
        yield url


@pytest.fixture(scope="module")
def protected_url(home: DashboardHome) -> Iterator[str]:
    """The same home served by an app that wants the API key for reads too."""
    settings = home.settings.model_copy(
        update={"api_key": SecretStr(API_KEY), "protect_reads": True}
    )
    context = AppContext(settings=settings, clock=home.clock, _store=home.store)
    with serve_in_thread(dashboard_app(context)) as url:
        yield url


@pytest.fixture(scope="module")
def early_url(home: DashboardHome) -> Iterator[str]:
    """The same home three hours into the next day, before any new hour came in."""
    clock = ManualClock(home.clock.now() + timedelta(hours=3))
    context = AppContext(settings=home.settings, clock=clock, _store=home.store)
    with serve_in_thread(dashboard_app(context)) as url:
        yield url


@pytest.fixture
def page(chromium) -> Iterator[WatchedPage]:  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        yield watch(context.new_page())
    finally:
        context.close()


def screenshot_folder(tmp_path: Path) -> Path:
    chosen = os.environ.get("BTCMLOPS_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def api(base_url: str, path: str, **params: object) -> dict:
    response = httpx.get(base_url + path, params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def champion_of(base_url: str, feature_set: str, model_type: str) -> str | None:
    entries = api(base_url, "/models")["available_models"][feature_set]
    return next(e["champion"] for e in entries if e["model_type"] == model_type)


# ----------------------------------------------------------------------------- views


@browser
@pytest.mark.parametrize("view", VIEWS)
def test_every_view_loads_without_console_errors_and_draws_its_charts(
    view: str, base_url: str, page: WatchedPage, tmp_path: Path
) -> None:
    page.goto_view(base_url, view)

    assert page.banner_text() == "", page.banner_text()
    for chart in CHARTS[view]:
        assert page.chart_points(chart) > 0, f"{chart} drew no data"
    assert page.page.locator(f"#view-{view}").is_visible()
    assert page.page.locator(f'.tabs a[data-tab="{view}"]').get_attribute("class") == "active"
    page.page.screenshot(path=screenshot_folder(tmp_path) / f"{view}.png", full_page=True)
    assert page.errors == []


@browser
def test_overview_marks_each_prediction_by_its_outcome(base_url: str, page: WatchedPage) -> None:
    page.goto_view(base_url, "overview")

    timeline = api(
        base_url,
        "/predictions/timeline",
        feature_set="vader",
        model_type="random_forest",
        days=30,
        window=48,
    )
    expected = {"correct": 0, "incorrect": 0, "pending": 0}
    for point in timeline["points"]:
        outcome = {True: "correct", False: "incorrect", None: "pending"}[point["correct"]]
        expected[outcome] += 1
    drawn = page.page.evaluate(
        """() => Object.fromEntries(document.getElementById('chart-price').data
            .filter(t => t.mode === 'markers').map(t => [t.name, t.x.length]))"""
    )
    assert drawn == {name: n for name, n in expected.items() if n}
    assert expected["correct"] > 0 and expected["incorrect"] > 0
    assert page.errors == []


@browser
def test_drift_table_sorts_by_the_clicked_header(base_url: str, page: WatchedPage) -> None:
    page.goto_view(base_url, "drift")
    table = page.page.locator("#drift-table table")
    header = table.locator("th", has_text="KS statistic")

    def ks_column() -> list[float]:
        index = table.locator("th").all_inner_texts().index(header.inner_text())
        cells = table.locator(f"tbody tr td:nth-child({index + 1})").all_inner_texts()
        return [float(cell) for cell in cells]

    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    descending = ks_column()
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    ascending = ks_column()

    assert len(descending) > 2
    assert descending == sorted(descending, reverse=True)
    assert ascending == sorted(ascending)
    assert page.errors == []


@browser
def test_choosing_a_feature_draws_its_reference_and_current_distributions(
    base_url: str, page: WatchedPage
) -> None:
    page.goto_view(base_url, "drift")
    select = page.page.locator("#drift-feature-select")
    options = select.locator("option").evaluate_all("nodes => nodes.map(n => n.value)")
    chosen = options[-1]
    assert chosen != select.input_value()

    select.select_option(chosen)
    page.page.wait_for_function(
        "f => (document.getElementById('chart-distribution').layout.xaxis.title || {}).text === f",
        arg=chosen,
    )

    shown = api(base_url, "/drift/latest", feature_set="vader", model_type="random_forest")
    expected = api(
        base_url,
        "/drift/distribution",
        feature_set="vader",
        feature=chosen,
        reference_days=shown["features"]["reference_period_days"],
        current_days=shown["features"]["current_period_days"],
    )
    drawn = page.page.evaluate(
        "() => document.getElementById('chart-distribution').data.map(t => t.y)"
    )
    assert drawn == [expected["reference_share"], expected["current_share"]]
    assert page.errors == []


@browser
def test_drift_opens_on_the_latest_daily_check_with_the_live_window_beside_it(
    early_url: str, page: WatchedPage, tmp_path: Path
) -> None:
    feature_set, model_type = FIRST_PAIR.split("/")
    pair = {"feature_set": feature_set, "model_type": model_type}
    stored = api(early_url, "/drift/latest", **pair)
    # Three hours into the day the live one-day window is short of rows (21 of 24 needed)
    # and of outcomes (model drift needs 30); the daily check stored at 00:10 is complete.
    live = api(early_url, "/drift/features", feature_set=feature_set)["drift_analysis"]
    assert live["current_samples"] == 21
    assert stored["status"] == "stored" and stored["features"]["status"] == "success"

    page.goto_view(early_url, "drift")

    def cards(panel: str) -> dict[str, str]:
        boxes = page.page.locator(f"#{panel} .kpi")
        labels = boxes.locator(".label").all_inner_texts()
        values = boxes.locator(".value").all_inner_texts()
        return dict(zip((label.lower() for label in labels), values, strict=True))

    checked = cards("drift-kpis")
    assert checked["overall severity"] == stored["summary"]["overall_severity"]
    assert checked["feature drift"] == stored["features"]["drift_severity"]
    model = stored["model"]
    assert checked["model drift"] == (model["drift_severity"] or model["status"])
    assert page.page.locator("#drift-stored-note").inner_text() == "checked 2024-03-01 00:10 UTC"
    table_note = page.page.locator("#drift-table-note").inner_text()
    assert table_note.startswith("daily check of 2024-03-01 00:10 UTC · 7 d vs 2 d")
    live_panel = page.page.locator(".panel.live")
    assert live_panel.locator("h2").inner_text() == "Live window (so far)"
    assert live_panel.locator("#drift-live-note").inner_text() == (
        "current 2024-02-29 03:00 → 2024-03-01 03:00 UTC · reference 7 d before"
    )
    assert cards("drift-live") == {
        "feature drift": "insufficient_data",
        "model drift": "insufficient_data",
    }
    # The hourly sequential detector, fed every replayed hour: its evidence against the
    # threshold line at 1, and its state in one line.
    sequential = api(early_url, "/drift/sequential", feature_set=feature_set, days=30)
    assert sequential["status"] == "fitted" and sequential["points"]
    chart = page.page.evaluate(
        """() => {
            const box = document.getElementById('chart-sequential-vader');
            return {
                y: box.data[0].y,
                lines: box.layout.shapes.map(s => [s.yref || 'y', s.y0, s.y1]),
                labels: box.layout.annotations.map(a => a.text),
            };
        }"""
    )
    assert chart["y"] == [point["statistic"] for point in sequential["points"]]
    assert ["y", 1, 1] in chart["lines"]
    if sequential["alarm"]:
        assert any(label.startswith("alarm ") for label in chart["labels"])
    state_line = page.page.locator('[data-feature-set="vader"] .sequential-state').inner_text()
    assert state_line == sequential_words(sequential)
    page.page.evaluate("window.scrollTo(0, 0)")
    page.page.screenshot(path=screenshot_folder(tmp_path) / "drift-early-in-the-day.png")
    assert page.errors == []


def sequential_words(answer: dict) -> str:
    """The detector's state as the Drift view says it."""

    def minute(text: str) -> str:
        return f"{parse_utc(text):%Y-%m-%d %H:%M} UTC"

    if answer["alarm"]:
        return (
            f"alarm since {minute(answer['alarm_at'])}, change estimated "
            f"{minute(answer['change_at'])}"
        )
    return f"quiet, {answer['statistic']:.2f} of threshold"


@browser
def test_retraining_draws_each_shadows_evidence_toward_its_threshold(
    base_url: str, page: WatchedPage
) -> None:
    pairs = api(base_url, "/retrain/shadows")["pairs"]
    page.goto_view(base_url, "retraining")

    assert {(p["feature_set"], p["model_type"]) for p in pairs} == {
        ("vader", "random_forest"),
        ("vader", "logistic_regression"),
    }
    roles_seen = set()
    for pair in pairs:
        feature_set, model_type = pair["feature_set"], pair["model_type"]
        shadows = pair["shadows"]
        assert shadows, f"the home put no shadow beside {feature_set}/{model_type}"
        drawn = page.page.evaluate(
            """id => { const box = document.getElementById(id);
                const pick = mode => box.data.filter(t => t.mode === mode);
                return { lines: pick('lines+markers').map(t => ({name: t.name, x: t.x, y: t.y,
                                                              hover: t.customdata})),
                         decisions: pick('markers').flatMap(t => t.y),
                         bars: box.layout.shapes.map(s => [s.y0, s.y1]),
                         labels: box.layout.annotations.map(a => [a.y, a.text]) }; }""",
            f"chart-shadows-{feature_set}-{model_type}",
        )
        # One line per shadow: its margin (statistic - bar) at each look, the offline look at
        # "since"; every shadow is judged against the one line at 0.
        assert drawn["bars"] == [[0, 0]]
        assert [y for y, _ in drawn["labels"]] == [0]
        assert drawn["labels"][0][1].endswith(" at 0")
        assert len(drawn["lines"]) == len(shadows)
        for shadow, line in zip(shadows, drawn["lines"], strict=True):
            roles_seen.add(shadow["role"])
            path = shadow["path"]
            short = shadow["version"].removeprefix(f"{feature_set}-{model_type}-")
            assert line["name"] == f"{short} · {ROLE_WORDS[shadow['role']]}"
            assert line["x"] == [point["at"] or shadow["since"] for point in path]
            assert line["y"] == [point["margin"] for point in path]
            assert line["y"] == [point["statistic"] - point["bar"] for point in path]
            assert len(line["x"]) > 1  # live days after the offline comparison
            # The hover gives the statistic against the bar in the shadow's own words.
            for look, (point, hover) in enumerate(zip(path, line["hover"], strict=True)):
                if shadow["role"] == "previous_champion":
                    expected = f"log e {point['statistic']:.1f} of {point['bar']:.1f}"
                else:
                    looks = shadow["decision"]["test"]["trial_looks"]
                    expected = (
                        f"{int(point['statistic'])} wins of {int(point['bar'])} needed, "
                        f"look {look + 1} of {looks}"
                    )
                assert hover[1].startswith(expected), (hover, expected)
                assert hover[0] == f"{point['hours']:,}"
        # Each decision with a test sits at its own margin: wins - wins needed (the trial),
        # or ln e-value - ln threshold (a fallback's rule).
        tests = [decision["evidence"]["test"] for decision in pair["decisions"]]
        assert sorted(drawn["decisions"]) == pytest.approx(sorted(map(decision_margin, tests)))

        panel = page.page.locator(f'.shadow-pair[data-pair="{feature_set}/{model_type}"]')
        rows = panel.locator(".shadow-table tbody tr")
        assert rows.count() == len(shadows)
        for index, shadow in enumerate(shadows):
            row = rows.nth(index)
            text = row.inner_text()
            assert ROLE_WORDS[shadow["role"]] in text
            assert shadow_evidence_words(shadow) in text, (shadow_evidence_words(shadow), text)
            share = min(1.0, max(0.0, shadow["statistic"] / shadow["bar"]))
            bar = row.locator(".evidence-bar")
            width = bar.locator("span").evaluate("span => parseFloat(span.style.width)")
            assert width == pytest.approx(share * 100, abs=0.05)
            assert ("reached" in bar.get_attribute("class")) == (shadow["margin"] >= 0)
            assert f"{shadow['offline_hours']} offline + {shadow['live_hours']} live" in text
            for condition in (shadow["decision"] or {}).get("failed", []):
                assert CONDITION_WORDS[condition] in text, (condition, text)
            if "sequential_test" in (shadow["decision"] or {}).get("failed", []):
                assert f"{int(shadow['statistic'])} wins of {int(shadow['bar'])} needed" in text

        decisions = panel.locator(".decision-table tbody tr")
        assert pair["decisions"] and decisions.count() == len(pair["decisions"])
        for row, decision in zip(decisions.all(), pair["decisions"], strict=True):
            test, row_text = decision["evidence"]["test"], row.inner_text()
            assert f"{test['wins']}:{test['losses']}" in row_text
            assert decision_test_words(test) in row_text, (decision_test_words(test), row_text)
            assert decision["decision"] in row_text and decision["trigger"] in row_text
    # The home judges challengers by the trial and a previous champion by the rollback test.
    assert roles_seen == {"challenger", "previous_champion"}
    assert page.errors == []


@browser
def test_models_show_the_shadows_and_the_declared_fallback(
    base_url: str, home: DashboardHome, page: WatchedPage
) -> None:
    (fallback_type, baseline_version) = next(iter(home.fallbacks.items()))
    fallback_pair = f"vader/{fallback_type}"
    entries = {e["model_type"]: e for e in api(base_url, "/models")["available_models"]["vader"]}
    versions = api(base_url, "/models/versions")["versions"]
    shadows = {
        shadow["version"]: shadow
        for pair in api(base_url, "/retrain/shadows")["pairs"]
        for shadow in pair["shadows"]
    }
    page.goto_view(base_url, "models")

    # The pair that serves a naive rule says so, in the server's words, above everything.
    assert entries[fallback_type]["champion_kind"] == "baseline"
    notices = page.page.locator(".fallback-notice")
    assert notices.count() == 1
    assert notices.first.get_attribute("data-pair") == fallback_pair
    assert notices.first.is_visible()
    assert entries[fallback_type]["fallback"] in notices.first.inner_text()
    champion_cell = page.page.locator(f'td:has(.champion-version[data-pair="{fallback_pair}"])')
    assert champion_cell.locator(".kind-tag").inner_text() == "baseline (last hour)"

    # Every shadow is listed with its role and its evidence; the registry marks them and the
    # baseline.
    shadow_rows = page.page.locator("#models-shadows tbody tr")
    listed = {
        row.locator(".shadow-version").get_attribute("title"): row.inner_text()
        for row in shadow_rows.all()
    }
    assert shadows and set(listed) == set(shadows)
    for version, text in listed.items():
        assert ROLE_WORDS[shadows[version]["role"]] in text, text
        assert shadow_evidence_words(shadows[version]) in text, text
    registry = page.page.locator("#models-registry tbody tr")
    shadow_versions = {v["version"] for v in versions if v["status"] == "shadow"}
    assert shadow_versions == set(shadows)
    assert registry.filter(has=page.page.locator(".pill.shadow")).count() == len(shadow_versions)
    baseline_row = registry.filter(has=page.page.locator(f'span[title="{baseline_version}"]'))
    assert "vader · baseline (last hour)" in baseline_row.inner_text()
    assert page.errors == []


# ----------------------------------------------------------------------------- actions


@browser
def test_retrain_button_adds_a_run_to_the_history(base_url: str, page: WatchedPage) -> None:
    before = api(base_url, "/retrain/history", limit=100)["runs"]
    page.goto_view(base_url, "retraining")
    rows_before = page.page.locator("#retrain-runs tbody tr").count()

    page.page.locator("#retrain-button").click()
    page.page.locator("#action-dialog").wait_for(state="visible")
    page.page.locator("#action-confirm").click()
    page.page.locator("#retrain-job .pill").filter(has_text="deployed").or_(
        page.page.locator("#retrain-job .pill").filter(has_text="kept")
    ).wait_for(timeout=240_000)
    page.page.locator("#retrain-runs tbody tr").nth(rows_before).wait_for()

    after = api(base_url, "/retrain/history", limit=100)["runs"]
    assert len(after) == len(before) + 1
    newest = after[0]
    assert newest["status"] == "succeeded"
    assert (newest["feature_set"], newest["model_type"]) == ("vader", "random_forest")
    assert page.page.locator("#retrain-runs tbody tr").count() == rows_before + 1
    assert page.errors == []


@browser
def test_rollback_changes_the_champion_and_shows_the_reason_as_text(
    base_url: str, page: WatchedPage
) -> None:
    before = champion_of(base_url, "vader", "random_forest")
    page.goto_view(base_url, "models")
    reason = '<b id="injected">rolled back by the browser test</b>'

    page.page.locator(f'.rollback-button[data-pair="{FIRST_PAIR}"]').click()
    page.page.locator("#action-reason").fill(reason)
    promised = page.page.locator("#action-text").inner_text()
    page.page.locator("#action-confirm").click()
    shown = page.page.locator(f'.champion-version[data-pair="{FIRST_PAIR}"]')
    page.page.wait_for_function(
        "([selector, old]) => { const node = document.querySelector(selector);"
        " return node && !old.endsWith(node.textContent); }",
        arg=[f'.champion-version[data-pair="{FIRST_PAIR}"]', before],
    )

    after = champion_of(base_url, "vader", "random_forest")
    moves = api(base_url, "/models/history", feature_set="vader", model_type="random_forest")
    last_move = moves["history"][-1]
    assert after != before
    assert promised.endswith(f"back to {after}.")  # the dialog named the version it went to
    assert last_move["action"] == "rollback" and last_move["previous_version"] == before
    assert shown.get_attribute("title") == after
    assert page.page.locator("#notice").inner_text().endswith(after)
    # The reason is data: shown as text, never parsed into an element.
    assert page.page.locator("#injected").count() == 0
    assert last_move["reason"] == reason
    assert page.page.get_by_text(reason).count() >= 1
    assert page.errors == []


@browser
def test_actions_ask_for_the_api_key_and_ask_again_after_a_refusal(
    keyed_url: str, page: WatchedPage
) -> None:
    versions = api(
        keyed_url, "/models/versions", feature_set="vader", model_type="logistic_regression"
    )["versions"]
    archived = next(v for v in versions if v["status"] != "champion")
    page.goto_view(keyed_url, "models")

    page.page.locator(f'.promote-button[data-version="{archived["version"]}"]').click()
    key_field = page.page.locator("#action-key")
    key_field.wait_for(state="visible")
    key_field.fill("not-the-key")
    page.page.locator("#action-confirm").click()
    page.page.locator("#action-text", has_text="not accepted").wait_for()
    assert key_field.is_visible()
    key_field.fill(API_KEY)
    page.page.locator("#action-confirm").click()
    page.page.locator("#notice").filter(has_text=archived["version"]).wait_for()

    assert champion_of(keyed_url, "vader", "logistic_regression") == archived["version"]
    assert page.page.evaluate("sessionStorage.getItem('btcmlops.apiKey')") == API_KEY
    # The refused attempt is the one expected console error (the browser logs the 401).
    assert [e for e in page.errors if "401" not in e] == []


@browser
def test_protected_reads_ask_for_the_key_before_reading_and_then_draw(
    protected_url: str, page: WatchedPage
) -> None:
    page.page.goto(f"{protected_url}/dashboard#models")
    key_field = page.page.locator("#action-key")
    key_field.wait_for(state="visible")
    assert page.page.locator("#action-title").inner_text() == "API key needed"
    key_field.fill(API_KEY)
    page.page.locator("#action-confirm").click()
    page.wait_until_ready("models")

    assert page.chart_points("chart-champions") > 0
    assert page.banner_text() == ""
    assert page.page.locator("#action-dialog").is_hidden()
    assert page.errors == []  # asked first: no read was refused


@browser
def test_a_refused_read_asks_for_the_key_again(protected_url: str, page: WatchedPage) -> None:
    page.page.add_init_script("sessionStorage.setItem('btcmlops.apiKey', 'an-old-key')")
    page.page.goto(f"{protected_url}/dashboard#health")
    key_field = page.page.locator("#action-key")
    key_field.wait_for(state="visible")
    key_field.fill(API_KEY)
    page.page.locator("#action-confirm").click()
    page.wait_until_ready("health")

    assert page.page.locator("#action-dialog").is_hidden()
    assert page.banner_text() == ""
    assert page.page.evaluate("sessionStorage.getItem('btcmlops.apiKey')") == API_KEY
    # The refusals of the old key are the only console errors (the browser logs each 401).
    assert page.errors and all("401" in error for error in page.errors)


# ----------------------------------------------------------------------------- behaviour


@browser
def test_the_page_refreshes_every_15_seconds_and_pauses_while_hidden(
    base_url: str, page: WatchedPage
) -> None:
    page.page.clock.install()
    page.goto_view(base_url, "health")
    first = page.refreshes()

    page.page.clock.run_for(15_500)
    page.wait_for_refreshes("health", more_than=first)
    assert page.refreshes() == first + 1

    page.page.evaluate(
        """() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true});
                   document.dispatchEvent(new Event('visibilitychange')); }"""
    )
    page.page.clock.run_for(60_000)
    assert page.refreshes() == first + 1

    page.page.evaluate(
        """() => { Object.defineProperty(document, 'hidden', {value: false, configurable: true});
                   document.dispatchEvent(new Event('visibilitychange')); }"""
    )
    page.wait_for_refreshes("health", more_than=first + 1)
    assert page.errors == []


@browser
def test_the_page_loads_nothing_from_outside_the_server(base_url: str, page: WatchedPage) -> None:
    requested: list[str] = []
    page.page.on("request", lambda request: requested.append(request.url))
    for view in VIEWS:
        page.goto_view(base_url, view)

    outside = [url for url in requested if not url.startswith((base_url, "data:"))]
    assert outside == []
    assert any(url.startswith(f"{base_url}/dashboard/static/plotly.min.js") for url in requested)


def test_plotly_is_served_from_the_installed_package_with_long_cache_headers(
    base_url: str,
) -> None:
    bundled = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    plain = httpx.get(
        f"{base_url}/dashboard/static/plotly.min.js", headers={"Accept-Encoding": "identity"}
    )
    zipped = httpx.get(f"{base_url}/dashboard/static/plotly.min.js")

    assert plain.status_code == 200 and plain.content == bundled
    assert "immutable" in plain.headers["cache-control"]
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == bundled
    again = httpx.get(
        f"{base_url}/dashboard/static/plotly.min.js",
        headers={"If-None-Match": plain.headers["etag"]},
    )
    assert again.status_code == 304


def test_only_the_dashboards_own_files_are_served(base_url: str) -> None:
    for name in ("main.js", "app.css"):
        response = httpx.get(f"{base_url}/dashboard/static/{name}")
        assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
    for name in ("routes.py", "..%2Froutes.py", "index.html"):
        response = httpx.get(f"{base_url}/dashboard/static/{name}")
        assert response.status_code == 404
        assert response.json()["success"] is False


def test_the_shell_says_whether_actions_need_a_key_and_allows_only_its_own_scripts(
    base_url: str, keyed_url: str
) -> None:
    open_page = httpx.get(f"{base_url}/dashboard")
    keyed_page = httpx.get(f"{keyed_url}/dashboard/")

    assert 'data-key-required="false"' in open_page.text
    assert 'data-key-required="true"' in keyed_page.text
    assert API_KEY not in keyed_page.text
    policy = open_page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
