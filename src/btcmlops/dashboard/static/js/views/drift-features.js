/* Drift: the per-feature table and the chosen feature's reference and current distributions. */

import { state } from "../state.js";
import { byId, code, el, emptyState, fill, pill, plotText, sub } from "../dom.js";
import { count, isNumber, num, pValue, pairColour, utc, withAlpha } from "../format.js";
import { renderBanner } from "../banner.js";
import { load } from "../api.js";
import { drawChart, layout } from "../charts.js";
import { table } from "../tables.js";
import { selectedPair } from "../pairs.js";

const DRIFT_COLUMNS = [
  {
    key: "feature",
    label: "Feature",
    value: (r) => r.feature,
    firstDirection: "ascending",
    cell: (r) => [r.feature, sub(`mean ${num(r.reference_mean)} → ${num(r.current_mean)}`)],
  },
  { key: "psi", label: "PSI", num: true, value: (r) => r.psi, cell: (r) => num(r.psi) },
  {
    key: "psi_expected",
    label: "Noise level",
    num: true,
    title: "PSI expected with no drift at these sample sizes",
    value: (r) => r.psi_expected,
    cell: (r) => num(r.psi_expected),
  },
  {
    key: "psi_excess",
    label: "PSI above noise",
    num: true,
    value: (r) => psiAboveNoise(r),
    cell: (r) => num(psiAboveNoise(r)),
  },
  {
    key: "ks",
    label: "KS statistic",
    num: true,
    value: (r) => r.ks_statistic,
    cell: (r) => num(r.ks_statistic),
  },
  {
    key: "p_adjusted",
    label: "Adjusted p",
    num: true,
    title: "KS p-value after Benjamini–Hochberg across features",
    value: (r) => r.ks_pvalue_adjusted,
    cell: (r) => markedPValue(r.ks_pvalue_adjusted_exact, r.ks_pvalue_adjusted),
    firstDirection: "ascending",
  },
  {
    key: "verdict",
    label: "Verdict",
    value: (r) => (r.drift_detected ? 1 : 0),
    cell: (r) => (r.drift_detected ? pill("drift") : pill("stable", "good")),
  },
];

const BOUND_TITLE =
  "A certified upper bound on the p-value: it is computed exactly only where the verdict " +
  "needs it, and the verdict is the one the exact value gives.";

/** A p-value, "≤ …" where its flag says it is a bound. A row stored before the flags
 * existed lacks them and is shown unmarked, as it was then. */
function markedPValue(exact, value) {
  if (exact !== false || !isNumber(value)) return pValue(value);
  return el("span", { title: BOUND_TITLE }, `≤ ${pValue(value)}`);
}

function psiAboveNoise(result) {
  return isNumber(result.psi_noise_corrected) ? result.psi_noise_corrected : result.psi_excess;
}

export function renderDriftTable(analysis, source) {
  const note = byId("drift-table-note");
  note.textContent = "";
  if (!analysis) {
    fill("drift-table", emptyState(`The ${source} could not be loaded (see above).`));
    return;
  }
  if (analysis.status !== "success") {
    fill(
      "drift-table",
      emptyState(
        `Not enough data for a drift check: ${count(analysis.reference_samples)} reference ` +
          `and ${count(analysis.current_samples)} current rows. ${analysis.message || ""} Run `,
        code("btcmlops demo"),
        " or wait for more hours."
      )
    );
    return;
  }
  note.textContent =
    `${source} of ${utc(analysis.timestamp)} · ${analysis.reference_period_days} d vs ` +
    `${analysis.current_period_days} d · most drifted first`;
  const rows = (analysis.drift_results || []).filter((r) => r.tested !== false);
  fill(
    "drift-table",
    table(DRIFT_COLUMNS, rows, {
      sortId: "drift-table",
      rowClass: (r) => (r.drift_detected ? "drifted" : null),
      onRowClick: (r) => chooseDriftFeature(r.feature),
    })
  );
}

export function chooseDriftFeature(feature) {
  state.driftFeature = feature;
  byId("drift-feature-select").value = feature;
  const pair = selectedPair();
  if (pair) renderDistribution(pair).then(renderBanner);
}

export function renderFeaturePicker(tested) {
  const options = tested.map((r) =>
    el("option", { value: r.feature }, r.drift_detected ? `${r.feature} (drift)` : r.feature)
  );
  if (!options.length) options.push(el("option", { value: "" }, "no features"));
  const select = byId("drift-feature-select");
  select.replaceChildren(...options);
  select.value = state.driftFeature || "";
}

/** Bar centres and widths from bin edges; an open outer edge (null) takes its neighbour's. */
function bins(edges, binCount) {
  const centres = [];
  const widths = [];
  for (let i = 0; i < binCount; i += 1) {
    let low = edges[i];
    let high = edges[i + 1];
    const inner = isNumber(low) && isNumber(high) ? high - low : null;
    const neighbour = isNumber(edges[i + 2]) && isNumber(high) ? edges[i + 2] - high
      : isNumber(edges[i - 1]) && isNumber(low) ? low - edges[i - 1] : 1;
    if (!isNumber(low)) low = high - neighbour;
    if (!isNumber(high)) high = low + neighbour;
    centres.push((low + high) / 2);
    widths.push((inner ?? neighbour) * 0.96);
  }
  return { centres, widths };
}

export async function renderDistribution(pair) {
  const feature = state.driftFeature;
  if (!feature) {
    drawChart("chart-distribution", [], {}, emptyState("Choose a feature once a check has run."));
    return;
  }
  // The windows have the shown check's lengths, ending now.
  const result = await load("/drift/distribution", {
    feature_set: pair.feature_set,
    feature,
    ...state.driftWindows,
  });
  if (!result || state.driftFeature !== feature) return; // a newer choice is on its way
  const reference = result.reference_share || [];
  const current = result.current_share || [];
  const { centres, widths } = bins(result.edges || [], reference.length);
  const colour = pairColour(pair.feature_set, pair.model_type);
  const bars = (name, shares, marker) => ({
    type: "bar",
    name,
    x: centres,
    y: shares,
    width: widths,
    marker,
    hovertemplate: `%{x:.4g}: %{y:.1%} of ${name.split(" ")[0]}<extra></extra>`,
  });
  drawChart(
    "chart-distribution",
    [
      bars(`reference (${count(result.reference_samples)} rows)`, reference, {
        color: "rgba(100, 116, 139, 0.55)",
      }),
      bars(`current (${count(result.current_samples)} rows)`, current, {
        color: withAlpha(colour, 0.55),
        line: { color: colour, width: 1 },
      }),
    ],
    layout({
      barmode: "overlay",
      bargap: 0,
      xaxis: { title: { text: plotText(result.feature || feature) } },
      yaxis: { tickformat: ".0%", title: { text: "share of rows" } },
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.12 },
      margin: { l: 60, r: 18, t: 24, b: 44 },
    }),
    emptyState("No distribution for this feature.")
  );
}
