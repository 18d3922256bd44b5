/* The banner of what could not be loaded or done, and the one-line notice after an action. */

import { byId, el, fill } from "./dom.js";

export const problems = new Map(); // request -> what went wrong; cleared at every refresh
export const actionProblems = new Map(); // kept until the next action succeeds

export function renderBanner() {
  const all = [...problems.entries(), ...actionProblems.entries()];
  fill("banner-list", ...all.map(([label, message]) => el("li", null, `${label}: ${message}`)));
  byId("banner").hidden = all.length === 0;
}

export function notify(message) {
  const notice = byId("notice");
  notice.textContent = message;
  notice.hidden = !message;
}
