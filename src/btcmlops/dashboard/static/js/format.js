/* Numbers, times, versions and colours as the page prints them; "–" for anything missing. */

import { FEATURE_SET_COLOURS, PAIR_COLOURS } from "./palette.js";
import { MODEL_NAMES } from "./words.js";

export const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
export const pct = (value, digits = 1) =>
  isNumber(value) ? `${(value * 100).toFixed(digits)}%` : "–";
export const count = (value) => (isNumber(value) ? value.toLocaleString("en-US") : "–");

export function num(value, digits = 3) {
  if (!isNumber(value)) return "–";
  if (value !== 0 && Math.abs(value) < 10 ** -digits) return value.toExponential(1);
  return value.toFixed(digits);
}

export function pValue(value) {
  if (!isNumber(value)) return "–";
  return value < 0.001 ? value.toExponential(1) : value.toFixed(3);
}

/** "[51.2, 57.3]" from a pair of proportions; "" when either is missing. */
export function interval(bounds) {
  const [low, high] = Array.isArray(bounds) ? bounds : [];
  if (!isNumber(low) || !isNumber(high)) return "";
  return `[${(low * 100).toFixed(1)}, ${(high * 100).toFixed(1)}]`;
}

export function money(value) {
  if (!isNumber(value)) return "–";
  return `$${value.toLocaleString("en-US", { maximumFractionDigits: 0 })}`;
}

export function utc(value) {
  if (!value) return "–";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

export const shortTime = (value) => utc(value).replace(" UTC", "");

/** Milliseconds with two significant digits below 10 ms (cached answers take microseconds). */
export function milliseconds(value) {
  if (!isNumber(value)) return "–";
  return `${value < 10 ? value.toPrecision(2) : value.toFixed(1)} ms`;
}

export function seconds(value) {
  if (!isNumber(value)) return "–";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 120) return `${value.toFixed(1)} s`;
  return `${(value / 60).toFixed(1)} min`;
}

export function bytes(value) {
  if (!isNumber(value)) return "–";
  if (value < 1024) return `${value} B`;
  if (value < 1024 ** 2) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 ** 2).toFixed(1)} MiB`;
}

export const pairKey = (featureSet, modelType) => `${featureSet}/${modelType}`;
export const pairLabel = (featureSet, modelType) =>
  `${featureSet} · ${MODEL_NAMES[modelType] || modelType}`;

export function pairColour(featureSet, modelType) {
  return (
    PAIR_COLOURS[pairKey(featureSet, modelType)] || FEATURE_SET_COLOURS[featureSet] || "#475467"
  );
}

/** The version without its "feature_set-model_type-" prefix (the rest is unique). */
export function shortVersion(version, featureSet, modelType) {
  if (!version) return "–";
  const prefix = `${featureSet}-${modelType}-`;
  return version.startsWith(prefix) ? version.slice(prefix.length) : version;
}

export function withAlpha(hex, alpha) {
  const value = parseInt(hex.slice(1), 16);
  return `rgba(${(value >> 16) & 255}, ${(value >> 8) & 255}, ${value & 255}, ${alpha})`;
}

export const timeKey = (value) => Math.round(Date.parse(value) / 1000);
export const isoTime = (instant) => new Date(instant).toISOString();

/** An e-value in three significant digits ("34.7", "0.153"); exponent when far from 1. */
export function eValue(value) {
  if (!isNumber(value)) return "–";
  if (value >= 1e4 || (value > 0 && value < 1e-3)) return value.toExponential(1);
  return String(Number(value.toPrecision(3)));
}

export const eFromLog = (log) => (isNumber(log) ? Math.exp(Math.min(log, 700)) : null);

/** A number with a fixed count of decimals ("-0.1", "3.0"); "–" when missing. */
export const fixed = (value, digits = 1) => (isNumber(value) ? value.toFixed(digits) : "–");
