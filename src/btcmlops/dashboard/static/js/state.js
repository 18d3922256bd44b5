/* The page's one mutable state: the view, the models, the chosen pair and what the tables
 * remember. */

export const state = {
  view: "overview",
  pairs: [], // [{feature_set, model_type, champion, versions}] from GET /models
  pair: null, // the selected "feature_set/model_type"
  health: null,
  serverNow: null,
  driftFeature: null,
  driftWindows: {}, // {reference_days, current_days} of the check the Drift view shows
  sorts: {}, // table id -> {key, direction}, kept across refreshes
  refreshes: 0,
};
