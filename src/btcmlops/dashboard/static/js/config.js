/* What the page was served with (the shell's data- attributes) and the timings. */

export const page = document.body;
export const API_BASE = page.dataset.apiBase || "";
export const KEY_REQUIRED = page.dataset.keyRequired === "true";
export const READS_PROTECTED = page.dataset.readsProtected === "true";
export const REFRESH_MS = 15000;
export const JOB_POLL_MS = 1500;
export const KEY_STORAGE = "btcmlops.apiKey";
export const PAIR_STORAGE = "btcmlops.pair";
export const VIEWS = ["overview", "drift", "models", "retraining", "health"];
export const HOUR_MS = 3600 * 1000;
