/* Fonts and colours: one colour per model, outcome and decision, the same in every chart and
 * table. */

export const FONT =
  'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
export const MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";

// One colour per feature set and model type, the same in every chart and table.
export const PAIR_COLOURS = {
  "vader/random_forest": "#2563eb",
  "vader/gradient_boosting": "#0891b2",
  "vader/logistic_regression": "#7c3aed",
  "finbert/random_forest": "#ea580c",
  "finbert/gradient_boosting": "#db2777",
  "finbert/logistic_regression": "#65a30d",
};
export const FEATURE_SET_COLOURS = { vader: "#2563eb", finbert: "#ea580c" };
export const OUTCOME_COLOURS = { correct: "#16a34a", incorrect: "#dc2626", pending: "#98a2b3" };
export const DECISION_COLOURS = { deployed: "#16a34a", kept: "#64748b", fallback: "#ea580c" };
export const DECISION_SYMBOLS = { deployed: "star", kept: "circle-open", fallback: "square" };
// Shadow models: challengers in these colours, the shadowed previous champion in slate.
export const SHADOW_COLOURS = ["#7c3aed", "#0891b2", "#db2777", "#65a30d"];
export const PREVIOUS_CHAMPION_COLOUR = "#475569";
