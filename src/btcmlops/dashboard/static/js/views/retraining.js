/* Retraining: the runs (chart and table), the policy's checks and the shadows' evidence. */

import { HOUR_MS } from "../config.js";
import { DECISION_COLOURS } from "../palette.js";
import { byId, clamped, code, el, emptyState, fill, pill, plotText } from "../dom.js";
import {
  count,
  eValue,
  isNumber,
  isoTime,
  pValue,
  pairKey,
  pairLabel,
  pct,
  seconds,
  shortTime,
} from "../format.js";
import { modelCell } from "../model-cells.js";
import { load } from "../api.js";
import { drawChart, layout, paddedRange } from "../charts.js";
import { table } from "../tables.js";
import { selectedPair } from "../pairs.js";
import { accuracyOf, decisionTest, isEValueTest, testMargin } from "../evidence.js";
import { renderChecks } from "./retraining-checks.js";
import { followingRetrainJob } from "./retraining-job.js";
import { renderShadowEvidence } from "./shadows.js";

export async function renderRetraining() {
  const pair = selectedPair();
  byId("retrain-button").disabled = !pair || followingRetrainJob();
  const [checks, history, shadows, versions] = await Promise.all([
    pair
      ? load("/retrain/checks", {
          feature_set: pair.feature_set,
          model_type: pair.model_type,
          limit: 50,
        })
      : null,
    load("/retrain/history", { limit: 100 }),
    load("/retrain/shadows"),
    load("/models/versions"),
  ]);
  const runs = (history && history.runs) || [];
  renderRunsChart(runs);
  renderRuns(runs, history);
  renderChecks(pair, checks);
  const kinds = new Map(((versions && versions.versions) || []).map((v) => [v.version, v]));
  renderShadowEvidence(shadows, kinds);
}

function renderRunsChart(runs) {
  const finished = runs.filter((r) => isNumber(accuracyOf(r.challenger_metrics))).reverse();
  const withChampion = finished.filter((r) => isNumber(accuracyOf(r.champion_metrics)));
  const connectors = { x: [], y: [] };
  for (const run of withChampion) {
    connectors.x.push(run.started_at, run.started_at, null);
    connectors.y.push(accuracyOf(run.champion_metrics), accuracyOf(run.challenger_metrics), null);
  }
  const traces = [
    {
      type: "scatter",
      mode: "lines",
      x: connectors.x,
      y: connectors.y,
      line: { color: "#cbd5e1", width: 2 },
      hoverinfo: "skip",
      showlegend: false,
    },
  ];
  for (const decision of ["deployed", "kept", "fallback"]) {
    const decidedAs = (r) =>
      ["deployed", "fallback"].includes(r.decision) ? r.decision : "kept";
    const runsDecided = finished.filter((r) => decidedAs(r) === decision);
    if (!runsDecided.length) continue;
    traces.push({
      type: "scatter",
      mode: "markers",
      name: decision === "fallback" ? "naive baseline (fallback)" : `challenger ${decision}`,
      x: runsDecided.map((r) => r.started_at),
      y: runsDecided.map((r) => accuracyOf(r.challenger_metrics)),
      marker: {
        size: 9,
        color: DECISION_COLOURS[decision],
        symbol: runsDecided.map((r) => (r.feature_set === "finbert" ? "square" : "circle")),
      },
      text: runsDecided.map(
        (r) =>
          `${plotText(pairLabel(r.feature_set, r.model_type))}: ` +
          plotText(r.decision_reason || r.decision || "")
      ),
      hovertemplate: "%{text}<br>challenger %{y:.1%}<extra></extra>",
    });
  }
  // Drawn last and hollow, so a challenger that scored the same shows inside it.
  traces.push({
    type: "scatter",
    mode: "markers",
    name: "champion",
    x: withChampion.map((r) => r.started_at),
    y: withChampion.map((r) => accuracyOf(r.champion_metrics)),
    marker: { symbol: "diamond-open", size: 16, color: "#334155", line: { width: 2 } },
    text: withChampion.map((r) => `champion ${plotText(r.champion_version)}`),
    hovertemplate: "%{text}<br>%{y:.1%}<extra></extra>",
  });
  const accuracies = finished.flatMap((r) => [
    accuracyOf(r.challenger_metrics),
    accuracyOf(r.champion_metrics),
  ]);
  const times = finished.map((r) => Date.parse(r.started_at));
  const pad = Math.max((Math.max(...times) - Math.min(...times)) * 0.08, 12 * HOUR_MS);
  const xRange = times.length
    ? [isoTime(Math.min(...times) - pad), isoTime(Math.max(...times) + pad)]
    : undefined;
  drawChart(
    "chart-runs",
    traces,
    layout({
      xaxis: { type: "date", range: xRange },
      yaxis: {
        tickformat: ".0%",
        title: { text: "accuracy" },
        range: paddedRange(accuracies, 0.06, 0, 1),
      },
    }),
    emptyState(
      "No retraining has finished yet: press ",
      el("b", null, "Run retraining"),
      " above, or let the scheduler trigger one."
    )
  );
}

const RUN_COLUMNS = [
  {
    key: "started",
    label: "Started",
    className: "nowrap",
    value: (r) => r.started_at,
    cell: (r) => shortTime(r.started_at),
  },
  {
    key: "model",
    label: "Model",
    value: (r) => pairKey(r.feature_set, r.model_type),
    cell: (r) => modelCell(r.feature_set, r.model_type),
  },
  {
    key: "trigger",
    label: "Trigger",
    value: (r) => r.trigger,
    cell: (r) => [r.trigger, clamped((r.reasons || []).join("; "))],
  },
  { key: "status", label: "Status", value: (r) => r.status, cell: (r) => pill(r.status) },
  {
    key: "decision",
    label: "Decision",
    value: (r) => r.decision,
    cell: (r) => (r.decision ? pill(r.decision) : "–"),
  },
  {
    key: "accuracy",
    label: "Challenger vs champion",
    num: true,
    value: (r) => accuracyOf(r.challenger_metrics),
    cell: (r) =>
      `${pct(accuracyOf(r.challenger_metrics))} vs ${pct(accuracyOf(r.champion_metrics))}`,
  },
  {
    key: "p",
    label: "McNemar p",
    num: true,
    value: (r) => (r.significance ? r.significance.p_value : null),
    cell: (r) => pValue(r.significance ? r.significance.p_value : null),
  },
  {
    key: "e",
    label: "Evidence",
    num: true,
    className: "nowrap",
    title:
      "the paired test the decision rests on: the challenger's wins on the discordant hours " +
      "against the wins the trial needed at that look (a fallback: e-value against the one " +
      "needed)",
    value: (r) => testMargin(decisionTest(r.evidence)),
    cell: (r) => {
      const test = decisionTest(r.evidence);
      if (!test) return "–";
      if (isEValueTest(test)) return `e ${eValue(test.e_value)} / ${eValue(test.threshold)}`;
      return `${count(test.wins)} / ${count(test.threshold)} wins`;
    },
  },
  {
    key: "duration",
    label: "Duration",
    num: true,
    value: (r) => r.duration_seconds,
    cell: (r) => seconds(r.duration_seconds),
  },
  { key: "reason", label: "Why", cell: (r) => clamped(r.error || r.decision_reason, "wide") },
];

function renderRuns(runs, history) {
  if (!history) {
    fill("retrain-runs", emptyState("The run history could not be loaded (see above)."));
    return;
  }
  if (!runs.length) {
    fill(
      "retrain-runs",
      emptyState(
        "No retraining runs yet: press ",
        el("b", null, "Run retraining"),
        " or run ",
        code("btcmlops demo"),
        "."
      )
    );
    return;
  }
  const rowClass = (r) => `run-row status-${r.status}`;
  fill("retrain-runs", table(RUN_COLUMNS, runs, { sortId: "runs", rowClass }));
}
