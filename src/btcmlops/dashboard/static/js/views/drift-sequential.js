/* Drift: each feature set's hourly sequential detector, its evidence against the threshold. */

import { FEATURE_SET_COLOURS } from "../palette.js";
import { byId, el, emptyState, plotText } from "../dom.js";
import { fixed, isNumber, shortTime, utc } from "../format.js";
import { load } from "../api.js";
import { drawChart, layout, paddedRange } from "../charts.js";

const ALARM_COLOUR = "#dc2626";
const CHANGE_COLOUR = "#d97706";
const FIT_COLOUR = "#98a2b3";

export async function renderSequential(featureSets) {
  const box = byId("drift-sequential");
  const answers = await Promise.all(
    featureSets.map((fs) => load("/drift/sequential", { feature_set: fs, days: 30 }))
  );
  for (const node of [...box.children]) {
    if (!featureSets.includes(node.dataset.featureSet)) node.remove();
  }
  featureSets.forEach((featureSet, index) => {
    const block = sequentialPanel(box, featureSet);
    if (box.children[index] !== block) box.insertBefore(block, box.children[index] || null);
    block.querySelector(".sequential-state").textContent = stateLine(answers[index]);
    drawSequential(`chart-sequential-${featureSet}`, featureSet, answers[index]);
  });
}

function sequentialPanel(box, featureSet) {
  const existing = [...box.children].find((node) => node.dataset.featureSet === featureSet);
  if (existing) return existing;
  return el(
    "div",
    { class: "panel", "data-feature-set": featureSet },
    el(
      "div",
      { class: "panel-head" },
      el(
        "h2",
        null,
        "Hourly sequential detector ",
        el("span", { class: "feature-set-label" }, `· ${featureSet}`)
      ),
      el("span", { class: "legend-note" }, "evidence as a share of its threshold, last 30 days")
    ),
    el("p", { class: "sequential-state" }),
    el("div", { id: `chart-sequential-${featureSet}`, class: "chart" })
  );
}

/** "quiet, 0.42 of threshold" / "alarm since …, change estimated …" / "not fitted: …". */
function stateLine(answer) {
  if (!answer) return "The detector could not be loaded (see above).";
  if (answer.status !== "fitted") return `not fitted: ${answer.reason || "no reason given"}`;
  if (answer.alarm) {
    const change = answer.change_at ? `, change estimated ${utc(answer.change_at)}` : "";
    return `alarm since ${utc(answer.alarm_at)}${change}`;
  }
  return `quiet, ${fixed(answer.statistic, 2)} of threshold`;
}

function verticalLine(at, colour, dash) {
  return {
    type: "line",
    xref: "x",
    yref: "paper",
    x0: at,
    x1: at,
    y0: 0,
    y1: 1,
    line: { color: colour, width: 1.5, dash },
  };
}

function lineLabel(at, text, colour, yanchor) {
  return {
    xref: "x",
    yref: "paper",
    x: at,
    y: yanchor === "top" ? 1 : 0.82,
    xanchor: "left",
    yanchor: "top",
    text: plotText(text),
    showarrow: false,
    font: { size: 11, color: colour },
  };
}

function drawSequential(id, featureSet, answer) {
  const points = (answer && answer.points) || [];
  const colour = FEATURE_SET_COLOURS[featureSet] || "#475467";
  const alarmed = points.filter((p) => p.alarm);
  const traces = [
    {
      type: "scatter",
      mode: "lines",
      name: "evidence",
      x: points.map((p) => p.hour),
      y: points.map((p) => p.statistic),
      line: { color: colour, width: 1.8 },
      hovertemplate: "%{x|%Y-%m-%d %H:%M}: %{y:.2f} of the threshold<extra></extra>",
    },
  ];
  if (alarmed.length) {
    traces.push({
      type: "scatter",
      mode: "markers",
      name: "in alarm",
      x: alarmed.map((p) => p.hour),
      y: alarmed.map((p) => p.statistic),
      marker: { color: ALARM_COLOUR, size: 4 },
      hovertemplate: "%{x|%Y-%m-%d %H:%M}: %{y:.2f}, in alarm<extra></extra>",
    });
  }
  const shapes = [
    {
      type: "line",
      xref: "paper",
      x0: 0,
      x1: 1,
      y0: 1,
      y1: 1,
      line: { color: ALARM_COLOUR, width: 1.5, dash: "dash" },
    },
  ];
  const annotations = [
    {
      xref: "paper",
      x: 0,
      xanchor: "left",
      y: 1,
      yanchor: "bottom",
      text: "threshold",
      showarrow: false,
      font: { size: 11, color: ALARM_COLOUR },
    },
  ];
  const first = points.length ? points[0].hour : null;
  const marks = [
    [answer && answer.fitted_at, "fitted", FIT_COLOUR, "dot", "top"],
    [answer && answer.change_at, "change (estimated)", CHANGE_COLOUR, "dash", "low"],
    [answer && answer.alarm_at, "alarm", ALARM_COLOUR, "solid", "top"],
  ];
  for (const [at, words, markColour, dash, where] of marks) {
    if (!at || !first || at < first) continue; // before the drawn days
    shapes.push(verticalLine(at, markColour, dash));
    annotations.push(lineLabel(at, `${words} ${shortTime(at)}`, markColour, where));
  }
  const values = [0, 1, ...points.map((p) => p.statistic)].filter(isNumber);
  drawChart(
    id,
    traces,
    layout({
      uirevision: id,
      xaxis: { type: "date" },
      yaxis: { title: { text: "share of threshold" }, range: paddedRange(values, 0.1, 0) },
      shapes,
      annotations,
      showlegend: false,
      margin: { l: 56, r: 18, t: 10, b: 32 },
    }),
    emptyState(
      answer && answer.status === "fitted"
        ? "Fitted; no feature row since: the hourly job feeds it one every hour."
        : stateLine(answer)
    )
  );
}
