/* Models: the champions, the shadows and the declared fallbacks. */

import { state } from "../state.js";
import { clamped, el, fill, sub } from "../dom.js";
import { interval, pairKey, pairLabel, pct, shortTime, shortVersion } from "../format.js";
import { kindTag, modelCell, rolePill, versionModelCell } from "../model-cells.js";
import { load } from "../api.js";
import { table } from "../tables.js";
import { noModels } from "../pairs.js";
import { SHADOW_EVIDENCE_COLUMN } from "../evidence.js";
import { rollback } from "./model-actions.js";
import { renderChampionTimeline, renderImportances } from "./models-charts.js";
import { renderRegistry } from "./models-registry.js";

export async function renderModels() {
  const [versions, history, shadows] = await Promise.all([
    load("/models/versions"),
    load("/models/history"),
    load("/retrain/shadows"),
  ]);
  const all = (versions && versions.versions) || [];
  const changes = (history && history.history) || [];
  const roles = shadowRoles(shadows);
  renderFallbackNotices();
  renderChampions(all, changes);
  renderModelShadows(all, shadows);
  renderChampionTimeline(changes);
  renderImportances(all);
  renderRegistry(all, roles);
}

/** version -> "challenger" | "previous_champion", from GET /retrain/shadows. */
function shadowRoles(report) {
  const roles = new Map();
  for (const pair of (report && report.pairs) || []) {
    for (const shadow of pair.shadows || []) roles.set(shadow.version, shadow.role);
  }
  return roles;
}

/** The versions predicting in shadow, each with its role and the evidence it has so far. */
function renderModelShadows(all, report) {
  const byVersion = new Map(all.map((v) => [v.version, v]));
  const rows = ((report && report.pairs) || []).flatMap((pair) =>
    (pair.shadows || []).map((shadow) => ({ ...shadow, info: byVersion.get(shadow.version) }))
  );
  if (!rows.length) {
    const why = report ? "No model is predicting in shadow." : "Shadows could not be loaded.";
    fill("models-shadows", el("p", { class: "muted small" }, why));
    return;
  }
  const columns = [
    {
      key: "model",
      label: "Model",
      cell: (s) => (s.info ? versionModelCell(s.info) : s.version),
    },
    {
      key: "version",
      label: "Version",
      className: "version",
      cell: (s) => {
        const info = s.info || {};
        return el(
          "span",
          { class: "shadow-version", title: s.version },
          shortVersion(s.version, info.feature_set, info.model_type)
        );
      },
    },
    {
      key: "role",
      label: "Role",
      cell: (s) => [
        rolePill(s.role),
        sub(s.role === "previous_champion" ? "judged for rollback" : "judged for promotion"),
      ],
    },
    {
      key: "test",
      label: "Test accuracy",
      num: true,
      cell: (s) => pct(s.info ? s.info.test_accuracy : null),
    },
    SHADOW_EVIDENCE_COLUMN,
  ];
  fill("models-shadows", table(columns, rows));
}

/** One notice per pair that serves a declared naive baseline, with the server's words. */
function renderFallbackNotices() {
  const notices = state.pairs
    .filter((p) => p.fallback)
    .map((p) =>
      el(
        "div",
        {
          class: "fallback-notice",
          role: "status",
          "data-pair": pairKey(p.feature_set, p.model_type),
        },
        el("strong", null, `Declared fallback · ${pairLabel(p.feature_set, p.model_type)}:`),
        " ",
        p.fallback
      )
    );
  fill("models-fallbacks", ...notices);
}

function renderChampions(all, changes) {
  const champions = all.filter((v) => v.status === "champion");
  if (!champions.length) {
    fill("models-champions", noModels());
    return;
  }
  const ofPair = (v) =>
    changes.filter((c) => c.feature_set === v.feature_set && c.model_type === v.model_type);
  const lastChange = (v) => ofPair(v).pop();
  // What a rollback would return to: the version this champion replaced when it was
  // promoted (a rollback is not itself something to return to), as the registry does.
  const rollbackTarget = (v) => {
    const arrival = ofPair(v)
      .filter((c) => c.version === v.version && !c.action.endsWith("rollback"))
      .pop();
    return arrival ? arrival.previous_version : null;
  };
  const columns = [
    { key: "model", label: "Model", cell: (v) => modelCell(v.feature_set, v.model_type) },
    {
      key: "version",
      label: "Champion",
      className: "version",
      cell: (v) => [
        el(
          "span",
          {
            class: "champion-version",
            title: v.version,
            "data-pair": pairKey(v.feature_set, v.model_type),
          },
          shortVersion(v.version, v.feature_set, v.model_type)
        ),
        kindTag(v),
      ],
    },
    {
      key: "test",
      label: "Test accuracy",
      num: true,
      cell: (v) => [pct(v.test_accuracy), sub(interval(v.test_accuracy_ci))],
    },
    {
      key: "since",
      label: "Since",
      cell: (v) => {
        const change = lastChange(v);
        if (!change) return "–";
        return [
          shortTime(change.changed_at),
          sub(`${change.action} by ${change.actor}`),
          clamped(change.reason, "reason"),
        ];
      },
    },
    {
      key: "action",
      label: "",
      cell: (v) => {
        const target = rollbackTarget(v);
        return el(
          "button",
          {
            type: "button",
            class: "small danger rollback-button",
            "data-pair": pairKey(v.feature_set, v.model_type),
            disabled: !target,
            title: target ? `back to ${target}` : "nothing to roll back to: the first champion",
            onclick: () => rollback(v, target),
          },
          "Roll back"
        );
      },
    },
  ];
  fill("models-champions", table(columns, champions));
}
