/* Overview: each champion's rolling accuracy against the naive baselines. */

import { byId, code, emptyState, plotText } from "../dom.js";
import { isNumber, pairColour, pairLabel, withAlpha } from "../format.js";
import { drawChart, layout } from "../charts.js";
import { championPairs, noModels } from "../pairs.js";

export function renderAccuracyChart(pairs, timelines) {
  const traces = [];
  const baselines = new Map(); // "kind:value" -> {kind, value, owners}
  let window = null;
  let firstX = null;
  let lastX = null;
  pairs.forEach((pair, index) => {
    const timeline = timelines[index];
    if (!timeline) return;
    window = timeline.window || window;
    const points = timeline.points || [];
    for (const point of points) {
      if (firstX === null || point.target_hour < firstX) firstX = point.target_hour;
      if (lastX === null || point.target_hour > lastX) lastX = point.target_hour;
    }
    traces.push(...accuracyTraces(pair, points));
    for (const [kind, value] of Object.entries(timeline.baselines || {})) {
      if (!isNumber(value)) continue;
      const key = `${kind}:${value.toFixed(4)}`;
      if (!baselines.has(key)) baselines.set(key, { kind, value, owners: [] });
      baselines.get(key).owners.push(pairLabel(pair.feature_set, pair.model_type));
    }
  });
  if (firstX !== null) traces.push(...baselineTraces([...baselines.values()], firstX, lastX));
  byId("accuracy-window-note").textContent = window
    ? `each point: the last ${window} resolved predictions; band: 95% interval`
    : "";
  const empty = championPairs().length
    ? emptyState(
        "No predictions with outcomes yet: run ",
        code("btcmlops demo"),
        ", or wait an hour for the first outcome."
      )
    : noModels();
  const coinFlip = {
    type: "line",
    xref: "paper",
    x0: 0,
    x1: 1,
    y0: 0.5,
    y1: 0.5,
    line: { color: "#cbd5e1", width: 1 },
  };
  drawChart(
    "chart-accuracy",
    traces,
    layout({
      uirevision: "accuracy",
      xaxis: { type: "date" },
      yaxis: { tickformat: ".0%", title: { text: "accuracy" } },
      shapes: [coinFlip],
      legend: { orientation: "v", x: 1.01, y: 1, font: { size: 11 }, tracegroupgap: 8 },
      margin: { l: 60, r: 18, t: 8, b: 40 },
    }),
    empty
  );
}

/** A pair's rolling accuracy, its 95% band and its label-free estimate. */
function accuracyTraces(pair, points) {
  const colour = pairColour(pair.feature_set, pair.model_type);
  const name = pairLabel(pair.feature_set, pair.model_type);
  const resolved = points.filter((p) => isNumber(p.rolling_accuracy));
  const banded = resolved.filter((p) => isNumber(p.rolling_low) && isNumber(p.rolling_high));
  const estimated = points.filter((p) => isNumber(p.estimated_accuracy));
  const hours = (list) => list.map((p) => p.target_hour);
  const traces = [];
  if (banded.length) {
    const edge = {
      type: "scatter",
      mode: "lines",
      line: { width: 0, color: colour },
      hoverinfo: "skip",
      showlegend: false,
      legendgroup: name,
      x: hours(banded),
    };
    traces.push(
      { ...edge, y: banded.map((p) => p.rolling_high) },
      // Filled down to the previous trace: the band between high and low.
      {
        ...edge,
        y: banded.map((p) => p.rolling_low),
        fill: "tonexty",
        fillcolor: withAlpha(colour, 0.14),
      }
    );
  }
  traces.push({
    type: "scatter",
    mode: "lines",
    name,
    legendgroup: name,
    x: hours(resolved),
    y: resolved.map((p) => p.rolling_accuracy),
    line: { color: colour, width: 2.2 },
    customdata: resolved.map((p) => [p.rolling_low, p.rolling_high]),
    hovertemplate:
      `${plotText(name)}<br>%{x|%m-%d %H:%M}: %{y:.1%} ` +
      "[%{customdata[0]:.1%}, %{customdata[1]:.1%}]<extra></extra>",
  });
  if (estimated.length) {
    traces.push({
      type: "scatter",
      mode: "lines",
      name: `${name}, label-free estimate`,
      legendgroup: name,
      x: hours(estimated),
      y: estimated.map((p) => p.estimated_accuracy),
      line: { color: colour, width: 1.4, dash: "dot" },
      hovertemplate:
        `${plotText(name)}: estimate from its own probabilities %{y:.1%}<extra></extra>`,
    });
  }
  return traces;
}

/** The baselines as flat lines; pairs that share a value share a line. */
function baselineTraces(baselines, firstX, lastX) {
  const names = { majority_class: "majority-class baseline", last_hour: "last-hour baseline" };
  const dashes = { majority_class: "dash", last_hour: "dashdot" };
  const perKind = new Map();
  for (const { kind } of baselines) perKind.set(kind, (perKind.get(kind) || 0) + 1);
  return baselines.map(({ kind, value, owners }) => {
    const label = names[kind] || kind;
    const name = perKind.get(kind) > 1 ? `${label} (${owners.join(", ")})` : label;
    return {
      type: "scatter",
      mode: "lines",
      name,
      x: [firstX, lastX],
      y: [value, value],
      line: { color: "#6b7280", width: 1.3, dash: dashes[kind] || "dot" },
      hovertemplate: `${plotText(name)}: %{y:.1%}<extra></extra>`,
    };
  });
}
