/* Retraining: each shadow's margin to its bar, look by look, with the decisions. */

import {
  DECISION_COLOURS,
  DECISION_SYMBOLS,
  PREVIOUS_CHAMPION_COLOUR,
  SHADOW_COLOURS,
} from "../palette.js";
import { ROLE_WORDS } from "../words.js";
import { emptyState, plotText } from "../dom.js";
import { count, eFromLog, eValue, fixed, isNumber, shortVersion, utc } from "../format.js";
import { drawChart, layout, paddedRange } from "../charts.js";
import { decisionTest, lookWords, testMargin, testWords, trialLooks } from "../evidence.js";

/** "promotes when a challenger's wins reach the trial's boundary (α 0.05 over 31 looks)". */
export function promotionRuleWords(pair) {
  const looks = (pair.shadows || []).map(trialLooks).find(isNumber);
  const spent = `α ${pair.promotion_alpha}${isNumber(looks) ? ` over ${looks} looks` : ""}`;
  return `promotes when a challenger's wins reach the trial's boundary (${spent})`;
}

/** A path point in its shadow's words: "41 wins of 53 needed, look 7 of 31" or
 * "log e 1.2 of 3.0 (e-value 3.32 of 20)". */
function pathWords(shadow, point, look) {
  if (shadow.role === "previous_champion") {
    return (
      `log e ${fixed(point.statistic)} of ${fixed(point.bar)} ` +
      `(e-value ${eValue(eFromLog(point.statistic))} of ${eValue(eFromLog(point.bar))})`
    );
  }
  return (
    `${count(point.statistic)} wins of ${count(point.bar)} needed, ` +
    lookWords(look, trialLooks(shadow))
  );
}

export function renderShadowChart(id, pair) {
  const traces = [];
  const shadows = pair.shadows || [];
  const short = (version) => shortVersion(version, pair.feature_set, pair.model_type);
  let challengers = 0;
  for (const shadow of shadows) {
    const previous = shadow.role === "previous_champion";
    const colour = previous
      ? PREVIOUS_CHAMPION_COLOUR
      : SHADOW_COLOURS[challengers++ % SHADOW_COLOURS.length];
    // A challenger's path has one point per look of its trial, the first (at: null) its
    // offline comparison, drawn at "since"; the previous champion's one per live day.
    const points = (shadow.path || [])
      .map((point, look) => ({ ...point, look }))
      .filter((p) => isNumber(p.margin));
    const name = `${short(shadow.version)} · ${ROLE_WORDS[shadow.role] || shadow.role}`;
    traces.push({
      type: "scatter",
      mode: "lines+markers",
      name,
      x: points.map((p) => p.at || shadow.since),
      y: points.map((p) => p.margin),
      line: { color: colour, width: 2.2, dash: previous ? "dash" : "solid" },
      marker: {
        color: colour,
        size: points.map((p) => (p.at ? 6 : 9)),
        symbol: points.map((p) => (p.at ? "circle" : "diamond")),
      },
      customdata: points.map((p) => [
        count(p.hours),
        plotText(pathWords(shadow, p, p.look)),
        p.at ? (previous ? "live, end of the day" : "live, daily look") : "offline comparison",
      ]),
      hovertemplate:
        `${plotText(name)}<br>%{x|%Y-%m-%d %H:%M}: %{customdata[1]}` +
        "<br>margin %{y:+.2f} · %{customdata[0]} paired hours · %{customdata[2]}" +
        "<extra></extra>",
    });
  }
  const decided = (pair.decisions || [])
    .map((run) => ({ run, test: decisionTest(run.evidence) }))
    .map((item) => ({ ...item, margin: testMargin(item.test) }))
    .filter(({ margin }) => isNumber(margin));
  for (const decision of ["deployed", "kept", "fallback"]) {
    const items = decided.filter(({ run }) => run.decision === decision);
    if (!items.length) continue;
    traces.push({
      type: "scatter",
      mode: "markers",
      name: `decision: ${decision}`,
      x: items.map(({ run }) => run.started_at),
      y: items.map(({ margin }) => margin),
      marker: {
        color: DECISION_COLOURS[decision],
        symbol: DECISION_SYMBOLS[decision],
        size: decision === "kept" ? 9 : 12,
        line: { color: DECISION_COLOURS[decision], width: 1.5 },
      },
      text: items.map(({ run, test }) => decisionHover(run, test)),
      hovertemplate: "%{text}<extra></extra>",
    });
  }
  const values = [0, ...traces.flatMap((trace) => trace.y)].filter(isNumber);
  const span = Math.max(...values) - Math.min(...values);
  const bar = zeroLineWords(pair);
  drawChart(
    id,
    traces,
    layout({
      uirevision: id,
      xaxis: { type: "date" },
      yaxis: {
        title: { text: "margin to the bar" },
        zeroline: false,
        range: paddedRange(values, Math.max(0.6, span * 0.1)),
      },
      shapes: [
        {
          type: "line",
          xref: "paper",
          x0: 0,
          x1: 1,
          y0: 0,
          y1: 0,
          line: { color: "#16a34a", width: 1.5, dash: "dash" },
        },
      ],
      annotations: [
        {
          xref: "paper",
          x: 0,
          xanchor: "left",
          y: 0,
          yanchor: "bottom",
          text: plotText(bar),
          showarrow: false,
          font: { size: 11, color: "#15803d" },
        },
      ],
      legend: { orientation: "h", x: 0, y: -0.18, font: { size: 11 } },
      margin: { l: 56, r: 18, t: 10, b: 40 },
    }),
    emptyState(
      "Nothing in shadow and no decision with evidence yet: a kept challenger predicts in " +
        "shadow and its evidence grows here, day by day."
    )
  );
}

/** The one bar of the chart: every line is its statistic minus its own bar. */
function zeroLineWords(pair) {
  const roles = new Set((pair.shadows || []).map((s) => s.role));
  const words = [];
  if (!roles.size || [...roles].some((role) => role !== "previous_champion")) {
    words.push("promote (wins reach the trial's boundary)");
  }
  if (!roles.size || roles.has("previous_champion")) {
    words.push(`roll back (e-value ≥ ${eValue(1 / pair.rollback_alpha)})`);
  }
  return `${words.join(" / ")} at 0`;
}

function decisionHover(run, test) {
  return [
    `<b>${plotText(run.decision)}</b> ${plotText(utc(run.started_at))} ` +
      `(${plotText(run.trigger)})`,
    plotText(run.challenger_version || ""),
    `${plotText(testWords(test))} · ${count(test.wins)}:${count(test.losses)} hours right alone`,
    `${count((run.evidence || {}).hours)} paired hours`,
  ].join("<br>");
}
