/* The models on the server (GET /models), the pair picker and the title bar's health. */

import { PAIR_STORAGE } from "./config.js";
import { state } from "./state.js";
import { byId, code, el, emptyState } from "./dom.js";
import { pairKey, pairLabel, utc } from "./format.js";
import { load } from "./api.js";

export function selectedPair() {
  return state.pairs.find((p) => pairKey(p.feature_set, p.model_type) === state.pair) || null;
}

export const championPairs = () => state.pairs.filter((p) => p.champion);

export const noModels = () =>
  emptyState(
    "No models yet: run ",
    code("btcmlops demo"),
    " for a complete example, or train one with ",
    code("btcmlops train --feature-set vader --promote"),
    "."
  );

/** What every view needs: the service's health (title bar) and the models (picker). */
export async function refreshCommon() {
  const [health, models] = await Promise.all([load("/health"), load("/models")]);
  state.health = health;
  if (health) {
    state.serverNow = health.timestamp;
    const healthPill = byId("health-pill");
    healthPill.className = `pill ${health.status}`;
    healthPill.textContent = health.status;
    byId("server-clock").textContent = utc(health.timestamp);
  }
  if (models) {
    state.pairs = Object.entries(models.available_models || {}).flatMap(([featureSet, entries]) =>
      entries.map((entry) => ({
        feature_set: featureSet,
        model_type: entry.model_type,
        champion: entry.champion,
        champion_kind: entry.champion_kind || null,
        fallback: entry.fallback || null, // a sentence when the pair serves a naive baseline
        shadows: entry.shadows || [],
        versions: entry.versions || [],
      }))
    );
    renderPairPicker();
  }
}

function rememberedPair() {
  try {
    return localStorage.getItem(PAIR_STORAGE);
  } catch {
    return null;
  }
}

function renderPairPicker() {
  const keys = state.pairs.map((p) => pairKey(p.feature_set, p.model_type));
  if (!keys.includes(state.pair)) {
    const remembered = rememberedPair();
    const firstChampion = championPairs().map((p) => pairKey(p.feature_set, p.model_type))[0];
    state.pair = keys.includes(remembered) ? remembered : firstChampion || keys[0] || null;
  }
  const options = state.pairs.map((p) => {
    const label = pairLabel(p.feature_set, p.model_type) + (p.champion ? "" : " (no champion)");
    return el("option", { value: pairKey(p.feature_set, p.model_type) }, label);
  });
  if (!options.length) options.push(el("option", { value: "" }, "no models yet"));
  const select = byId("pair-select");
  select.replaceChildren(...options);
  select.value = state.pair || "";
  const pair = selectedPair();
  const label = pair ? `· ${pairLabel(pair.feature_set, pair.model_type)}` : "";
  document.querySelectorAll(".pair-label").forEach((node) => {
    node.textContent = label;
  });
  document.querySelectorAll(".feature-set-label").forEach((node) => {
    node.textContent = pair ? `· ${pair.feature_set}` : "";
  });
}
