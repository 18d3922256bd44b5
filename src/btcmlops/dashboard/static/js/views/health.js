/* Health: the store, the prediction writer, the loaded models and the scheduler's jobs. */

import { state } from "../state.js";
import { byId, code, el, emptyState, fact, fill, kpi, pill } from "../dom.js";
import { bytes, count, isNumber, pct, seconds, shortTime, shortVersion, utc } from "../format.js";
import { kindTag, modelCell } from "../model-cells.js";
import { load } from "../api.js";
import { table } from "../tables.js";
import { noModels } from "../pairs.js";

export async function renderHealth() {
  const scheduler = await load("/scheduler/jobs");
  const health = state.health;
  const components = (health && health.components) || {};
  const store = components.store || {};
  const writer = components.prediction_logging || {};
  const models = components.models || {};
  const jobs = (scheduler && scheduler.jobs) || [];
  const failing = jobs.filter((j) => (j.consecutive_failures || 0) > 0).length;
  const loadErrors = Object.entries(models.load_errors || {});
  fill(
    "health-kpis",
    kpi(
      "Service",
      pill(health ? health.status : "unreachable"),
      health ? utc(health.timestamp) : ""
    ),
    kpi("Store", pill(store.status || "unknown"), store.dialect || store.error || ""),
    kpi(
      "Prediction writer",
      pill(writer.state || "unknown"),
      `queue ${count(writer.queue_depth)} of ${count(writer.queue_capacity)}`
    ),
    kpi(
      "Spool",
      bytes(writer.spool_bytes),
      `spooled ${count(writer.spooled)} · replayed ${count(writer.replayed)} · ` +
        `lost ${count(writer.lost)}`
    ),
    kpi(
      "Loaded models",
      count(health ? health.loaded_models : null),
      `${loadErrors.length} load errors`
    ),
    kpi(
      "Scheduler",
      pill(schedulerWord(scheduler)),
      scheduler ? `${jobs.length} jobs · ${failing} failing` : ""
    )
  );
  fill(
    "health-store",
    fact("Store", store.status || "–"),
    fact("Dialect", store.dialect || "–"),
    fact("Writer state", writer.state || "–"),
    fact(
      "Queue depth / capacity",
      `${count(writer.queue_depth)} / ${count(writer.queue_capacity)}`
    ),
    fact("Written", count(writer.written)),
    fact("Spooled / replayed", `${count(writer.spooled)} / ${count(writer.replayed)}`),
    fact("Lost", count(writer.lost)),
    fact("Spool size", bytes(writer.spool_bytes)),
    fact("Last error", writer.last_error || store.error || "none")
  );
  renderFeatureRows(models.feature_rows || {});
  renderLoadedModels(models.loaded || [], loadErrors, models.fallbacks || []);
  renderJobs(scheduler, jobs);
}

function renderFeatureRows(rows) {
  const entries = Object.entries(rows);
  if (!entries.length) {
    fill(
      "health-rows",
      emptyState("No feature rows in memory yet: ", code("btcmlops features build"), ".")
    );
    return;
  }
  const columns = [
    { key: "set", label: "Feature set", cell: ([featureSet]) => featureSet },
    { key: "ts", label: "Newest row in memory", cell: ([, hour]) => utc(hour) },
  ];
  fill("health-rows", table(columns, entries));
}

function renderLoadedModels(loaded, loadErrors, fallbacks) {
  const errors = [
    ...fallbacks.map((sentence) => el("div", { class: "fallback-notice" }, sentence)),
    ...loadErrors.map(([pair, message]) => el("p", { class: "muted" }, `${pair}: ${message}`)),
  ];
  if (!loaded.length) {
    fill("health-models", noModels(), ...errors);
    return;
  }
  const columns = [
    { key: "model", label: "Model", cell: (m) => modelCell(m.feature_set, m.model_type) },
    {
      key: "version",
      label: "Version",
      className: "version",
      cell: (m) => [shortVersion(m.version, m.feature_set, m.model_type), kindTag(m)],
    },
    { key: "loaded", label: "Loaded", cell: (m) => shortTime(m.loaded_at) },
    { key: "test", label: "Test accuracy", num: true, cell: (m) => pct(m.test_accuracy) },
    { key: "features", label: "Features", num: true, cell: (m) => count(m.features) },
  ];
  fill("health-models", table(columns, loaded), ...errors);
}

function schedulerWord(scheduler) {
  if (!scheduler) return "unknown";
  if (scheduler.running) return scheduler.leader ? "running" : "standing by";
  return scheduler.lease_holder ? "elsewhere" : "not here";
}

function schedulerNote(scheduler) {
  if (!scheduler) return "";
  if (scheduler.running && scheduler.leader) return "this process runs the jobs";
  if (scheduler.lease_holder) return `the jobs run in ${scheduler.lease_holder}`;
  return "no scheduler in this process; the last runs are read from the store";
}

/** A job's returned numbers in one short line ("bars 1 · articles 2"). */
function summariseDetail(detail) {
  if (detail === null || detail === undefined) return "";
  if (typeof detail !== "object") return String(detail);
  const parts = [];
  for (const [key, value] of Object.entries(detail)) {
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) {
      if (value.length) parts.push(`${key} ${value.length}`);
    } else if (typeof value === "object") {
      const inner = summariseDetail(value);
      if (inner) parts.push(`${key}: ${inner}`);
    } else {
      parts.push(`${key} ${isNumber(value) ? count(value) : value}`);
    }
  }
  const line = parts.join(" · ");
  return line.length > 140 ? `${line.slice(0, 139)}…` : line;
}

const JOB_COLUMNS = [
  { key: "name", label: "Job", value: (j) => j.name, cell: (j) => j.name },
  {
    key: "last",
    label: "Last started",
    className: "nowrap",
    value: (j) => j.last_started_at,
    cell: (j) => shortTime(j.last_started_at),
  },
  {
    key: "status",
    label: "Last status",
    value: (j) => j.last_status,
    cell: (j) => pill(j.last_status || "never"),
  },
  {
    key: "duration",
    label: "Duration",
    num: true,
    value: (j) => j.last_duration_seconds,
    cell: (j) => seconds(j.last_duration_seconds),
  },
  {
    key: "next",
    label: "Next run",
    className: "nowrap",
    value: (j) => j.next_run_at,
    cell: (j) => shortTime(j.next_run_at),
  },
  {
    key: "failures",
    label: "Failures in a row",
    num: true,
    value: (j) => j.consecutive_failures,
    cell: (j) => count(j.consecutive_failures),
  },
  {
    key: "detail",
    label: "Last result",
    cell: (j) =>
      el(
        "span",
        { class: "sub", title: j.last_detail ? JSON.stringify(j.last_detail, null, 1) : null },
        j.last_error || summariseDetail(j.last_detail)
      ),
  },
];

function renderJobs(scheduler, jobs) {
  byId("scheduler-note").textContent = schedulerNote(scheduler);
  if (!scheduler) {
    fill("health-jobs", emptyState("The scheduler could not be asked (see above)."));
    return;
  }
  if (!jobs.length) {
    fill(
      "health-jobs",
      emptyState("No scheduler jobs yet: start them with ", code("btcmlops serve"), ".")
    );
    return;
  }
  fill("health-jobs", table(JOB_COLUMNS, jobs, { sortId: "jobs" }));
}
