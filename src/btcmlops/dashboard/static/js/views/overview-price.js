/* Overview: BTC's closes with each prediction marked by its outcome. */

import { HOUR_MS } from "../config.js";
import { OUTCOME_COLOURS } from "../palette.js";
import { byId, code, emptyState, plotText } from "../dom.js";
import { isNumber, isoTime, pairKey, pct, shortTime, timeKey } from "../format.js";
import { drawChart, layout } from "../charts.js";

export function renderPriceChart(priceRows, timeline, pair) {
  const traces = [];
  if (priceRows.length) {
    traces.push({
      type: "scatter",
      mode: "lines",
      name: "BTC close",
      x: priceRows.map((row) => row.ts),
      y: priceRows.map((row) => row.close),
      line: { color: "#334155", width: 1.4 },
      hovertemplate: "%{x|%Y-%m-%d %H:%M} UTC<br>close $%{y:,.0f}<extra></extra>",
    });
  }
  traces.push(...predictionMarkers(priceRows, (timeline && timeline.points) || []));
  let range;
  if (priceRows.length) {
    // The last week by default: a month of hourly markers would overlap.
    const end = Date.parse(priceRows[priceRows.length - 1].ts) + 2 * HOUR_MS;
    const start = Math.max(Date.parse(priceRows[0].ts), end - 7 * 24 * HOUR_MS);
    range = [isoTime(start), isoTime(end)];
  }
  const dayButton = (days) => ({
    count: days,
    label: `${days}d`,
    step: "day",
    stepmode: "backward",
  });
  drawChart(
    "chart-price",
    traces,
    layout({
      uirevision: pair ? pairKey(pair.feature_set, pair.model_type) : "none",
      xaxis: {
        type: "date",
        range,
        rangeselector: {
          buttons: [dayButton(1), dayButton(3), dayButton(7), { step: "all", label: "all" }],
          x: 0,
          y: 1.02,
          bgcolor: "#f1f5f9",
          activecolor: "#dbeafe",
        },
      },
      yaxis: {
        title: { text: "USD" },
        tickformat: "$,.0f",
        range: yRangeWithin(priceRows, range),
      },
      margin: { l: 70, r: 18, t: 34, b: 40 },
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.08 },
    }),
    emptyState(
      "No price bars yet: run ",
      code("btcmlops demo"),
      " or ",
      code("btcmlops ingest simulate"),
      "."
    )
  );
  followXRange(byId("chart-price"), priceRows);
}

/** One marker trace per outcome: ▲/▼ the predicted direction, at the close it was made at. */
function predictionMarkers(priceRows, points) {
  const closeAt = new Map(priceRows.map((row) => [timeKey(row.ts), row.close]));
  const groups = { correct: [], incorrect: [], pending: [] };
  for (const point of points) {
    const close = closeAt.get(timeKey(point.feature_hour));
    if (!isNumber(close)) continue;
    const outcome =
      point.correct === true ? "correct" : point.correct === false ? "incorrect" : "pending";
    groups[outcome].push({ point, close });
  }
  return Object.entries(groups)
    .filter(([, items]) => items.length)
    .map(([outcome, items]) => ({
      type: "scatter",
      mode: "markers",
      name: outcome,
      x: items.map((item) => item.point.feature_hour),
      y: items.map((item) => item.close),
      marker: {
        color: OUTCOME_COLOURS[outcome],
        size: 8,
        symbol: items.map((item) =>
          item.point.prediction === 1 ? "triangle-up" : "triangle-down"
        ),
        line: { color: "#ffffff", width: 0.5 },
      },
      text: items.map((item) => predictionHover(item.point)),
      hovertemplate: "%{text}<extra></extra>",
    }));
}

function predictionHover(point) {
  const directions = { 1: "up", 0: "down" };
  const verdict =
    point.correct === true ? "correct" : point.correct === false ? "incorrect" : "pending";
  return [
    `<b>${plotText(shortTime(point.target_hour))}</b> predicted ${directions[point.prediction]}` +
      ` (p up ${pct(point.probability_up)})`,
    `actual ${directions[point.actual_direction] || "not known yet"} · ${verdict}`,
    `model ${plotText(point.model_version)}`,
  ].join("<br>");
}

/** Closes inside an x range, padded: plotly scales y over all data, not over what shows. */
function yRangeWithin(priceRows, range) {
  const [start, end] = range ? range.map((v) => Date.parse(v)) : [-Infinity, Infinity];
  const shown = priceRows.filter((row) => {
    const t = Date.parse(row.ts);
    return t >= start && t <= end;
  });
  if (!shown.length) return undefined;
  const low = Math.min(...shown.map((row) => Math.min(row.low ?? row.close, row.close)));
  const high = Math.max(...shown.map((row) => Math.max(row.high ?? row.close, row.close)));
  const pad = Math.max((high - low) * 0.08, high * 0.002);
  return [low - pad, high + pad];
}

/** Keep the price axis fitted to the visible hours as the user zooms or picks a range. */
function followXRange(box, priceRows) {
  box.priceRows = priceRows;
  if (box.followsXRange || !box.on) return;
  box.followsXRange = true;
  box.on("plotly_relayout", (change) => {
    const keys = Object.keys(change);
    if (!keys.some((key) => key.startsWith("xaxis.range") || key === "xaxis.autorange")) return;
    const range = change["xaxis.autorange"] ? null : box.layout.xaxis.range;
    const y = yRangeWithin(box.priceRows, range);
    if (y) Plotly.relayout(box, { "yaxis.range": y });
  });
}
