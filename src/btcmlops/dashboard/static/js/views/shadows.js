/* Retraining: one panel per pair with its shadow evidence, its shadows and its decisions. */

import { RULE_WORDS } from "../words.js";
import { byId, clamped, code, el, emptyState, pill, sub } from "../dom.js";
import {
  count,
  eValue,
  isNumber,
  pairKey,
  pairLabel,
  pct,
  shortTime,
  shortVersion,
} from "../format.js";
import { baselineLabel, kindTag, rolePill } from "../model-cells.js";
import { table } from "../tables.js";
import {
  accuracyOf,
  conditionShort,
  conditionWords,
  decisionTest,
  isEValueTest,
  lookWords,
  SHADOW_EVIDENCE_COLUMN,
  shadowVerdict,
} from "../evidence.js";
import { promotionRuleWords, renderShadowChart } from "./shadow-chart.js";

function shadowColumns(report, kinds) {
  const short = (version) => shortVersion(version, report.feature_set, report.model_type);
  return [
    {
      key: "version",
      label: "Version",
      className: "version",
      cell: (s) => [
        el("span", { class: "shadow-version", title: s.version }, short(s.version)),
        kindTag(kinds.get(s.version)),
      ],
    },
    { key: "role", label: "Role", cell: (s) => rolePill(s.role) },
    { key: "since", label: "Since", className: "nowrap", cell: (s) => shortTime(s.since) },
    {
      key: "hours",
      label: "Paired hours",
      num: true,
      title: "hours both it and the champion answered: the offline comparison, then live",
      cell: (s) => [
        count((s.offline_hours || 0) + (s.live_hours || 0)),
        sub(`${count(s.offline_hours)} offline + ${count(s.live_hours)} live`),
      ],
    },
    SHADOW_EVIDENCE_COLUMN,
    { key: "verdict", label: "Verdict", cell: (s) => shadowVerdict(s) },
  ];
}

function decisionAccuracy(run, side) {
  const evidence = run.evidence || {};
  const own = evidence[`${side}_accuracy`];
  return isNumber(own) ? own : accuracyOf(run[`${side}_metrics`]);
}

function decisionWhy(run) {
  const evidence = run.evidence || {};
  if (run.decision === "fallback" || evidence.baseline) {
    const rule = RULE_WORDS[evidence.baseline] || evidence.baseline;
    return [
      `the champion was significantly worse than "${rule}"`,
      clamped(run.decision_reason, "wide"),
    ];
  }
  const failed = evidence.failed || [];
  if (failed.length) {
    return el(
      "span",
      {
        class: "failed-conditions",
        title: failed.map((name) => conditionWords(name, evidence)).join("\n"),
      },
      failed.map((name) => el("span", { class: "condition" }, conditionShort(name, evidence)))
    );
  }
  if (evidence.promote) return el("span", { class: "muted" }, "every condition held");
  return clamped(run.decision_reason, "wide");
}

const DECISION_COLUMNS = [
  {
    key: "time",
    label: "Time",
    className: "nowrap",
    cell: (r) => shortTime(r.started_at),
  },
  {
    key: "trigger",
    label: "Trigger",
    cell: (r) => [
      r.trigger,
      el(
        "span",
        { class: "sub mono", title: r.challenger_version || null },
        shortVersion(r.challenger_version, r.feature_set, r.model_type)
      ),
    ],
  },
  { key: "decision", label: "Decision", cell: (r) => pill(r.decision || r.status) },
  {
    key: "hours",
    label: "Paired hours",
    num: true,
    cell: (r) => {
      const evidence = r.evidence || {};
      const split = isNumber(evidence.live_hours)
        ? `${count(evidence.offline_hours)} offline + ${count(evidence.live_hours)} live`
        : "";
      return [count(evidence.hours), sub(split)];
    },
  },
  {
    key: "discordant",
    label: "Wins:losses",
    num: true,
    title: "discordant hours: only the challenger right : only the champion right",
    cell: (r) => {
      const test = decisionTest(r.evidence);
      return test ? `${count(test.wins)}:${count(test.losses)}` : "–";
    },
  },
  {
    key: "e",
    label: "Evidence",
    num: true,
    className: "nowrap",
    title:
      "the trial: wins needed at that look; a fallback's rule: its e-value against the one " +
      "needed",
    cell: (r) => {
      const test = decisionTest(r.evidence);
      if (!test) return "–";
      const verdict = test.rejects ? "significant" : test.over ? "trial over" : "not significant";
      return [
        isEValueTest(test)
          ? `e-value ${eValue(test.e_value)} of ${eValue(test.threshold)}`
          : `needs ${count(test.threshold)} (${lookWords(test.look, test.trial_looks)})`,
        sub(verdict),
      ];
    },
  },
  {
    key: "challenger",
    label: "Challenger",
    num: true,
    title: "accuracy on the paired hours (for a fallback: the naive baseline's)",
    cell: (r) => [
      pct(decisionAccuracy(r, "challenger")),
      r.decision === "fallback" ? sub("baseline") : null,
    ],
  },
  {
    key: "champion",
    label: "Champion",
    num: true,
    cell: (r) => pct(decisionAccuracy(r, "champion")),
  },
  {
    key: "majority",
    label: "Majority",
    num: true,
    title: "always the majority direction of those hours",
    cell: (r) => pct((r.evidence || {}).majority_accuracy),
  },
  {
    key: "last",
    label: "Last hour",
    num: true,
    title: "the same direction as the hour before",
    cell: (r) => pct((r.evidence || {}).last_hour_accuracy),
  },
  { key: "why", label: "Failed conditions", cell: (r) => decisionWhy(r) },
];

/** One panel per pair: the evidence chart, the shadow table and the decision history.
 * Panels are kept across refreshes so their charts keep their zoom. */
export function renderShadowEvidence(report, kinds) {
  const box = byId("retrain-shadows");
  const pairs = report ? report.pairs || [] : [];
  const keys = pairs.map((p) => pairKey(p.feature_set, p.model_type));
  for (const child of [...box.children]) {
    if (!keys.includes(child.dataset.pair)) {
      child.querySelectorAll(".js-plotly-plot").forEach((chart) => Plotly.purge(chart));
      child.remove();
    }
  }
  if (!pairs.length) {
    const why = report
      ? emptyState(
          "No champion yet, so no shadow models: ",
          code("btcmlops demo"),
          " shows them."
        )
      : emptyState("The shadow models could not be loaded (see above).");
    box.append(
      el(
        "div",
        { class: "panel", "data-pair": "" },
        el("div", { class: "panel-head" }, el("h2", null, "Shadow models")),
        why
      )
    );
    return;
  }
  pairs.forEach((pair, index) => {
    const block = shadowPanel(box, pair);
    if (box.children[index] !== block) box.insertBefore(block, box.children[index] || null);
    renderShadowPanel(block, pair, kinds);
  });
}

function shadowPanel(box, pair) {
  const key = pairKey(pair.feature_set, pair.model_type);
  const existing = [...box.children].find((node) => node.dataset.pair === key);
  if (existing) return existing;
  const slug = key.replace(/[^A-Za-z0-9_]/g, "-");
  return el(
    "div",
    { class: "panel shadow-pair", "data-pair": key },
    el(
      "div",
      { class: "panel-head" },
      el(
        "h2",
        null,
        "Shadow evidence ",
        el(
          "span",
          { class: "shadow-pair-label" },
          `· ${pairLabel(pair.feature_set, pair.model_type)}`
        )
      ),
      el("span", { class: "legend-note shadow-champion" })
    ),
    el("div", { id: `chart-shadows-${slug}`, class: "chart shadow-chart" }),
    el(
      "div",
      { class: "panel-head" },
      el("h2", null, "Shadow models"),
      el("span", { class: "legend-note" }, "predict every hour beside the champion; never served")
    ),
    el("div", { class: "table-wrap shadow-table" }),
    el(
      "div",
      { class: "panel-head" },
      el("h2", null, "Decisions and their evidence"),
      el("span", { class: "legend-note" }, "newest first; accuracies on the same paired hours")
    ),
    el("div", { class: "table-wrap scroll decision-table" })
  );
}

function renderShadowPanel(block, pair, kinds) {
  const champion = pair.champion;
  const note = block.querySelector(".shadow-champion");
  note.replaceChildren(
    champion
      ? `champion ${shortVersion(champion.version, pair.feature_set, pair.model_type)}`
      : "no champion",
    champion && champion.kind === "baseline" ? ` (${baselineLabel(champion.baseline_rule)})` : "",
    ` · ${promotionRuleWords(pair)}, rolls back at e ≥ ${eValue(1 / pair.rollback_alpha)}`
  );
  const chart = block.querySelector(".shadow-chart");
  renderShadowChart(chart.id, pair);
  const shadows = pair.shadows || [];
  block
    .querySelector(".shadow-table")
    .replaceChildren(
      shadows.length
        ? table(shadowColumns(pair, kinds), shadows)
        : emptyState(
            "No model in shadow: a retraining whose challenger is kept, or a new champion's " +
              "predecessor, predicts here beside the champion."
          )
    );
  const decisions = pair.decisions || [];
  block
    .querySelector(".decision-table")
    .replaceChildren(
      decisions.length
        ? table(DECISION_COLUMNS, decisions)
        : emptyState("No decision with recorded evidence for this model yet.")
    );
}
