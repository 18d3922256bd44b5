"""``btcmlops drift compare``: files in, a verdict and an exit code out (0 / 1 / 2)."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
import typer
from scipy.signal import lfilter

from btcmlops.cli import app as cli_app
from btcmlops.cli import drift as drift_commands
from btcmlops.mlops.drift import statistics as st
from btcmlops.mlops.drift.compare import compare_files
from btcmlops.mlops.drift.feature_drift import FeatureDrift, compare_features
from btcmlops.mlops.drift.files import read_numeric_table

from support import bounded_and_exact_frames


@pytest.fixture
def run(monkeypatch, capsys):
    """Run the CLI entry point with ``drift`` registered, as cli/app.py will register it."""
    root = typer.Typer(pretty_exceptions_enable=False)
    root.add_typer(drift_commands.app, name="drift")

    @root.callback()
    def _root() -> None:
        """btcmlops."""

    monkeypatch.setattr(cli_app, "app", root)
    for name in ("BTCMLOPS_DRIFT_ALPHA", "BTCMLOPS_DRIFT_PSI_BINS", "BTCMLOPS_DRIFT_MIN_SAMPLES"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as stopped:
            cli_app.main(["drift", "compare", *args])
        captured = capsys.readouterr()
        return stopped.value.code, captured.out, captured.err

    return invoke


def frames(seed: int = 0, shift: float = 0.0, rows=(168, 48)):
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame(rng.normal(size=(rows[0], 4)), columns=["a", "b", "c", "d"])
    current = pd.DataFrame(rng.normal(size=(rows[1], 4)), columns=["a", "b", "c", "d"])
    current["a"] += shift
    return reference, current


def write(frame: pd.DataFrame, path) -> str:
    if str(path).endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def test_no_drift_exits_zero_with_a_table(run, tmp_path):
    reference, current = frames(seed=1)
    code, out, _ = run(
        "--reference", write(reference, tmp_path / "r.csv"),
        "--current", write(current, tmp_path / "c.parquet"),
    )  # fmt: skip
    assert code == 0
    assert "severity none" in out
    for header in ("feature", "PSI", "noise level", "KS statistic", "adjusted p", "verdict"):
        assert header in out
    assert "≤" not in out  # 168 x 48 rows: every p-value exact, nothing to mark


def table_cells(out: str) -> dict[str, list[str]]:
    """The printed table's rows by feature: the cells of each, stripped."""
    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 6:
            rows[cells[0]] = cells
    return rows


def test_a_bounded_pvalue_prints_as_at_most_with_a_line_saying_what_that_means(run, tmp_path):
    reference, current = bounded_and_exact_frames()
    paths = ("-r", write(reference, tmp_path / "r.csv"), "-c", write(current, tmp_path / "c.csv"))
    _, out, _ = run(*paths)
    _, as_json, _ = run(*paths, "--json")

    results = {item["feature"]: item for item in json.loads(as_json)["drift_results"]}
    assert {name for name, item in results.items() if item["ks_pvalue_exact"]} == {"gappy"}
    cells = table_cells(out)
    assert set(cells) == set(results)
    for name, item in results.items():
        shown = cells[name][4]  # adjusted p
        assert shown.startswith("≤ ") is not item["ks_pvalue_adjusted_exact"], shown
        assert float(shown.removeprefix("≤ ")) == pytest.approx(
            item["ks_pvalue_adjusted"], rel=1e-2
        )
    assert "≤ p: a certified upper bound; the verdict is the one the exact p-value gives." in out


def test_the_html_report_marks_a_bounded_pvalue_and_says_what_that_means(run, tmp_path):
    reference, current = bounded_and_exact_frames()
    report_path = tmp_path / "report.html"
    run(
        "-r", write(reference, tmp_path / "r.csv"),
        "-c", write(current, tmp_path / "c.csv"),
        "--html", str(report_path),
    )  # fmt: skip
    rows = {
        line.split("</td>")[0].removeprefix("<tr><td>"): line
        for line in report_path.read_text(encoding="utf-8").splitlines()
        if line.startswith("<tr><td>")
    }
    assert set(rows) == {"calm", "quiet", "steady", "shifted", "gappy"}
    _, as_json, _ = run("-r", str(tmp_path / "r.csv"), "-c", str(tmp_path / "c.csv"), "--json")
    flags = {
        item["feature"]: (item["ks_pvalue_exact"], item["ks_pvalue_adjusted_exact"])
        for item in json.loads(as_json)["drift_results"]
    }
    assert flags["gappy"][0] and not any(flags[name][0] for name in set(flags) - {"gappy"})
    for name, (raw_exact, adjusted_exact) in flags.items():  # one mark per bound
        marks = re.findall(r"<span title='a certified upper bound[^']*'>≤ ", rows[name])
        assert len(marks) == (not raw_exact) + (not adjusted_exact)
    assert "≤ p: a certified upper bound on the p-value" in report_path.read_text()


def test_drift_exits_one_and_names_the_drifted_feature_first(run, tmp_path):
    reference, current = frames(seed=1, shift=2.0)
    code, out, _ = run(
        "-r", write(reference, tmp_path / "r.parquet"),
        "-c", write(current, tmp_path / "c.parquet"),
        "--json",
    )  # fmt: skip
    assert code == 1
    payload = json.loads(out)
    assert payload["drift"] is True and payload["drift_severity"] == "high"
    assert payload["drift_results"][0]["feature"] == "a"
    assert payload["drift_results"][0]["drift_detected"] is True
    assert payload["significant_drift_count"] == 1


def test_cli_result_equals_the_in_memory_comparison(tmp_path):
    reference, current = frames(seed=2, shift=0.7)
    report = compare_files(write(reference, tmp_path / "r.csv"), write(current, tmp_path / "c.csv"))
    direct = compare_features(reference, current)
    assert report.result.to_dict() == direct.to_dict()


def test_a_long_file_with_missing_values_and_dependence_gives_the_in_memory_result(tmp_path):
    # longer than the rows the dependence estimate reads: the file path keeps only those
    # before it sorts both sides in place
    rng = np.random.default_rng(9)
    rows = st.DEPENDENCE_ROWS + 952
    values = rng.normal(size=(rows + 600, 4))
    values[:, 1] = lfilter([1.0], [1.0, -0.95], values[:, 1])
    values[rng.random(values.shape) < 0.02] = np.nan
    values[rows:, 0] += 0.2
    frame = pd.DataFrame(values, columns=["a", "b", "c", "d"])
    reference, current = frame.iloc[:rows], frame.iloc[rows:]
    report = compare_files(
        write(reference, tmp_path / "r.parquet"), write(current, tmp_path / "c.parquet")
    )
    direct = compare_features(reference, current)
    persistent = next(item for item in direct.drift_results if item.feature == "b")
    assert direct.status == "success" and persistent.autocorrelation_time > 1.0
    assert report.result.to_dict() == direct.to_dict()


def test_features_option_selects_columns(run, tmp_path):
    reference, current = frames(seed=1, shift=2.0)
    code, out, _ = run(
        "-r", write(reference, tmp_path / "r.csv"),
        "-c", write(current, tmp_path / "c.csv"),
        "--features", "b, c", "--json",
    )  # fmt: skip
    assert code == 0
    assert sorted(item["feature"] for item in json.loads(out)["drift_results"]) == ["b", "c"]


def test_non_numeric_columns_are_ignored_with_a_note(run, tmp_path):
    reference, current = frames(seed=1)
    reference["ts"] = pd.date_range("2024-01-01", periods=len(reference), freq="h", tz="UTC")
    reference["label"] = "x"
    current["label"] = "y"
    current["extra"] = 1.0
    code, out, _ = run(
        "-r", write(reference, tmp_path / "r.parquet"),
        "-c", write(current, tmp_path / "c.csv"),
        "--json",
    )  # fmt: skip
    payload = json.loads(out)
    assert code == 0
    assert "non-numeric columns ignored: label, ts" in payload["notes"]
    assert "only in the current data, ignored: extra" in payload["notes"]
    assert payload["features_tested"] == 4


def test_html_report_is_self_contained_and_escapes_names(run, tmp_path):
    reference, current = frames(seed=1, shift=2.0)
    reference = reference.rename(columns={"b": "<b>&"})
    current = current.rename(columns={"b": "<b>&"})
    report_path = tmp_path / "report.html"
    code, _, _ = run(
        "-r", write(reference, tmp_path / "r.csv"),
        "-c", write(current, tmp_path / "c.csv"),
        "--html", str(report_path),
    )  # fmt: skip
    html = report_path.read_text(encoding="utf-8")
    assert code == 1
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    assert "&lt;b&gt;&amp;" in html and "<b>&" not in html
    assert "http://" not in html and "https://" not in html
    assert len(html) < 50_000


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_feature", "has no column zz"),
        ("missing_file", "no such file"),
        ("garbage", "cannot read"),
        ("too_few_rows", "too few rows"),
        ("nothing_shared", "no numeric column in common"),
        ("non_numeric_feature", "not numeric"),
    ],
)
def test_errors_exit_two_with_one_line_and_no_traceback(run, tmp_path, case, message):
    reference, current = frames(seed=1)
    ref_path = write(reference, tmp_path / "r.csv")
    cur_path = write(current, tmp_path / "c.csv")
    extra: list[str] = []
    if case == "missing_feature":
        extra = ["--features", "a,zz"]
    elif case == "missing_file":
        cur_path = str(tmp_path / "absent.csv")
    elif case == "garbage":
        (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
        cur_path = str(tmp_path / "bad.parquet")
    elif case == "too_few_rows":
        cur_path = write(current.head(10), tmp_path / "short.csv")
    elif case == "nothing_shared":
        cur_path = write(current.rename(columns=lambda c: c + "_x"), tmp_path / "other.csv")
    elif case == "non_numeric_feature":
        current["a"] = "text"
        cur_path = write(current, tmp_path / "text.csv")
        extra = ["--features", "a"]
    code, out, err = run("-r", ref_path, "-c", cur_path, *extra)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [("--bins", "1"), ("--bins", "101"), ("--alpha", "0"), ("--alpha", "1.5"),
     ("--psi-floor", "-0.1"), ("--min-samples", "1")],
)  # fmt: skip
def test_out_of_range_options_exit_two_with_the_reason(run, tmp_path, option, value):
    reference, current = frames(seed=1)
    code, _, err = run(
        "-r", write(reference, tmp_path / "r.csv"),
        "-c", write(current, tmp_path / "c.csv"),
        option, value,
    )  # fmt: skip
    assert code == 2
    assert option in err and len(err.strip().splitlines()) == 1


def test_options_override_settings_defaults(run, tmp_path, monkeypatch):
    reference, current = frames(seed=3, shift=0.6)
    paths = ["-r", write(reference, tmp_path / "r.csv"), "-c", write(current, tmp_path / "c.csv")]
    monkeypatch.setenv("BTCMLOPS_DRIFT_PSI_BINS", "5")
    _, out, _ = run(*paths, "--json")
    assert json.loads(out)["bins"] == 5
    _, out, _ = run(*paths, "--json", "--bins", "20", "--alpha", "0.01")
    payload = json.loads(out)
    assert payload["bins"] == 20 and payload["alpha"] == 0.01


def test_a_stray_text_cell_is_reported_and_the_column_still_tested(run, tmp_path):
    reference, current = frames(seed=4, shift=1.5)
    reference_path = tmp_path / "r.csv"
    write(reference, reference_path)
    lines = reference_path.read_text().splitlines()
    cells = lines[10].split(",")  # data row 9, the file's line 11
    cells[0] = "n/a (feed down)"
    lines[10] = ",".join(cells)
    reference_path.write_text("\n".join(lines) + "\n")
    code, out, err = run(
        "--reference",
        str(reference_path),
        "--current",
        write(current, tmp_path / "c.csv"),
        "--json",
    )
    assert code == 1, err  # the shifted column "a" is still tested, and drifted
    report = json.loads(out)
    tested = {item["feature"]: item for item in report["drift_results"]}
    assert tested["a"]["tested"] and tested["a"]["drift_detected"]
    assert tested["a"]["reference_count"] == 167  # the stray cell is a missing value
    assert report["bad_values"]["non_numeric"]["reference"] == {"a": {"count": 1, "first_line": 11}}
    assert any("column a" in note and "line 11" in note for note in report["notes"])


def test_infinities_are_counted_and_kept_out_of_the_bins(run, tmp_path, recwarn):
    reference, current = frames(seed=5)
    reference.loc[[3, 50], "b"] = np.inf
    reference.loc[7, "b"] = -np.inf
    current.loc[2, "c"] = np.inf
    for suffix in ("csv", "parquet"):
        code, out, err = run(
            "--reference",
            write(reference, tmp_path / f"r.{suffix}"),
            "--current",
            write(current, tmp_path / f"c.{suffix}"),
            "--json",
        )
        assert code in (0, 1) and "Warning" not in err
        report = json.loads(out)
        assert report["bad_values"]["infinite"] == {
            "reference": {"b": {"+inf": 2, "-inf": 1}},
            "current": {"c": {"+inf": 1, "-inf": 0}},
        }
        tested = {item["feature"]: item for item in report["drift_results"]}
        assert tested["b"]["reference_count"] == 165 and tested["c"]["current_count"] == 47
        assert all(item["psi"] is None or item["psi"] >= 0 for item in tested.values())
        assert any("+inf" in note for note in report["notes"])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def ar_frame(rng, rows, phi=0.95, features=6):
    """A persistent series with no drift: AR(phi), started in its stationary distribution."""
    shocks = rng.normal(size=(rows, features))
    shocks[0] /= np.sqrt(1 - phi**2)
    values = lfilter([1.0], [1.0, -phi], shocks, axis=0)
    return pd.DataFrame(values, columns=[f"f{i}" for i in range(features)])


def test_a_reference_too_short_for_its_dependence_is_refused_with_exit_two(run, tmp_path):
    series = ar_frame(np.random.default_rng(0), 48)  # AR(0.95), 24 x 24: τ ≈ 39 hours
    code, out, err = run(
        "--reference", write(series.iloc[:24], tmp_path / "r.csv"),
        "--current", write(series.iloc[24:], tmp_path / "c.csv"),
    )  # fmt: skip
    assert code == 2 and not out
    (line,) = err.strip().splitlines()
    assert "too few to estimate" in line and line.endswith("(--history FILE)")


def test_a_history_file_gives_the_dependence_a_short_reference_cannot(run, tmp_path):
    alarms = 0
    for seed in range(20):
        series = ar_frame(np.random.default_rng(seed), 504 + 24 + 24)  # no drift
        paths = {
            name: write(part, tmp_path / f"{name}-{seed}.csv")
            for name, part in (
                ("history", series.iloc[:504]),
                ("reference", series.iloc[504:528]),
                ("current", series.iloc[528:]),
            )
        }
        code, out, err = run(
            "--reference", paths["reference"], "--current", paths["current"],
            "--history", paths["history"], "--json",
        )  # fmt: skip
        assert code in (0, 1), err
        report = json.loads(out)
        alarms += report["drift_severity"] in ("medium", "high")
        assert any("504 rows" in note for note in report["notes"])
        assert all(item["autocorrelation_time"] > 5 for item in report["drift_results"])
    # the history sees that the series remembers for ~40 hours; 24 rows alone cannot
    assert alarms <= 1, alarms


def test_a_history_shorter_than_the_reference_or_without_the_features_is_refused(run, tmp_path):
    reference, current = frames(seed=6)
    args = ("--reference", write(reference, tmp_path / "r.csv"))
    args += ("--current", write(current, tmp_path / "c.csv"))
    code, _, err = run(*args, "--history", write(reference.iloc[:50], tmp_path / "h.csv"))
    assert code == 2 and "at least as many as the reference" in err
    code, _, err = run(*args, "--history", write(reference[["a", "b"]], tmp_path / "h2.csv"))
    assert code == 2 and "no numeric column c" in err


def test_parquet_columns_read_as_floats_in_file_order_with_nulls_as_nan(tmp_path):
    # float columns alone are converted in one call, with other types column by column:
    # the same values either way
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a", "b", "c"])
    frame.loc[[2, 17], "b"] = np.nan
    frame["n"] = pd.array(rng.integers(0, 9, size=30), dtype="Int64")
    frame.loc[4, "n"] = pd.NA
    frame["flag"] = rng.random(30) < 0.5
    frame["label"] = "x"
    path = tmp_path / "f.parquet"
    frame.to_parquet(path)
    table = read_numeric_table(path)
    assert table.numeric == ("a", "b", "c", "n", "flag") and table.non_numeric == ("label",)
    expected = frame[list(table.numeric)].astype(float).to_numpy().T
    np.testing.assert_array_equal(table.columns(table.numeric), expected)
    np.testing.assert_array_equal(table.columns(["c", "a", "b"]), expected[[2, 0, 1]])


def test_feature_results_built_from_field_lists_equal_those_built_one_by_one():
    reference, current = frames(seed=3, shift=1.0)
    result = compare_features(reference, current)
    fields = {
        name: [getattr(item, name) for item in result.drift_results]
        for name in result.drift_results[0].__dataclass_fields__
    }
    built = FeatureDrift.from_field_lists(fields)
    assert built == [FeatureDrift(**item.__dict__) for item in result.drift_results]
    assert [repr(item) for item in built] == [repr(item) for item in result.drift_results]
    with pytest.raises(dataclasses.FrozenInstanceError):
        built[0].psi = 0.0
    del fields["psi"]
    with pytest.raises(AssertionError, match="25 fields"):
        FeatureDrift.from_field_lists(fields)
