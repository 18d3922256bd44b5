/* A shadow's and a decision's statistical evidence in words: the trial, e-values, failed
 * conditions. Shared by the Models and Retraining views. */

import { el, pill, sub } from "./dom.js";
import { count, eFromLog, eValue, fixed, isNumber, num, pct } from "./format.js";

export function accuracyOf(metrics) {
  if (!metrics) return null;
  if (isNumber(metrics.accuracy)) return metrics.accuracy;
  return isNumber(metrics.test_accuracy) ? metrics.test_accuracy : null;
}

/** The sequential test a decision rests on: its own, or for a fallback the chosen rule's. */
export function decisionTest(evidence) {
  if (!evidence) return null;
  if (evidence.test) return evidence.test;
  const tests = evidence.tests || {};
  return (evidence.baseline && tests[evidence.baseline]) || null;
}

/** A mixture e-value test (rollback, fallback, old stored runs) rather than the trial. */
export const isEValueTest = (test) => Boolean(test) && isNumber(test.e_value);

/** "look 7 of 31" from a 0-based look; "look 7" when the trial's length is unknown. */
export function lookWords(look, looks) {
  const at = `look ${isNumber(look) ? count(look + 1) : "–"}`;
  return isNumber(looks) ? `${at} of ${count(looks)}` : at;
}

/** "41 wins of 53 needed (look 7 of 31)" for the trial, "e-value 2.3 of 20" otherwise. */
export function testWords(test) {
  if (!test) return "–";
  if (isEValueTest(test)) return `e-value ${eValue(test.e_value)} of ${eValue(test.threshold)}`;
  return (
    `${count(test.wins)} wins of ${count(test.threshold)} needed ` +
    `(${lookWords(test.look, test.trial_looks)})`
  );
}

/** A test on the evidence chart's scale: wins - wins needed, or ln e - ln threshold. */
export function testMargin(test) {
  if (!test) return null;
  if (isEValueTest(test)) {
    const ok = test.e_value > 0 && isNumber(test.threshold) && test.threshold > 0;
    return ok ? Math.log(test.e_value) - Math.log(test.threshold) : null;
  }
  return isNumber(test.wins) && isNumber(test.threshold) ? test.wins - test.threshold : null;
}

/** A failed promotion condition in words, with the numbers it was judged on. */
export function conditionWords(name, evidence) {
  const test = evidence.test || {};
  const alone = `(${count(test.wins)}:${count(test.losses)} hours right alone)`;
  const words = {
    sequential_test: () =>
      isEValueTest(test)
        ? "the paired test has not yet shown it better than the champion: e-value " +
          `${eValue(test.e_value)} of ${eValue(test.threshold)} needed ${alone}`
        : "the paired trial has not yet shown it better than the champion: " +
          `${count(test.wins)} wins of ${count(test.threshold)} needed at ` +
          `${lookWords(test.look, test.trial_looks)} ${alone}` +
          (test.over ? "; its trial is over" : ""),
    beats_majority: () =>
      `does not beat the majority class: ${pct(evidence.challenger_accuracy)} vs ` +
      pct(evidence.majority_accuracy),
    beats_last_hour: () =>
      `does not beat "same direction as the last hour": ${pct(evidence.challenger_accuracy)} ` +
      `vs ${pct(evidence.last_hour_accuracy)}`,
    beats_base_rate_log_loss: () =>
      `log loss ${num(evidence.challenger_log_loss, 4)} not below the base rate's ` +
      num(evidence.base_rate_log_loss, 4),
    not_degenerate: () =>
      `degenerate: one class on ${pct(evidence.one_class_share, 0)} of hours (95% at most)`,
  };
  return words[name] ? words[name]() : name.replace(/_/g, " ");
}

/** A failed condition in a few words, for a table cell (the sentence is its tooltip). */
export function conditionShort(name, evidence) {
  const test = evidence.test || {};
  const words = {
    sequential_test: isEValueTest(test)
      ? "not significant"
      : `${count(test.wins)} of ${count(test.threshold)} wins`,
    beats_majority: "≤ majority class",
    beats_last_hour: "≤ last hour",
    beats_base_rate_log_loss: "log loss ≥ base rate",
    not_degenerate: `one class ${pct(evidence.one_class_share, 0)}`,
  };
  return words[name] || name.replace(/_/g, " ");
}

function conditionList(evidence) {
  const failed = evidence.failed || [];
  return el(
    "ul",
    { class: "conditions" },
    failed.map((name) => el("li", null, conditionWords(name, evidence)))
  );
}

/** The trial's length, from the shadow's current look (the server sends it there). */
export const trialLooks = (shadow) => ((shadow.decision || {}).test || {}).trial_looks;

/** A shadow's statistic against its bar in its own words: a challenger's wins against the
 * trial's boundary at this look, the previous champion's e-value against the rollback's. */
function shadowEvidenceWords(shadow) {
  if (shadow.role === "previous_champion") {
    return `e-value ${eValue(eFromLog(shadow.statistic))} of ${eValue(eFromLog(shadow.bar))}`;
  }
  if (shadow.trial_over) return "trial over";
  const test = (shadow.decision || {}).test || {};
  const look = isNumber(test.look) ? test.look : (shadow.path || []).length - 1;
  return (
    `${count(shadow.statistic)} wins of ${count(shadow.bar)} needed ` +
    `(${lookWords(look, trialLooks(shadow))})`
  );
}

/** The evidence in words and a bar filled by how far the statistic has come to its bar. */
// The shadows' evidence column, the same in the Models and Retraining views' tables.
export const SHADOW_EVIDENCE_COLUMN = {
  key: "evidence",
  label: "Evidence",
  num: true,
  className: "nowrap",
  title:
    "a challenger: its wins on the discordant hours against the wins the trial needs at " +
    "this look; the previous champion: its rollback e-value against the one needed",
  cell: (s) => shadowEvidenceCell(s),
};

export function shadowEvidenceCell(shadow) {
  const { statistic, bar, margin } = shadow;
  const share =
    isNumber(statistic) && isNumber(bar) && bar > 0
      ? Math.min(1, Math.max(0, statistic / bar))
      : 0;
  const reached = isNumber(margin) && margin >= 0;
  const test = (shadow.decision || {}).test || {};
  // The trial puts its boundary past the discordant hours when none fits the level yet.
  const unreachable =
    !shadow.trial_over && isNumber(test.discordant) && isNumber(bar) && bar > test.discordant;
  return [
    shadowEvidenceWords(shadow),
    shadow.trial_over ? sub(`${count(statistic)} wins of ${count(bar)} at its last look`) : null,
    unreachable ? sub(`out of reach: ${count(test.discordant)} discordant hours so far`) : null,
    el(
      "span",
      {
        class: `evidence-bar${reached ? " reached" : ""}`,
        title:
          `${shadow.scale || "statistic"}: ${fixed(statistic, 2)} of ${fixed(bar, 2)}` +
          (isNumber(test.discordant) ? ` · ${count(test.discordant)} discordant hours` : ""),
      },
      el("span", { style: { width: `${(share * 100).toFixed(1)}%` } })
    ),
  ];
}

export function shadowVerdict(shadow) {
  if (shadow.role === "previous_champion") {
    const reached = isNumber(shadow.margin) && shadow.margin >= 0;
    return el(
      "div",
      { class: "check" },
      reached ? pill("would roll back", "high") : pill("champion holds", "good"),
      sub("rollback test: is the previous champion better than the current one?")
    );
  }
  const decision = shadow.decision;
  if (!decision) return "–";
  if (decision.promote) {
    return el(
      "div",
      { class: "check" },
      pill("meets the rule", "good"),
      sub("promoted at the next daily review")
    );
  }
  return el("div", { class: "check" }, pill("kept in shadow", "kept"), conditionList(decision));
}
