/* How a model appears in a table: its colour and name, or the naive rule a baseline stands for. */

import { MODEL_NAMES, ROLE_WORDS, RULE_WORDS } from "./words.js";
import { el, pill, sub, swatch } from "./dom.js";
import { pairColour, pairLabel } from "./format.js";

/** A model's colour swatch and name, as a table cell. */
export function modelCell(featureSet, modelType) {
  return el(
    "span",
    { class: "nowrap" },
    swatch(pairColour(featureSet, modelType)),
    pairLabel(featureSet, modelType)
  );
}

export const isBaseline = (version) =>
  Boolean(version && (version.kind === "baseline" || version.baseline_rule));
export const baselineLabel = (rule) => `baseline (${RULE_WORDS[rule] || rule || "naive rule"})`;

/** "baseline (last hour)" for a declared naive rule; nothing for a learned model. */
export function kindTag(version) {
  if (!isBaseline(version)) return null;
  return el(
    "span",
    { class: "kind-tag", title: "a declared naive rule, not a learned model" },
    baselineLabel(version.baseline_rule)
  );
}

/** The Model cell of a version: a baseline says which rule it is, not the learned type. */
export function versionModelCell(version) {
  if (!isBaseline(version)) return modelCell(version.feature_set, version.model_type);
  return [
    el(
      "span",
      { class: "nowrap" },
      swatch(pairColour(version.feature_set, version.model_type)),
      `${version.feature_set} · ${baselineLabel(version.baseline_rule)}`
    ),
    sub(`stands in for ${MODEL_NAMES[version.model_type] || version.model_type}`),
  ];
}

export function rolePill(role) {
  return pill(ROLE_WORDS[role] || role || "shadow", role || "shadow");
}
