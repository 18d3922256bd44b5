/* Drift: the latest daily check, the live window beside it, model drift, and the hourly
 * sequential detector of each feature set. */

import { state } from "../state.js";
import { byId, el, emptyState, fact, fill, kpi, pill } from "../dom.js";
import {
  count,
  interval,
  isNumber,
  num,
  pValue,
  pairLabel,
  pct,
  shortTime,
  utc,
} from "../format.js";
import { load } from "../api.js";
import { drawChart } from "../charts.js";
import { noModels, selectedPair } from "../pairs.js";
import { renderDriftHistory } from "./drift-history.js";
import { renderSequential } from "./drift-sequential.js";
import { renderDistribution, renderDriftTable, renderFeaturePicker } from "./drift-features.js";

export async function renderDrift() {
  const pair = selectedPair();
  if (!pair) {
    for (const id of ["chart-drift-history", "chart-distribution"]) {
      drawChart(id, [], {}, noModels());
    }
    for (const id of ["drift-kpis", "drift-live", "drift-recommendations", "model-drift"]) {
      fill(id);
    }
    byId("drift-stored-note").textContent = "";
    byId("drift-live-note").textContent = "";
    fill("drift-table", noModels());
    fill("drift-sequential");
    return;
  }
  const featureSets = [...new Set(state.pairs.map((p) => p.feature_set))];
  const ofPair = { feature_set: pair.feature_set, model_type: pair.model_type };
  const [histories, latest, liveFeatures, liveModel] = await Promise.all([
    Promise.all(featureSets.map((fs) => load("/drift/history", { feature_set: fs, days: 30 }))),
    load("/drift/latest", ofPair),
    load("/drift/features", { feature_set: pair.feature_set }),
    load("/drift/model", ofPair),
  ]);
  const live = {
    features: liveFeatures && liveFeatures.drift_analysis,
    model: liveModel && liveModel.drift_analysis,
  };
  // The view opens on the latest stored daily check (its windows are complete); the live
  // window, still filling, is shown beside it. Before any check is stored, the live window
  // is all there is.
  const stored = latest && latest.status === "stored" ? latest : null;
  const shown = stored ? { features: stored.features, model: stored.model } : live;
  const analysis = shown.features;
  const tested = ((analysis && analysis.drift_results) || []).filter((r) => r.tested !== false);
  if (!tested.some((r) => r.feature === state.driftFeature)) {
    state.driftFeature = tested.length ? tested[0].feature : null; // the most drifted
  }
  state.driftWindows = analysis
    ? {
        reference_days: analysis.reference_period_days,
        current_days: analysis.current_period_days,
      }
    : {};
  renderStoredCheck(latest);
  renderLiveWindow(live);
  renderDriftHistory(featureSets, histories);
  renderDriftTable(analysis, stored ? "daily check" : "live window");
  renderRecommendations(stored && stored.summary, latest);
  renderModelDrift(shown.model);
  renderFeaturePicker(tested);
  await Promise.all([renderDistribution(pair), renderSequential(featureSets)]);
}

/** "02-27 00:00 → 03-01 00:00 UTC": the current window of a check. */
function currentWindow(analysis) {
  const windows = (analysis && analysis.windows) || {};
  if (!windows.current_start) return "";
  return `${shortTime(windows.current_start)} → ${shortTime(windows.current_end)} UTC`;
}

function featureDriftCard(analysis) {
  if (analysis.status === "success") {
    return kpi(
      "Feature drift",
      pill(analysis.drift_severity),
      `${count(analysis.significant_drift_count)} of ${count(analysis.features_tested)} ` +
        "features drifted"
    );
  }
  const needed = (analysis.method && analysis.method.min_samples) || null;
  const rows = `${count(analysis.reference_samples)} / ${count(analysis.current_samples)} rows`;
  return kpi(
    "Feature drift",
    pill(analysis.status),
    needed ? `${rows}, ${count(needed)} needed on each side` : rows
  );
}

function modelDriftCard(analysis) {
  const accuracy = analysis.accuracy || {};
  const detail = isNumber(accuracy.drop)
    ? `accuracy drop ${pct(accuracy.drop)} (p ${pValue(accuracy.p_value)})`
    : `${count(analysis.current_predictions)} current outcomes, ` +
      `${count(analysis.min_predictions)} needed`;
  return kpi("Model drift", pill(analysis.drift_severity || analysis.status), detail);
}

function renderStoredCheck(latest) {
  const note = byId("drift-stored-note");
  note.textContent = "";
  if (!latest) {
    fill("drift-kpis", emptyState("The latest daily check could not be loaded (see above)."));
    return;
  }
  if (latest.status !== "stored") {
    fill("drift-kpis", emptyState(latest.message || "No daily drift check stored yet."));
    return;
  }
  const { summary, features, model } = latest;
  note.textContent = `checked ${utc(latest.checked_at)}`;
  const cards = [
    kpi(
      "Overall severity",
      pill(summary.overall_severity || summary.status),
      pairLabel(summary.feature_set, summary.model_type)
    ),
  ];
  if (features) {
    cards.push(
      featureDriftCard(features),
      kpi(
        "Windows",
        `${count(features.reference_samples)} / ${count(features.current_samples)}`,
        `rows: reference ${features.reference_period_days} d / ` +
          `current ${features.current_period_days} d`
      )
    );
  }
  // The label-free estimate is in the model drift facts below.
  if (model) cards.push(modelDriftCard(model));
  fill("drift-kpis", ...cards);
}

/** The API's rolling window up to now: incomplete early in a day, so only shown beside. */
function renderLiveWindow(live) {
  const note = byId("drift-live-note");
  note.textContent = "";
  const cards = [];
  if (live.features) {
    const reference = live.features.reference_period_days;
    note.textContent =
      `current ${currentWindow(live.features)} · reference ${reference} d before`;
    cards.push(featureDriftCard(live.features));
  }
  if (live.model) cards.push(modelDriftCard(live.model));
  if (!cards.length) cards.push(emptyState("The live window could not be loaded (see above)."));
  fill("drift-live", ...cards);
}

function renderRecommendations(summary, latest) {
  const items = (summary && summary.recommendations) || [];
  const none = summary
    ? "Nothing to act on."
    : (latest && latest.message) || "No drift summary available.";
  fill(
    "drift-recommendations",
    ...(items.length
      ? items.map((text) => el("li", null, text))
      : [el("li", { class: "muted" }, none)])
  );
}

function renderModelDrift(analysis) {
  if (!analysis) {
    fill("model-drift", el("p", { class: "muted" }, "Model drift could not be loaded."));
    return;
  }
  const accuracy = analysis.accuracy || {};
  const calibration = analysis.calibration || {};
  const estimate = analysis.estimated_accuracy || {};
  const withInterval = (value, bounds) => `${pct(value)} ${interval(bounds)}`.trim();
  fill(
    "model-drift",
    fact("Status", pill(analysis.status)),
    fact(
      "Outcomes ref / current",
      `${count(analysis.reference_predictions)} / ${count(analysis.current_predictions)}`
    ),
    fact("Accuracy reference", withInterval(accuracy.reference, accuracy.reference_interval)),
    fact("Accuracy current", withInterval(accuracy.current, accuracy.current_interval)),
    fact("Drop (p-value)", `${pct(accuracy.drop)} (${pValue(accuracy.p_value)})`),
    fact("ECE ref → cur", `${num(calibration.reference_ece)} → ${num(calibration.current_ece)}`),
    fact(
      "Brier ref → cur",
      `${num(calibration.reference_brier)} → ${num(calibration.current_brier)}`
    ),
    fact("Label-free estimate", `${pct(estimate.value)} over ${count(estimate.predictions)}`)
  );
}
