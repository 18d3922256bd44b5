/* Building the page: API data goes in as text nodes, never parsed as HTML. */

/** Build an element; strings become text nodes, so API data is never parsed as HTML. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const byId = (id) => document.getElementById(id);
export const code = (text) => el("code", null, text);
export const sub = (text) => (text ? el("span", { class: "sub" }, text) : null);
/** Long text shown in two lines at most; all of it in the tooltip (and the DOM). */
export const clamped = (text, extraClass) =>
  text ? el("span", { class: `sub clamp ${extraClass || ""}`.trim(), title: text }, text) : null;
export const emptyState = (...parts) => el("div", { class: "empty" }, ...parts);

export function fill(id, ...nodes) {
  byId(id).replaceChildren(...nodes);
}

export function pill(word, extraClass) {
  const text = word === null || word === undefined || word === "" ? "n/a" : String(word);
  const kind = text.toLowerCase().replace(/[^a-z_]/g, "");
  return el("span", { class: `pill ${kind} ${extraClass || ""}`.trim() }, text);
}

export function swatch(colour) {
  return el("span", { class: "swatch", style: { background: colour } });
}

export function kpi(label, value, detail) {
  return el(
    "div",
    { class: "kpi" },
    el("div", { class: "label" }, label),
    el("div", { class: "value" }, value),
    detail ? el("div", { class: "detail" }, detail) : null
  );
}

export function fact(label, value) {
  return el(
    "div",
    { class: "fact" },
    el("div", { class: "label" }, label),
    el("div", { class: "value" }, value)
  );
}

/** Characters plotly would read as markup in chart text, escaped. */
export function plotText(value) {
  return String(value ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;");
}
