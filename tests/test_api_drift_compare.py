"""``POST /drift/compare``: two tables in, the document ``drift compare --json`` prints out."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from scipy.signal import lfilter

from btcmlops.api.app import LARGE_BODY_BYTES, MAX_BODY_BYTES, create_app
from btcmlops.context import AppContext
from btcmlops.mlops.drift.compare import MAX_TABLE_VALUES, compare_files

from support import bounded_and_exact_frames

OPTIONS = {"bins": 10, "alpha": 0.05, "psi_effect_floor": 0.1, "min_samples": 24}


@pytest.fixture
def client(app_context):
    with TestClient(create_app(app_context)) as test_client:
        yield test_client


def frames(seed: int = 0, shift: float = 0.0, rows=(168, 48)) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame(rng.normal(size=(rows[0], 4)), columns=["a", "b", "c", "d"])
    current = pd.DataFrame(rng.normal(size=(rows[1], 4)), columns=["a", "b", "c", "d"])
    current["a"] += shift
    return reference, current


def table(frame: pd.DataFrame) -> dict[str, list]:
    """The frame as the request carries it: column -> values, NaN as null."""
    return {
        name: [None if isinstance(v, float) and math.isnan(v) else v for v in values]
        for name, values in frame.to_dict("list").items()
    }


def compare(client, reference, current, **fields):
    body = {"reference": reference, "current": current, **OPTIONS, **fields}
    return client.post(
        "/drift/compare",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )


def compared(response) -> dict:
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["success"] is True
    return document


def by_feature(document: dict) -> dict[str, dict]:
    return {item["feature"]: item for item in document["drift_results"]}


def statistics_of(document: dict) -> dict:
    """The check itself: what a file and a table comparison of the same data share."""
    left_out = {"success", "reference", "current", "notes", "bad_values"}
    return {key: value for key, value in document.items() if key not in left_out}


@pytest.mark.parametrize(("shift", "severity"), [(0.0, "none"), (2.0, "high")])
def test_tables_and_the_same_data_as_csv_files_give_the_same_check(
    client, tmp_path, shift, severity
):
    reference, current = frames(seed=1, shift=shift)
    reference.to_csv(tmp_path / "r.csv", index=False)
    current.to_csv(tmp_path / "c.csv", index=False)
    from_files = compare_files(tmp_path / "r.csv", tmp_path / "c.csv", **OPTIONS).to_dict()

    document = compared(compare(client, table(reference), table(current)))

    assert document["drift_severity"] == severity
    assert document["drift"] is (severity != "none")
    assert statistics_of(document) == statistics_of(json.loads(json.dumps(from_files)))
    assert document["reference"] == "reference" and document["current"] == "current"


def test_each_feature_says_whether_its_pvalue_is_exact_or_a_certified_bound(client):
    reference, current = bounded_and_exact_frames()

    document = compared(compare(client, table(reference), table(current)))

    flags = {name: item["ks_pvalue_exact"] for name, item in by_feature(document).items()}
    assert flags == {"calm": False, "quiet": False, "steady": False, "shifted": False,
                     "gappy": True}  # fmt: skip
    assert "exact for 1 of 5 tested features (gappy)" in document["message"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ComparedFeature"]
    for field in ("ks_pvalue_exact", "ks_pvalue_adjusted_exact"):
        assert field in schema["required"]
        assert "certified upper bound" in schema["properties"][field]["description"]
    assert all(
        isinstance(item["ks_pvalue_adjusted_exact"], bool) for item in by_feature(document).values()
    )


def test_infinities_are_counted_per_feature_and_side_and_kept_out_of_the_statistics(client):
    reference, current = frames(seed=5, shift=0.8)
    with_infinities, without = table(reference), table(reference)
    for row, value in ((3, "inf"), (50, "+Infinity"), (7, "-inf")):
        with_infinities["b"][row] = value
        without["b"][row] = None
    current_infinite, current_without = table(current), table(current)
    current_infinite["c"][2], current_without["c"][2] = "INF", None

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning anywhere would fail the request
        document = compared(compare(client, with_infinities, current_infinite))
    plain = compared(compare(client, without, current_without))

    assert document["bad_values"]["infinite"] == {
        "reference": {"b": {"+inf": 2, "-inf": 1}},
        "current": {"c": {"+inf": 1, "-inf": 0}},
    }
    assert document["bad_values"]["non_numeric"] == {"reference": {}, "current": {}}
    # exactly the check of the same data with the infinities missing: no infinite PSI edge
    assert statistics_of(document) == statistics_of(plain)
    tested = by_feature(document)
    assert tested["b"]["reference_count"] == 165 and tested["c"]["current_count"] == 47
    assert all(item["psi"] >= 0 for item in tested.values())
    assert any(note.startswith("b: 2 +inf and 1 -inf") for note in document["notes"])


def test_json_infinity_literals_count_as_infinities(client):
    reference, current = frames(seed=6)
    body = {"reference": table(reference), "current": table(current), **OPTIONS}
    body["reference"]["a"][0] = -math.inf
    content = json.dumps(body)  # Python writes -Infinity, which Python's reader accepts
    assert "-Infinity" in content
    response = client.post(
        "/drift/compare", content=content, headers={"Content-Type": "application/json"}
    )
    document = compared(response)
    assert document["bad_values"]["infinite"]["reference"] == {"a": {"+inf": 0, "-inf": 1}}


def test_spelled_nan_is_a_missing_value_not_a_stray_cell(client):
    reference, current = frames(seed=7)
    spelled = table(reference)
    spelled["d"][10], spelled["d"][11] = "nan", " NaN "
    document = compared(compare(client, spelled, table(current)))
    assert by_feature(document)["d"]["reference_count"] == 166
    assert document["bad_values"]["non_numeric"]["reference"] == {}
    assert document["bad_values"]["infinite"]["reference"] == {}


def test_stray_strings_are_reported_with_count_and_first_row_and_the_column_still_tested(client):
    reference, current = frames(seed=4, shift=1.5)
    stray = table(reference)
    stray["a"][9], stray["a"][40] = "n/a (feed down)", "1.5"  # a quoted number is text too
    document = compared(compare(client, stray, table(current)))

    assert document["bad_values"]["non_numeric"]["reference"] == {"a": {"count": 2, "first_row": 9}}
    tested = by_feature(document)["a"]
    assert tested["tested"] and tested["drift_detected"]  # the shift is still found
    assert tested["reference_count"] == 166  # the stray cells are missing values
    assert any(
        'the "reference" table: column a' in note and "row 9" in note and "n/a" in note
        for note in document["notes"]
    )


def test_a_column_of_text_is_left_out_and_refused_when_named(client):
    reference, current = frames(seed=8)
    with_text = table(reference)
    with_text["label"] = ["up", "down", 1.0] * 56  # numbers do not outnumber the words
    document = compared(compare(client, with_text, table(current)))
    assert "non-numeric columns ignored: label" in document["notes"]
    assert document["features_tested"] == 4

    response = compare(client, with_text, table(current), features=["label"])
    assert response.status_code == 422
    assert "label" in response.json()["detail"] and "not numeric" in response.json()["detail"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unequal_lengths", 'the "current" table\'s columns differ in length: a has 48'),
        ("unknown_feature", 'the "reference" table has no column zz'),
        ("too_few_rows", 'too few rows in the "current" table: 10, need at least 24'),
        ("nothing_shared", "no numeric column in common"),
        ("short_history", 'the "history" table has 50 rows; it needs at least as many'),
    ],
)
def test_bad_tables_get_422_with_a_clear_detail(client, case, message):
    reference, current = frames(seed=9)
    body, fields = [table(reference), table(current)], {}
    if case == "unequal_lengths":
        body[1]["b"] = body[1]["b"][:-1]
    elif case == "unknown_feature":
        fields["features"] = ["a", "zz"]
    elif case == "too_few_rows":
        body[1] = table(current.head(10))
    elif case == "nothing_shared":
        body[1] = table(current.rename(columns=lambda name: name + "_x"))
    elif case == "short_history":
        fields["history"] = table(reference.head(50))
    response = compare(client, *body, **fields)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["success"] is False and answer["error"] == "InvalidInputError"
    assert message in answer["detail"]


def test_more_values_than_the_cap_are_refused(client):
    rows = MAX_TABLE_VALUES // 2 + 1  # two columns: one value over the cap
    response = compare(client, {"a": [0] * rows}, {"a": [0] * rows})
    assert response.status_code == 422, response.text[:200]
    assert f"at most {MAX_TABLE_VALUES:,}" in response.json()["detail"]


def test_a_history_gives_the_autocorrelation_times(client):
    rng = np.random.default_rng(11)
    series = np.empty(504 + 48)
    series[0] = rng.normal() / np.sqrt(1 - 0.95**2)
    for t in range(1, series.size):
        series[t] = 0.95 * series[t - 1] + rng.normal()
    history = {"x": series[:480].tolist()}
    reference, current = {"x": series[480:504].tolist()}, {"x": series[504:528].tolist()}

    document = compared(compare(client, reference, current, history=history))

    assert 'autocorrelation times from the 480 rows of the "history" table' in document["notes"]
    assert by_feature(document)["x"]["autocorrelation_time"] > 5


def test_a_reference_too_short_for_its_dependence_is_refused_naming_the_history(client):
    rng = np.random.default_rng(12)
    shocks = rng.normal(size=(48, 3))
    shocks[0] /= np.sqrt(1 - 0.95**2)
    series = lfilter([1.0], [1.0, -0.95], shocks, axis=0)  # AR(0.95): τ ≈ 39 rows
    reference = {f"f{j}": series[:24, j].tolist() for j in range(3)}
    current = {f"f{j}": series[24:, j].tolist() for j in range(3)}

    response = compare(client, reference, current)

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "too few to estimate" in detail and detail.endswith('("history" in the request)')


def test_options_left_out_take_the_server_settings(app_context):
    settings = app_context.settings.model_copy(update={"drift_psi_bins": 5, "drift_alpha": 0.01})
    context = AppContext(settings=settings, clock=app_context.clock, _store=app_context.store)
    reference, current = frames(seed=3)
    with TestClient(create_app(context)) as client:
        response = client.post(
            "/drift/compare", json={"reference": table(reference), "current": table(current)}
        )
    document = compared(response)
    assert document["bins"] == 5 and document["alpha"] == 0.01
    assert document["min_samples"] == app_context.settings.drift_min_samples


def test_unknown_request_fields_are_refused(client):
    reference, current = frames(seed=3)
    response = compare(client, table(reference), table(current), min_sample=2)
    assert response.status_code == 422
    assert "min_sample" in response.json()["detail"]


def test_a_body_over_16_mib_gets_413(client):
    content = b'{"reference": {"a": [' + b"0," * (LARGE_BODY_BYTES // 2) + b"0]}}"
    response = client.post(
        "/drift/compare", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "PayloadTooLarge"
    assert str(LARGE_BODY_BYTES) in response.json()["detail"]


def test_a_streamed_body_over_16_mib_gets_413_too(client):
    chunk = b"0," * (1 << 19)  # 1 MiB; no Content-Length, so the limit counts what arrives
    chunks = [b'{"reference": {"a": ['] + [chunk] * 17 + [b"0]}}"]
    response = client.post(
        "/drift/compare", content=iter(chunks), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_other_endpoints_keep_the_64_kib_limit(client):
    padding = "x" * MAX_BODY_BYTES
    response = client.post(
        "/predictions/1/outcome", json={"actual_direction": 1, "padding": padding}
    )
    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.json()["detail"]
    # the same size is no problem for the comparison
    reference, current = frames(seed=2, rows=(1000, 100))
    response = compare(client, table(reference), table(current))
    assert response.status_code == 200 and len(response.request.content) > MAX_BODY_BYTES


def test_the_endpoint_is_documented_with_its_request_and_response_models(client):
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/drift/compare"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/DriftCompareRequest")
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/DriftCompareResponse")
    assert {"413", "422"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    assert {"+inf", "-inf"} <= set(schemas["InfinityCount"]["properties"])
    assert "first_row" in schemas["StrayCellCount"]["properties"]
    assert client.get("/").json()["endpoints"]["drift_compare"] == "/drift/compare"
    (example,) = schemas["DriftCompareRequest"]["examples"]  # the fuzzer starts from it
    document = compared(client.post("/drift/compare", json=example))
    assert document["bad_values"]["non_numeric"]["reference"] == {
        "volume_z": {"count": 1, "first_row": 2}
    }
    assert document["bad_values"]["infinite"]["reference"] == {"volume_z": {"+inf": 1, "-inf": 0}}


@pytest.mark.parametrize("body", [b"i\xff\xfe0\xc3(", b"\x80\x81\x82"], ids=["mixed", "bytes"])
def test_a_body_that_is_not_utf8_is_bad_input_not_a_bare_400(client, body):
    response = client.post(
        "/drift/compare", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "UTF-8" in response.json()["detail"]
