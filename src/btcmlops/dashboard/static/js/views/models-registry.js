/* Models: every version in the registry, promotable. */

import { ROLE_WORDS } from "../words.js";
import { clamped, el, fill, pill, sub } from "../dom.js";
import { count, interval, num, pairKey, pct, shortTime, shortVersion } from "../format.js";
import { versionModelCell } from "../model-cells.js";
import { table } from "../tables.js";
import { noModels } from "../pairs.js";
import { promote } from "./model-actions.js";

export function renderRegistry(all, roles) {
  if (!all.length) {
    fill("models-registry", noModels());
    return;
  }
  const test = (v) => (v.metrics && v.metrics.test) || {};
  const baseline = (v, name) => {
    const baselines = (v.metrics && v.metrics.baselines) || {};
    return baselines[name] ? baselines[name].accuracy : null;
  };
  const promoteButton = (v) =>
    el(
      "button",
      {
        type: "button",
        class: "small promote-button",
        "data-version": v.version,
        onclick: () => promote(v),
      },
      "Promote"
    );
  const columns = [
    {
      key: "version",
      label: "Version",
      className: "version",
      value: (v) => v.created_at,
      cell: (v) =>
        el("span", { title: v.version }, shortVersion(v.version, v.feature_set, v.model_type)),
    },
    {
      key: "model",
      label: "Model",
      value: (v) => pairKey(v.feature_set, v.model_type),
      cell: (v) => versionModelCell(v),
    },
    {
      key: "status",
      label: "Status",
      value: (v) => v.status,
      cell: (v) => [
        pill(v.status),
        v.status === "shadow" ? sub(ROLE_WORDS[roles.get(v.version)] || "") : null,
      ],
    },
    {
      key: "test",
      label: "Test accuracy",
      num: true,
      value: (v) => v.test_accuracy,
      cell: (v) => [
        pct(v.test_accuracy),
        sub(`${interval(v.test_accuracy_ci)} · ${count(test(v).rows)} h`),
      ],
    },
    {
      key: "validation",
      label: "Validation",
      num: true,
      value: (v) => v.validation_accuracy,
      cell: (v) => pct(v.validation_accuracy),
    },
    {
      key: "auc",
      label: "ROC AUC",
      num: true,
      value: (v) => test(v).roc_auc,
      cell: (v) => num(test(v).roc_auc),
    },
    {
      key: "brier",
      label: "Brier",
      num: true,
      value: (v) => test(v).brier_score,
      cell: (v) => num(test(v).brier_score),
    },
    {
      key: "baselines",
      label: "Baselines",
      title: "accuracy of always the majority direction / of repeating the last hour",
      className: "nowrap",
      num: true,
      value: (v) => baseline(v, "majority_class"),
      cell: (v) => `${pct(baseline(v, "majority_class"))} / ${pct(baseline(v, "last_hour"))}`,
    },
    {
      key: "created",
      label: "Created",
      value: (v) => v.created_at,
      cell: (v) => [shortTime(v.created_at), sub(`by ${v.created_by}`)],
    },
    { key: "reason", label: "Reason", cell: (v) => clamped(v.reason) },
    {
      key: "action",
      label: "",
      cell: (v) => (v.status === "champion" ? "" : promoteButton(v)),
    },
  ];
  fill("models-registry", table(columns, all, { sortId: "registry" }));
}
