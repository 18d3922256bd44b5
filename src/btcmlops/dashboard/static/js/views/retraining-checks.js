/* Retraining: the policy's checks for the chosen pair and its latest decision. */

import { byId, code, el, emptyState, fact, fill, pill, sub } from "../dom.js";
import { count, isNumber, num, pValue, pct, shortTime, utc } from "../format.js";
import { table } from "../tables.js";
import { noModels } from "../pairs.js";

/** Every number of a check, one per line, for a cell's tooltip. */
function checkDetails(check) {
  return Object.entries(check)
    .filter(([key, value]) => key !== "reason" && value !== null && typeof value !== "object")
    .map(([key, value]) => `${key.replace(/_/g, " ")}: ${formatCheckValue(key, value)}`)
    .join("\n");
}

function formatCheckValue(key, value) {
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (isNumber(value)) {
    if (/p_value/.test(key)) return pValue(value);
    if (/accuracy|drop/.test(key) && Math.abs(value) <= 1) return pct(value);
    return Number.isInteger(value) ? count(value) : num(value, 2);
  }
  return /_at$/.test(key) ? shortTime(value) : String(value);
}

/** One check of the policy: whether it fired, and its reason (which carries the numbers). */
function checkCell(check, firedWord, quietWord) {
  if (!check || typeof check !== "object") return "–";
  return el(
    "div",
    { class: "check", title: checkDetails(check) },
    firedWord ? pill(firedWord, "medium") : pill(quietWord, "none"),
    sub(check.reason)
  );
}

const CHECK_COLUMNS = [
  {
    key: "checked",
    label: "Checked",
    className: "nowrap",
    cell: (c) => shortTime(c.checked_at),
  },
  {
    key: "decision",
    label: "Retrain?",
    cell: (c) =>
      el(
        "div",
        { class: "check" },
        c.should_retrain ? pill("retrain", "medium") : pill("no", "none"),
        (c.reasons || []).map((reason) => sub(reason))
      ),
  },
  {
    key: "performance",
    label: "Performance",
    cell: (c) =>
      checkCell(c.performance_check, fired(c.performance_check, "degraded"), "holding"),
  },
  {
    key: "drift",
    label: "Drift",
    cell: (c) => checkCell(c.drift_check, fired(c.drift_check, "drifted"), "below threshold"),
  },
  {
    key: "schedule",
    label: "Schedule",
    cell: (c) => checkCell(c.schedule_check, fired(c.schedule_check, "due"), "not due"),
  },
  {
    key: "data",
    label: "Data",
    cell: (c) => {
      const short = c.data_check && !c.data_check.sufficient_data;
      return checkCell(c.data_check, short && "too little", "enough");
    },
  },
  {
    key: "cooldown",
    label: "Cooldown",
    cell: (c) => {
      const active = c.cooldown_check && c.cooldown_check.active;
      return checkCell(c.cooldown_check, active && "cooling down", "clear");
    },
  },
];

const fired = (check, word) => (check && check.triggered ? word : null);

export function renderChecks(pair, checks) {
  byId("retrain-latest-note").textContent = "";
  if (!pair) {
    fill("retrain-checks", noModels());
    fill("retrain-latest", noModels());
    return;
  }
  if (!checks) {
    fill("retrain-checks", emptyState("The retraining checks could not be loaded (see above)."));
    fill("retrain-latest");
    return;
  }
  const items = checks.checks || [];
  if (!items.length) {
    const none = () =>
      emptyState(
        "No checks recorded for this model yet: the scheduler runs one daily (",
        code("btcmlops demo"),
        " replays them)."
      );
    fill("retrain-checks", none());
    fill("retrain-latest", none());
    return;
  }
  renderLatestDecision(items[0]);
  fill("retrain-checks", table(CHECK_COLUMNS, items));
}

function renderLatestDecision(check) {
  byId("retrain-latest-note").textContent = utc(check.checked_at);
  const performance = check.performance_check || {};
  const drift = check.drift_check || {};
  const schedule = check.schedule_check || {};
  const data = check.data_check || {};
  const cooldown = check.cooldown_check || {};
  const decision = check.should_retrain
    ? pill("retrain", "medium")
    : pill("no retraining", "none");
  const age = isNumber(schedule.champion_age_days)
    ? `${schedule.champion_age_days.toFixed(1)} of ${schedule.interval_days} days`
    : "–";
  const cooling = cooldown.active
    ? `active (${num(cooldown.hours_since_last_run, 1)} h since the last run)`
    : "clear";
  const reasons = check.reasons && check.reasons.length ? check.reasons : ["No trigger fired."];
  fill(
    "retrain-latest",
    el(
      "div",
      { class: "facts" },
      fact("Decision", decision),
      fact(
        "Live vs baseline accuracy",
        `${pct(performance.live_accuracy)} vs ${pct(performance.baseline_accuracy)}`
      ),
      fact("Drop (one-sided p)", `${pct(performance.drop)} (${pValue(performance.p_value)})`),
      fact(
        "Outcomes judged",
        `${count(performance.live_predictions)} (≥ ${count(performance.min_predictions)} needed)`
      ),
      fact("Drift severity", pill(drift.severity || "n/a")),
      fact("Champion age", age),
      fact("Rows to train on", `${count(data.sample_count)} (≥ ${count(data.min_required)})`),
      fact("Cooldown", cooling)
    ),
    el("ul", { class: "recommendations reasons" }, reasons.map((r) => el("li", null, r)))
  );
}
