/* Charts: plotly.js with the page's layout. plotly.min.js is a classic script loaded before
 * the modules; it defines the global Plotly. */

import { FONT } from "./palette.js";
import { byId, emptyState } from "./dom.js";
import { isNumber } from "./format.js";

const PLOT_CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"],
};

export function layout(extra) {
  const axis = { gridcolor: "#eef1f5", linecolor: "#d0d5dd", zeroline: false, automargin: true };
  return {
    margin: { l: 56, r: 18, t: 8, b: 40 },
    font: { family: FONT, size: 12, color: "#1b2433" },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    hovermode: "closest",
    hoverlabel: { font: { family: FONT } },
    legend: { orientation: "h", x: 0, y: -0.16, font: { size: 11 } },
    ...extra,
    xaxis: { ...axis, ...(extra.xaxis || {}) },
    yaxis: { ...axis, ...(extra.yaxis || {}) },
  };
}

/** Draw traces into a chart box, or show `empty` when no trace has a point. */
export function drawChart(id, traces, chartLayout, empty) {
  const box = byId(id);
  const hasData = traces.some((trace) => (trace.x || trace.y || []).length > 0);
  if (!hasData) {
    if (box.classList.contains("js-plotly-plot")) Plotly.purge(box);
    box.replaceChildren(empty || emptyState("Nothing to draw yet."));
    return;
  }
  box.querySelectorAll(":scope > .empty").forEach((node) => node.remove());
  Plotly.react(box, traces, chartLayout, PLOT_CONFIG);
}

export function resizeCharts(section) {
  section.querySelectorAll(".js-plotly-plot").forEach((box) => Plotly.Plots.resize(box));
}

/** [min - pad, max + pad] of the finite values, clamped to [floor, ceiling]. */
export function paddedRange(values, pad, floor = -Infinity, ceiling = Infinity) {
  const finite = values.filter(isNumber);
  if (!finite.length) return undefined;
  const low = Math.max(floor, Math.min(...finite) - pad);
  return [low, Math.min(ceiling, Math.max(...finite) + pad)];
}
