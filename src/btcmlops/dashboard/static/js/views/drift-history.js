/* Drift: the severity of every check over the last 30 days. */

import { FEATURE_SET_COLOURS } from "../palette.js";
import { code, emptyState, plotText } from "../dom.js";
import { isNumber, pct, utc } from "../format.js";
import { drawChart, layout } from "../charts.js";

/** Severity word -> level, lowest 0, in the order the API serves (GET /drift/history). */
function severityLevels(histories) {
  const order = histories
    .map((history) => history && history.severity_order)
    .find(Array.isArray);
  return new Map((order || []).map((word, level) => [word, level]));
}

export function renderDriftHistory(featureSets, histories) {
  const levels = severityLevels(histories);
  const traces = [];
  const noData = { x: [], text: [] };
  featureSets.forEach((featureSet, index) => {
    const reports = ((histories[index] && histories[index].reports) || [])
      .slice()
      .sort((a, b) => (a.checked_at < b.checked_at ? -1 : 1));
    const byKind = new Map();
    for (const report of reports) {
      const level = levels.get(report.severity);
      if (level === undefined) {
        // "Not enough data" is a status, not a severity: drawn on a row of its own.
        noData.x.push(report.checked_at);
        noData.text.push(`${plotText(report.feature_set)} ${plotText(report.kind)}: ` +
          plotText(report.status));
        continue;
      }
      const kind =
        report.kind === "model" ? `model ${report.model_type || ""}`.trim() : report.kind;
      if (!byKind.has(kind)) byKind.set(kind, []);
      byKind.get(kind).push({ report, level });
    }
    const colour = FEATURE_SET_COLOURS[featureSet] || "#475467";
    for (const [kind, items] of byKind) {
      traces.push({
        type: "scatter",
        mode: "lines+markers",
        name: `${featureSet} ${kind}`,
        x: items.map((item) => item.report.checked_at),
        y: items.map((item) => item.level),
        line: {
          color: colour,
          shape: "hv",
          width: kind === "feature" ? 2.2 : 1.4,
          dash: kind === "feature" ? "solid" : kind === "summary" ? "dash" : "dot",
        },
        marker: { size: 6, color: colour },
        text: items.map((item) => driftHover(item.report)),
        hovertemplate: "%{text}<extra></extra>",
      });
    }
  });
  if (noData.x.length) {
    traces.push({
      type: "scatter",
      mode: "markers",
      name: "not enough data",
      x: noData.x,
      y: noData.x.map(() => -1),
      marker: { symbol: "circle-open", color: "#98a2b3", size: 7 },
      text: noData.text,
      hovertemplate: "%{x|%m-%d %H:%M}<br>%{text}<extra></extra>",
    });
  }
  const band = (y0, y1, fillcolor) => ({
    type: "rect",
    xref: "paper",
    x0: 0,
    x1: 1,
    y0,
    y1,
    fillcolor,
    line: { width: 0 },
    layer: "below",
  });
  const shaded = [
    ["medium", "rgba(245, 158, 11, 0.07)"],
    ["high", "rgba(220, 38, 38, 0.07)"],
  ].filter(([word]) => levels.has(word));
  drawChart(
    "chart-drift-history",
    traces,
    layout({
      uirevision: "drift-history",
      xaxis: { type: "date" },
      yaxis: {
        tickvals: [-1, ...levels.values()],
        ticktext: ["no data", ...levels.keys()],
        range: [-1.5, levels.size - 0.5],
        title: { text: "severity" },
      },
      shapes: shaded.map(([word, colour]) =>
        band(levels.get(word) - 0.5, levels.get(word) + 0.5, colour)
      ),
    }),
    emptyState(
      "No drift checks recorded yet: the scheduler runs them daily (",
      code("btcmlops demo"),
      " replays them)."
    )
  );
}

function driftHover(report) {
  const lines = [
    `<b>${plotText(utc(report.checked_at))}</b>`,
    `${plotText(report.kind)} check: ${plotText(report.severity)}`,
  ];
  if (isNumber(report.significant_drift_count)) {
    lines.push(`${report.significant_drift_count} of ${report.features_tested} features drifted`);
  }
  if (isNumber(report.accuracy_drop)) lines.push(`accuracy drop ${pct(report.accuracy_drop)}`);
  return lines.join("<br>");
}
