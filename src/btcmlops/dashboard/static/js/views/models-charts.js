/* Models: the champion timeline and the champion's feature importances. */

import { MONO } from "../palette.js";
import { state } from "../state.js";
import { code, emptyState, plotText } from "../dom.js";
import {
  isNumber,
  pairColour,
  pairKey,
  pairLabel,
  shortVersion,
  utc,
  withAlpha,
} from "../format.js";
import { baselineLabel, isBaseline } from "../model-cells.js";
import { drawChart, layout } from "../charts.js";
import { noModels, selectedPair } from "../pairs.js";

export function renderChampionTimeline(changes) {
  const byPair = new Map();
  for (const change of changes) {
    const key = pairKey(change.feature_set, change.model_type);
    if (!byPair.has(key)) byPair.set(key, []);
    byPair.get(key).push(change);
  }
  const symbols = {
    promote: "circle",
    deploy: "star",
    rollback: "triangle-left",
    auto_rollback: "x",
    fallback: "square",
  };
  const traces = [];
  for (const moves of byPair.values()) {
    const { feature_set: featureSet, model_type: modelType } = moves[0];
    const colour = pairColour(featureSet, modelType);
    const x = moves.map((c) => c.changed_at);
    const y = moves.map((c) => shortVersion(c.version, featureSet, modelType));
    // The step line runs on to now: the last champion is still serving.
    const stepX = state.serverNow > x[x.length - 1] ? [...x, state.serverNow] : x;
    const stepY = stepX.length > y.length ? [...y, y[y.length - 1]] : y;
    traces.push(
      {
        type: "scatter",
        mode: "lines",
        x: stepX,
        y: stepY,
        showlegend: false,
        hoverinfo: "skip",
        line: { color: withAlpha(colour, 0.5), shape: "hv", width: 2 },
      },
      {
        type: "scatter",
        mode: "markers",
        name: pairLabel(featureSet, modelType),
        x,
        y,
        marker: {
          color: colour,
          size: 11,
          symbol: moves.map((c) => symbols[c.action] || "circle"),
          line: { color: "#ffffff", width: 1 },
        },
        text: moves.map(championMoveHover),
        hovertemplate: "%{text}<extra></extra>",
      }
    );
  }
  drawChart(
    "chart-champions",
    traces,
    layout({
      xaxis: { type: "date" },
      yaxis: { type: "category", tickfont: { family: MONO, size: 11 } },
      margin: { l: 20, r: 18, t: 8, b: 40 },
    }),
    emptyState(
      "No champion has been promoted yet: ",
      code("btcmlops train --promote"),
      " or ",
      code("btcmlops demo"),
      "."
    )
  );
}

function championMoveHover(change) {
  return [
    `<b>${plotText(change.action)}</b> ${plotText(utc(change.changed_at))}`,
    plotText(change.version),
    `from ${plotText(change.previous_version || "nothing")}`,
    `by ${plotText(change.actor)}: ${plotText(change.reason || "no reason given")}`,
  ].join("<br>");
}

export function renderImportances(all) {
  const pair = selectedPair();
  const champion =
    pair &&
    all.find(
      (v) =>
        v.feature_set === pair.feature_set &&
        v.model_type === pair.model_type &&
        v.status === "champion"
    );
  const importances = ((champion && champion.metrics.feature_importances) || [])
    .filter((item) => isNumber(item.importance_mean))
    .sort((a, b) => b.importance_mean - a.importance_mean)
    .slice(0, 18)
    .reverse(); // plotly draws the first bar at the bottom
  const colour = pair ? pairColour(pair.feature_set, pair.model_type) : "#475467";
  const traces = importances.length
    ? [
        {
          type: "bar",
          orientation: "h",
          x: importances.map((item) => item.importance_mean),
          y: importances.map((item) => plotText(item.feature)),
          error_x: {
            type: "data",
            array: importances.map((item) => item.importance_std || 0),
            color: "#94a3b8",
            thickness: 1,
          },
          marker: { color: withAlpha(colour, 0.8) },
          hovertemplate: "%{y}: %{x:.4f}<extra></extra>",
        },
      ]
    : [];
  let empty = noModels();
  if (isBaseline(champion)) {
    empty = emptyState(
      `This champion is a declared ${baselineLabel(champion.baseline_rule)}: ` +
        "a naive rule that reads no features."
    );
  } else if (champion) empty = emptyState("This champion has no recorded feature importances.");
  else if (pair) {
    empty = emptyState(`${pairLabel(pair.feature_set, pair.model_type)} has no champion yet.`);
  }
  drawChart(
    "chart-importances",
    traces,
    layout({
      xaxis: {
        title: { text: "drop in ROC AUC when shuffled" },
        zeroline: true,
        zerolinecolor: "#cbd5e1",
      },
      margin: { l: 20, r: 18, t: 8, b: 44 },
      showlegend: false,
    }),
    empty
  );
}
