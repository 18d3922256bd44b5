/* Overview: the headline numbers, the models' accuracy table and the latency histogram. */

import { code, emptyState, fill, kpi, sub } from "../dom.js";
import {
  count,
  interval,
  isNumber,
  milliseconds,
  money,
  pairColour,
  pairKey,
  pairLabel,
  pct,
  shortTime,
  withAlpha,
} from "../format.js";
import { modelCell } from "../model-cells.js";
import { load } from "../api.js";
import { drawChart, layout } from "../charts.js";
import { table } from "../tables.js";
import { championPairs, noModels, selectedPair } from "../pairs.js";
import { renderPriceChart } from "./overview-price.js";
import { renderAccuracyChart } from "./overview-accuracy.js";

export async function renderOverview() {
  const pairs = championPairs();
  const pair = selectedPair();
  const ofPair = (p, extra) => ({
    feature_set: p.feature_set,
    model_type: p.model_type,
    ...extra,
  });
  const timeline = (p) => load("/predictions/timeline", ofPair(p, { days: 30, window: 48 }));
  const accuracy = (p) => load("/predictions/accuracy", ofPair(p, { days: 7 }));
  const [statistics, prices, recent, timelines, accuracies] = await Promise.all([
    load("/predictions/statistics"),
    load("/market/prices", { hours: 720 }),
    load("/predictions/recent", { limit: 500 }),
    Promise.all(pairs.map(timeline)),
    Promise.all(pairs.map(accuracy)),
  ]);
  const priceRows = (prices && prices.prices) || [];
  const selected = pairs.indexOf(pair);
  renderOverviewKpis(statistics && statistics.statistics, priceRows, recent);
  renderPriceChart(priceRows, selected >= 0 ? timelines[selected] : null, pair);
  renderAccuracyChart(pairs, timelines);
  renderModelSummary(pairs, timelines, accuracies);
  renderLatency(recent);
}

function percentile(sorted, q) {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

function latencySummary(recent) {
  const sorted = ((recent && recent.predictions) || [])
    .map((p) => p.response_time_ms)
    .filter(isNumber)
    .sort((a, b) => a - b);
  if (!sorted.length) return "no predictions yet";
  const [p50, p95] = [0.5, 0.95].map((q) => milliseconds(percentile(sorted, q)));
  return `p50 ${p50} · p95 ${p95}`;
}

function renderOverviewKpis(totals, priceRows, recent) {
  const cards = [];
  const last = priceRows[priceRows.length - 1];
  if (last) {
    const dayAgo = priceRows[priceRows.length - 25];
    const change = dayAgo ? last.close / dayAgo.close - 1 : null;
    const detail = isNumber(change)
      ? `${change >= 0 ? "+" : ""}${pct(change, 2)} in 24 h`
      : shortTime(last.ts);
    cards.push(kpi("BTC close", money(last.close), detail));
  }
  if (totals) {
    cards.push(
      kpi(
        "Predictions",
        count(totals.total_predictions),
        `vader ${count(totals.vader_predictions)} · finbert ${count(totals.finbert_predictions)}`
      ),
      kpi(
        "Realised accuracy",
        pct(totals.overall_accuracy),
        `${count(totals.correct_predictions)} of ${count(totals.predictions_with_outcomes)} ` +
          "with outcomes"
      ),
      kpi(
        "Pending outcomes",
        count(totals.pending_outcomes),
        `expired ${count(totals.expired_outcomes)}`
      ),
      kpi("Avg response", milliseconds(totals.avg_response_time_ms), latencySummary(recent))
    );
  }
  fill("overview-kpis", ...cards);
}

function renderModelSummary(pairs, timelines, accuracies) {
  if (!pairs.length) {
    fill("overview-models", noModels());
    return;
  }
  const rows = pairs.map((pair, index) => {
    const points = (timelines[index] && timelines[index].points) || [];
    const latest = [...points].reverse().find((p) => isNumber(p.estimated_accuracy));
    return {
      pair,
      stats: (accuracies[index] && accuracies[index].accuracy_stats) || {},
      estimate: latest ? latest.estimated_accuracy : null,
      baselines: (timelines[index] && timelines[index].baselines) || {},
    };
  });
  const columns = [
    {
      key: "model",
      label: "Model",
      cell: (r) => modelCell(r.pair.feature_set, r.pair.model_type),
    },
    {
      key: "accuracy",
      label: "Realised",
      num: true,
      className: "nowrap",
      title: "7-day realised accuracy with its 95% interval",
      cell: (r) => [pct(r.stats.accuracy), sub(interval(r.stats.accuracy_interval_95))],
    },
    {
      key: "outcomes",
      label: "Outcomes",
      num: true,
      cell: (r) => [
        count(r.stats.total_predictions),
        sub(`${count(r.stats.pending_predictions)} pending`),
      ],
    },
    {
      key: "estimate",
      label: "Estimate",
      num: true,
      title: "label-free: what the model's own probabilities say its accuracy is",
      cell: (r) => [pct(r.estimate), sub("label-free")],
    },
    {
      key: "baselines",
      label: "Baselines",
      num: true,
      className: "nowrap",
      title: "majority-class / last-hour baseline over the same hours",
      cell: (r) => [
        `${pct(r.baselines.majority_class)} / ${pct(r.baselines.last_hour)}`,
        sub("majority / last"),
      ],
    },
  ];
  fill("overview-models", table(columns, rows));
}

function renderLatency(recent) {
  const byPair = new Map();
  for (const p of (recent && recent.predictions) || []) {
    if (!isNumber(p.response_time_ms)) continue;
    const key = pairKey(p.feature_set, p.model_type);
    if (!byPair.has(key)) byPair.set(key, { pair: p, values: [] });
    byPair.get(key).values.push(p.response_time_ms);
  }
  const traces = [...byPair.values()].map(({ pair, values }) => ({
    type: "histogram",
    name: pairLabel(pair.feature_set, pair.model_type),
    x: values,
    marker: { color: withAlpha(pairColour(pair.feature_set, pair.model_type), 0.75) },
    nbinsx: 40,
    hovertemplate: "%{x} ms: %{y} predictions<extra></extra>",
  }));
  drawChart(
    "chart-latency",
    traces,
    layout({
      barmode: "overlay",
      xaxis: { title: { text: "response time, ms" } },
      yaxis: { title: { text: "predictions" } },
      showlegend: traces.length > 1,
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.15 },
      margin: { l: 60, r: 18, t: 18, b: 44 },
    }),
    emptyState("No predictions yet: run ", code("btcmlops demo"), ".")
  );
}
