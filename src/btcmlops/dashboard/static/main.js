/* btcmlops dashboard: reads the HTTP API and draws it with the locally served plotly.js.
 *
 * No framework and no build step: native ES modules, this one the entry (<script type="module">).
 * Every string that comes from the API reaches the page through textContent (el() in dom.js)
 * or, inside charts, through plotText(); never innerHTML. The visible view refreshes every 15 s
 * and the refresh pauses while the tab is hidden. When a refresh has drawn everything,
 * <body data-ready="<view>"> says so (tests wait on it).
 *
 * Modules (each imports what it uses; nothing is put on window):
 *   js/config.js       the shell's data- attributes, timings, storage keys
 *   js/palette.js      fonts and colours
 *   js/words.js        the page's names for model types, shadow roles, baseline rules
 *   js/state.js        the one mutable state (view, models, chosen pair, table sorts)
 *   js/format.js       numbers, times and versions as text
 *   js/dom.js          el() and the small builders (pill, kpi, fact, ...)
 *   js/model-cells.js  a model or a baseline in a table cell
 *   js/banner.js       what could not be loaded or done; the notice after an action
 *   js/api.js          the HTTP client; reads that ask for the API key on a 401
 *   js/dialog.js       the modal dialog (confirmations, reason, API key)
 *   js/actions.js      state-changing requests, confirmed first
 *   js/charts.js       plotly layout and drawing
 *   js/tables.js       sortable tables from column specs
 *   js/pairs.js        the models on the server and the pair picker
 *   js/evidence.js     the trial's and the e-values' evidence in words
 *   js/refresh.js      the refresh loop
 *   js/views/          one module per view, split by panel: overview (-price, -accuracy),
 *                      drift (-history, -features, -sequential), models (-charts, -registry,
 *                      model-actions), retraining (-checks, -job, shadows, shadow-chart), health
 */

import { PAIR_STORAGE, READS_PROTECTED, VIEWS } from "./js/config.js";
import { state } from "./js/state.js";
import { byId, el } from "./js/dom.js";
import { problems, renderBanner } from "./js/banner.js";
import { storeKey, storedKey } from "./js/api.js";
import { promptForKey } from "./js/dialog.js";
import { resizeCharts } from "./js/charts.js";
import { pauseRefresh, refresh, setRenderers } from "./js/refresh.js";
import { renderOverview } from "./js/views/overview.js";
import { renderDrift } from "./js/views/drift.js";
import { chooseDriftFeature } from "./js/views/drift-features.js";
import { renderModels } from "./js/views/models.js";
import { renderRetraining } from "./js/views/retraining.js";
import { startRetraining } from "./js/views/retraining-job.js";
import { renderHealth } from "./js/views/health.js";

const RENDERERS = {
  overview: renderOverview,
  drift: renderDrift,
  models: renderModels,
  retraining: renderRetraining,
  health: renderHealth,
};

function showView() {
  const requested = window.location.hash.replace("#", "");
  state.view = VIEWS.includes(requested) ? requested : "overview";
  for (const section of document.querySelectorAll(".view")) {
    section.hidden = section.dataset.view !== state.view;
  }
  for (const tab of document.querySelectorAll(".tabs a")) {
    const active = tab.dataset.tab === state.view;
    tab.classList.toggle("active", active);
    if (active) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  resizeCharts(byId(`view-${state.view}`));
  document.title = `${state.view[0].toUpperCase()}${state.view.slice(1)} · btcmlops`;
}

function choosePair(event) {
  state.pair = event.target.value;
  state.driftFeature = null;
  try {
    localStorage.setItem(PAIR_STORAGE, state.pair);
  } catch {
    /* not remembered across visits */
  }
  refresh();
}

/** Containers for the shadow evidence and the fallback notices, placed in their views. */
function addPanels() {
  const retraining = byId("view-retraining");
  retraining.querySelector(":scope > .grid").after(el("div", { id: "retrain-shadows" }));
  byId("view-models").prepend(el("div", { id: "models-fallbacks", class: "fallbacks" }));
  byId("models-champions").after(
    el(
      "div",
      { class: "panel-head" },
      el("h2", null, "In shadow"),
      el("span", { class: "legend-note" }, "predict every hour beside the champion; never served")
    ),
    el("div", { id: "models-shadows", class: "table-wrap" })
  );
}

async function start() {
  setRenderers(RENDERERS);
  addPanels();
  if (typeof Plotly === "undefined") {
    problems.set("plotly.min.js", "did not load: charts cannot be drawn");
    renderBanner();
    return;
  }
  window.addEventListener("hashchange", () => {
    showView();
    refresh();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) pauseRefresh();
    else refresh();
  });
  byId("refresh-button").addEventListener("click", () => refresh());
  byId("pair-select").addEventListener("change", choosePair);
  byId("drift-feature-select").addEventListener("change", (event) => {
    chooseDriftFeature(event.target.value);
  });
  byId("retrain-button").addEventListener("click", startRetraining);
  showView();
  if (READS_PROTECTED && !storedKey()) {
    // Ask before the first read rather than after a round of refusals.
    const answer = await promptForKey("This server needs the API key to show its data.");
    if (answer) storeKey(answer.key);
  }
  refresh();
}

start();
