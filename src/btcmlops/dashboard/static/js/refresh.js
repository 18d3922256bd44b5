/* The refresh loop: the visible view every 15 s, paused while the tab is hidden. */

import { REFRESH_MS, page } from "./config.js";
import { state } from "./state.js";
import { byId } from "./dom.js";
import { problems, renderBanner } from "./banner.js";
import { refreshCommon } from "./pairs.js";

let renderers = {}; // view -> async function that draws it, given by the entry module
let running = null;
let again = false;
let timer = null;

/** The function that draws each view; the entry module knows them all. */
export function setRenderers(byView) {
  renderers = byView;
}

/** Refresh the visible view; a call during a refresh queues one more afterwards. */
export function refresh() {
  if (running) {
    again = true;
    return running;
  }
  clearTimeout(timer);
  running = refreshNow().finally(() => {
    running = null;
    if (again) {
      again = false;
      refresh();
    } else {
      schedule();
    }
  });
  return running;
}

async function refreshNow() {
  const view = state.view;
  page.dataset.ready = "";
  problems.clear();
  await refreshCommon();
  try {
    await renderers[view]();
  } catch (error) {
    // A drawing bug must not stop the refresh loop: it shows, with its stack in the console.
    problems.set(`drawing the ${view} view`, String(error));
    console.error(error);
  }
  renderBanner();
  state.refreshes += 1;
  byId("refresh-status").textContent =
    `updated ${new Date().toLocaleTimeString()} · every ${REFRESH_MS / 1000} s while visible`;
  if (state.view === view) {
    page.dataset.ready = view;
    page.dataset.refreshes = String(state.refreshes);
  }
}

function schedule() {
  clearTimeout(timer);
  if (!document.hidden) timer = setTimeout(refresh, REFRESH_MS);
}

/** Stop the scheduled refresh (the tab is hidden); the next refresh() starts it again. */
export function pauseRefresh() {
  clearTimeout(timer);
}
