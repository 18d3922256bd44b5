/* btcmlops dashboard: reads the HTTP API and draws it with the locally served plotly.js.
 *
 * No framework and no build step. Every string that comes from the API reaches the page
 * through textContent (el() below) or, inside charts, through plotText(); never innerHTML.
 * The visible view refreshes every 15 s and the refresh pauses while the tab is hidden.
 * When a refresh has drawn everything, <body data-ready="<view>"> says so (tests wait on it).
 */
"use strict";

(() => {
  const page = document.body;
  const API_BASE = page.dataset.apiBase || "";
  const KEY_REQUIRED = page.dataset.keyRequired === "true";
  const READS_PROTECTED = page.dataset.readsProtected === "true";
  const REFRESH_MS = 15000;
  const JOB_POLL_MS = 1500;
  const KEY_STORAGE = "btcmlops.apiKey";
  const PAIR_STORAGE = "btcmlops.pair";
  const VIEWS = ["overview", "drift", "models", "retraining", "health"];
  const HOUR_MS = 3600 * 1000;
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";

  // One colour per feature set and model type, the same in every chart and table.
  const PAIR_COLOURS = {
    "vader/random_forest": "#2563eb",
    "vader/gradient_boosting": "#0891b2",
    "vader/logistic_regression": "#7c3aed",
    "finbert/random_forest": "#ea580c",
    "finbert/gradient_boosting": "#db2777",
    "finbert/logistic_regression": "#65a30d",
  };
  const FEATURE_SET_COLOURS = { vader: "#2563eb", finbert: "#ea580c" };
  const OUTCOME_COLOURS = { correct: "#16a34a", incorrect: "#dc2626", pending: "#98a2b3" };
  const DECISION_COLOURS = { deployed: "#16a34a", kept: "#64748b", fallback: "#ea580c" };
  const DECISION_SYMBOLS = { deployed: "star", kept: "circle-open", fallback: "square" };
  // Shadow models: challengers in these colours, the shadowed previous champion in slate.
  const SHADOW_COLOURS = ["#7c3aed", "#0891b2", "#db2777", "#65a30d"];
  const PREVIOUS_CHAMPION_COLOUR = "#475569";
  const ROLE_WORDS = { challenger: "challenger", previous_champion: "previous champion" };
  const RULE_WORDS = { majority: "majority class", last_hour: "last hour" };
  const RUNNING_STATUSES = new Set(["queued", "pending", "running", "started"]);
  const MODEL_NAMES = {
    random_forest: "random forest",
    gradient_boosting: "gradient boosting",
    logistic_regression: "logistic regression",
  };

  const state = {
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

  // ===================================================================== DOM helpers

  /** Build an element; strings become text nodes, so API data is never parsed as HTML. */
  function el(tag, attrs, ...children) {
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

  const byId = (id) => document.getElementById(id);
  const code = (text) => el("code", null, text);
  const sub = (text) => (text ? el("span", { class: "sub" }, text) : null);
  /** Long text shown in two lines at most; all of it in the tooltip (and the DOM). */
  const clamped = (text, extraClass) =>
    text ? el("span", { class: `sub clamp ${extraClass || ""}`.trim(), title: text }, text) : null;
  const emptyState = (...parts) => el("div", { class: "empty" }, ...parts);

  function fill(id, ...nodes) {
    byId(id).replaceChildren(...nodes);
  }

  function pill(word, extraClass) {
    const text = word === null || word === undefined || word === "" ? "n/a" : String(word);
    const kind = text.toLowerCase().replace(/[^a-z_]/g, "");
    return el("span", { class: `pill ${kind} ${extraClass || ""}`.trim() }, text);
  }

  function swatch(colour) {
    return el("span", { class: "swatch", style: { background: colour } });
  }

  /** A model's colour swatch and name, as a table cell. */
  function modelCell(featureSet, modelType) {
    return el(
      "span",
      { class: "nowrap" },
      swatch(pairColour(featureSet, modelType)),
      pairLabel(featureSet, modelType)
    );
  }

  function kpi(label, value, detail) {
    return el(
      "div",
      { class: "kpi" },
      el("div", { class: "label" }, label),
      el("div", { class: "value" }, value),
      detail ? el("div", { class: "detail" }, detail) : null
    );
  }

  function fact(label, value) {
    return el(
      "div",
      { class: "fact" },
      el("div", { class: "label" }, label),
      el("div", { class: "value" }, value)
    );
  }

  /** Characters plotly would read as markup in chart text, escaped. */
  function plotText(value) {
    return String(value ?? "")
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;");
  }

  // ===================================================================== formatting

  const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
  const pct = (value, digits = 1) => (isNumber(value) ? `${(value * 100).toFixed(digits)}%` : "–");
  const count = (value) => (isNumber(value) ? value.toLocaleString("en-US") : "–");

  function num(value, digits = 3) {
    if (!isNumber(value)) return "–";
    if (value !== 0 && Math.abs(value) < 10 ** -digits) return value.toExponential(1);
    return value.toFixed(digits);
  }

  function pValue(value) {
    if (!isNumber(value)) return "–";
    return value < 0.001 ? value.toExponential(1) : value.toFixed(3);
  }

  /** "[51.2, 57.3]" from a pair of proportions; "" when either is missing. */
  function interval(bounds) {
    const [low, high] = Array.isArray(bounds) ? bounds : [];
    if (!isNumber(low) || !isNumber(high)) return "";
    return `[${(low * 100).toFixed(1)}, ${(high * 100).toFixed(1)}]`;
  }

  function money(value) {
    if (!isNumber(value)) return "–";
    return `$${value.toLocaleString("en-US", { maximumFractionDigits: 0 })}`;
  }

  function utc(value) {
    if (!value) return "–";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  }

  const shortTime = (value) => utc(value).replace(" UTC", "");

  /** Milliseconds with two significant digits below 10 ms (cached answers take microseconds). */
  function milliseconds(value) {
    if (!isNumber(value)) return "–";
    return `${value < 10 ? value.toPrecision(2) : value.toFixed(1)} ms`;
  }

  function seconds(value) {
    if (!isNumber(value)) return "–";
    if (value < 1) return `${Math.round(value * 1000)} ms`;
    if (value < 120) return `${value.toFixed(1)} s`;
    return `${(value / 60).toFixed(1)} min`;
  }

  function bytes(value) {
    if (!isNumber(value)) return "–";
    if (value < 1024) return `${value} B`;
    if (value < 1024 ** 2) return `${(value / 1024).toFixed(1)} KiB`;
    return `${(value / 1024 ** 2).toFixed(1)} MiB`;
  }

  const pairKey = (featureSet, modelType) => `${featureSet}/${modelType}`;
  const pairLabel = (featureSet, modelType) =>
    `${featureSet} · ${MODEL_NAMES[modelType] || modelType}`;

  function pairColour(featureSet, modelType) {
    return (
      PAIR_COLOURS[pairKey(featureSet, modelType)] || FEATURE_SET_COLOURS[featureSet] || "#475467"
    );
  }

  /** The version without its "feature_set-model_type-" prefix (the rest is unique). */
  function shortVersion(version, featureSet, modelType) {
    if (!version) return "–";
    const prefix = `${featureSet}-${modelType}-`;
    return version.startsWith(prefix) ? version.slice(prefix.length) : version;
  }

  function withAlpha(hex, alpha) {
    const value = parseInt(hex.slice(1), 16);
    return `rgba(${(value >> 16) & 255}, ${(value >> 8) & 255}, ${value & 255}, ${alpha})`;
  }

  const timeKey = (value) => Math.round(Date.parse(value) / 1000);
  const isoTime = (instant) => new Date(instant).toISOString();

  /** An e-value in three significant digits ("34.7", "0.153"); exponent when far from 1. */
  function eValue(value) {
    if (!isNumber(value)) return "–";
    if (value >= 1e4 || (value > 0 && value < 1e-3)) return value.toExponential(1);
    return String(Number(value.toPrecision(3)));
  }

  const eFromLog = (log) => (isNumber(log) ? Math.exp(Math.min(log, 700)) : null);

  // ===================================================================== model kinds

  const isBaseline = (version) =>
    Boolean(version && (version.kind === "baseline" || version.baseline_rule));
  const baselineLabel = (rule) => `baseline (${RULE_WORDS[rule] || rule || "naive rule"})`;

  /** "baseline (last hour)" for a declared naive rule; nothing for a learned model. */
  function kindTag(version) {
    if (!isBaseline(version)) return null;
    return el(
      "span",
      { class: "kind-tag", title: "a declared naive rule, not a learned model" },
      baselineLabel(version.baseline_rule)
    );
  }

  /** The Model cell of a version: a baseline says which rule it is, not the learned type. */
  function versionModelCell(version) {
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

  function rolePill(role) {
    return pill(ROLE_WORDS[role] || role || "shadow", role || "shadow");
  }

  // ===================================================================== banner, notices

  const problems = new Map(); // request -> what went wrong; cleared at every refresh
  const actionProblems = new Map(); // kept until the next action succeeds

  function renderBanner() {
    const all = [...problems.entries(), ...actionProblems.entries()];
    fill("banner-list", ...all.map(([label, message]) => el("li", null, `${label}: ${message}`)));
    byId("banner").hidden = all.length === 0;
  }

  function notify(message) {
    const notice = byId("notice");
    notice.textContent = message;
    notice.hidden = !message;
  }

  // ===================================================================== the API client

  class ApiError extends Error {
    constructor(status, kind, detail) {
      super(detail);
      this.status = status;
      this.kind = kind;
    }

    describe() {
      if (this.status === 404 && this.kind === "HTTPError") {
        return "404: this server has no such endpoint (an older btcmlops?)";
      }
      return this.status ? `${this.status} ${this.kind}: ${this.message}` : this.message;
    }
  }

  const describeError = (error) => (error instanceof ApiError ? error.describe() : String(error));

  function storedKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return "";
    }
  }

  function storeKey(key) {
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      /* storage disabled: the key is asked for again next time */
    }
  }

  function queryString(params) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
    }
    const text = query.toString();
    return text ? `?${text}` : "";
  }

  /** One request; the stored API key goes along as X-API-Key. Throws ApiError. */
  async function send(method, path, params) {
    const headers = { Accept: "application/json" };
    const key = storedKey();
    if (key) headers["X-API-Key"] = key;
    let response;
    try {
      response = await fetch(API_BASE + path + queryString(params), { method, headers });
    } catch (error) {
      throw new ApiError(0, "NetworkError", `the server did not answer (${error.message})`);
    }
    const text = await response.text();
    let payload = null;
    try {
      payload = text ? JSON.parse(text) : {};
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const kind = (payload && payload.error) || response.statusText || "Error";
      const detail = (payload && payload.detail) || text.slice(0, 200) || "no detail";
      throw new ApiError(response.status, kind, detail);
    }
    if (payload === null) throw new ApiError(response.status, "BadResponse", "not JSON");
    return payload;
  }

  let keyPrompt = null; // one prompt shared by every read that met a 401 meanwhile

  function promptForKey(message) {
    if (!keyPrompt) {
      keyPrompt = ask({ title: "API key needed", text: message, askKey: true }).finally(() => {
        keyPrompt = null;
      });
    }
    return keyPrompt;
  }

  /** A read: on 401 (reads protected by the server) ask for the key and try again. */
  async function api(method, path, params) {
    for (;;) {
      const keyUsed = storedKey();
      try {
        return await send(method, path, params);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 401) throw error;
        if (storedKey() && storedKey() !== keyUsed) continue; // a key arrived meanwhile
        storeKey("");
        const answer = await promptForKey(
          `${method} ${path} was refused: ${error.message} Enter the key to continue.`
        );
        if (!answer || !answer.key) throw error;
        storeKey(answer.key);
      }
    }
  }

  /** A read for a view: a failure goes to the banner and the caller gets null. */
  async function load(path, params) {
    try {
      return await api("GET", path, params);
    } catch (error) {
      problems.set(`GET ${path}${queryString(params)}`, describeError(error));
      return null;
    }
  }

  // ===================================================================== the dialog

  let dialogQueue = Promise.resolve();

  /** Open the dialog (one at a time); resolves {reason, key}, or null when cancelled. */
  function ask(options) {
    const next = dialogQueue.then(() => openDialog(options));
    dialogQueue = next.catch(() => null);
    return next;
  }

  function openDialog({ title, text, askReason = false, askKey = false, confirmLabel, danger }) {
    const dialog = byId("action-dialog");
    const form = byId("action-form");
    const cancel = byId("action-cancel");
    const reason = byId("action-reason");
    const key = byId("action-key");
    const confirm = byId("action-confirm");
    byId("action-title").textContent = title;
    byId("action-text").textContent = text;
    byId("action-reason-row").hidden = !askReason;
    byId("action-key-row").hidden = !askKey;
    reason.value = "";
    key.value = "";
    confirm.textContent = confirmLabel || "Continue";
    confirm.className = danger ? "primary danger-fill" : "primary";
    return new Promise((resolve) => {
      const finish = (answer) => {
        form.removeEventListener("submit", onSubmit);
        cancel.removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        resolve(answer);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        if (askKey && !key.value.trim()) {
          key.focus();
          return;
        }
        finish({ reason: reason.value.trim(), key: key.value.trim() });
      };
      const onCancel = (event) => {
        event.preventDefault();
        finish(null);
      };
      form.addEventListener("submit", onSubmit);
      cancel.addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      (askKey ? key : askReason ? reason : confirm).focus();
    });
  }

  /**
   * A state-changing action: confirm it (with a reason and, when the server has a key and
   * this tab has none yet, the API key), send it, and on 401 ask for the key again.
   * Resolves the response, or null when cancelled or refused (the banner says why).
   */
  async function runAction(action) {
    const { label, text, askReason, method, path, params } = action;
    let refusal = "";
    for (;;) {
      const askKey = (KEY_REQUIRED && !storedKey()) || Boolean(refusal);
      const answer = await ask({ ...action, text: refusal ? `${refusal} ${text}` : text, askKey });
      if (!answer) return null;
      if (askKey) storeKey(answer.key);
      const query = { ...params };
      if (askReason && answer.reason) query.reason = answer.reason;
      try {
        const response = await send(method, path, query);
        actionProblems.clear();
        renderBanner();
        return response;
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          storeKey("");
          refusal = "The API key was not accepted.";
          continue;
        }
        actionProblems.set(label, describeError(error));
        renderBanner();
        return null;
      }
    }
  }

  // ===================================================================== charts

  const PLOT_CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"],
  };

  function layout(extra) {
    const axis = { gridcolor: "#eef1f5", linecolor: "#d0d5dd", zeroline: false, automargin: true };
    return {
      margin: { l: 56, r: 18, t: 8, b: 40 },
      font: { family: FONT, size: 12, color: "#1b2433" },
      paper_bgcolor: "#ffffff",
      plot_bgcolor: "#ffffff",
      hovermode: "closest",
      hoverlabel: { font: { family: FONT } },
      legend: { orientation: "h", x: 0, y: -0.16, font: { size: 11 } },
      ...extra,
      xaxis: { ...axis, ...(extra.xaxis || {}) },
      yaxis: { ...axis, ...(extra.yaxis || {}) },
    };
  }

  /** Draw traces into a chart box, or show `empty` when no trace has a point. */
  function drawChart(id, traces, chartLayout, empty) {
    const box = byId(id);
    const hasData = traces.some((trace) => (trace.x || trace.y || []).length > 0);
    if (!hasData) {
      if (box.classList.contains("js-plotly-plot")) Plotly.purge(box);
      box.replaceChildren(empty || emptyState("Nothing to draw yet."));
      return;
    }
    box.querySelectorAll(":scope > .empty").forEach((node) => node.remove());
    Plotly.react(box, traces, chartLayout, PLOT_CONFIG);
  }

  function resizeCharts(section) {
    section.querySelectorAll(".js-plotly-plot").forEach((box) => Plotly.Plots.resize(box));
  }

  /** [min - pad, max + pad] of the finite values, clamped to [floor, ceiling]. */
  function paddedRange(values, pad, floor = -Infinity, ceiling = Infinity) {
    const finite = values.filter(isNumber);
    if (!finite.length) return undefined;
    const low = Math.max(floor, Math.min(...finite) - pad);
    return [low, Math.min(ceiling, Math.max(...finite) + pad)];
  }

  // ===================================================================== tables

  /**
   * A table from column specs {key, label, cell(row) -> node|text, value(row) -> sortable,
   * num, title, className, firstDirection}. With `sortId`, clicking a header with a `value`
   * sorts by it; the choice is kept across refreshes.
   */
  function table(columns, rows, options = {}) {
    const { sortId, rowClass, onRowClick } = options;
    const sort = sortId ? state.sorts[sortId] : null;
    const sorted = rows.slice();
    const sortColumn = sort && columns.find((c) => c.key === sort.key && c.value);
    if (sortColumn) {
      const direction = sort.direction === "ascending" ? 1 : -1;
      sorted.sort((a, b) => compareValues(sortColumn.value(a), sortColumn.value(b)) * direction);
    }
    const rerender = (th) =>
      th.closest(".table-wrap").replaceChildren(table(columns, rows, options));
    const headers = columns.map((column) => {
      const sortable = Boolean(sortId && column.value);
      const th = el(
        "th",
        {
          class: [column.num ? "num" : "", sortable ? "sortable" : ""].join(" ").trim() || null,
          scope: "col",
          title: column.title,
          "aria-sort": sort && sort.key === column.key ? sort.direction : null,
          tabindex: sortable ? 0 : null,
        },
        column.label
      );
      if (sortable) {
        const toggle = () => {
          state.sorts[sortId] = nextSort(state.sorts[sortId], column);
          rerender(th);
        };
        th.addEventListener("click", toggle);
        th.addEventListener("keydown", (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            toggle();
          }
        });
      }
      return th;
    });
    const body = sorted.map((row) => {
      const cells = columns.map((column) => {
        const content = column.cell ? column.cell(row) : column.value(row);
        const classes = [column.num ? "num" : "", column.className || ""].join(" ").trim();
        return el("td", { class: classes || null }, content ?? "–");
      });
      const tr = el("tr", { class: rowClass ? rowClass(row) : null }, cells);
      if (onRowClick) {
        tr.classList.add("clickable");
        tr.addEventListener("click", () => onRowClick(row));
      }
      return tr;
    });
    return el("table", null, el("thead", null, el("tr", null, headers)), el("tbody", null, body));
  }

  function nextSort(current, column) {
    if (!current || current.key !== column.key) {
      return { key: column.key, direction: column.firstDirection || "descending" };
    }
    const direction = current.direction === "descending" ? "ascending" : "descending";
    return { key: column.key, direction };
  }

  function compareValues(a, b) {
    const missing = (v) => v === null || v === undefined || (typeof v === "number" && isNaN(v));
    if (missing(a) || missing(b)) return missing(a) === missing(b) ? 0 : missing(a) ? -1 : 1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b));
  }

  // ===================================================================== shared state

  function selectedPair() {
    return state.pairs.find((p) => pairKey(p.feature_set, p.model_type) === state.pair) || null;
  }

  const championPairs = () => state.pairs.filter((p) => p.champion);

  const noModels = () =>
    emptyState(
      "No models yet: run ",
      code("btcmlops demo"),
      " for a complete example, or train one with ",
      code("btcmlops train --feature-set vader --promote"),
      "."
    );

  /** What every view needs: the service's health (title bar) and the models (picker). */
  async function refreshCommon() {
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

  // ===================================================================== overview

  async function renderOverview() {
    const pairs = championPairs();
    const pair = selectedPair();
    const ofPair = (p, extra) => ({
      feature_set: p.feature_set,
      model_type: p.model_type,
      ...extra,
    });
    const timeline = (p) => load("/predictions/timeline", ofPair(p, { days: 30, window: 48 }));
    const accuracy = (p) => load("/predictions/accuracy", ofPair(p, { days: 7 }));
    const [statistics, prices, recent, timelines, accuracies] = await Promise.all([
      load("/predictions/statistics"),
      load("/market/prices", { hours: 720 }),
      load("/predictions/recent", { limit: 500 }),
      Promise.all(pairs.map(timeline)),
      Promise.all(pairs.map(accuracy)),
    ]);
    const priceRows = (prices && prices.prices) || [];
    const selected = pairs.indexOf(pair);
    renderOverviewKpis(statistics && statistics.statistics, priceRows, recent);
    renderPriceChart(priceRows, selected >= 0 ? timelines[selected] : null, pair);
    renderAccuracyChart(pairs, timelines);
    renderModelSummary(pairs, timelines, accuracies);
    renderLatency(recent);
  }

  function percentile(sorted, q) {
    const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[index];
  }

  function latencySummary(recent) {
    const sorted = ((recent && recent.predictions) || [])
      .map((p) => p.response_time_ms)
      .filter(isNumber)
      .sort((a, b) => a - b);
    if (!sorted.length) return "no predictions yet";
    const [p50, p95] = [0.5, 0.95].map((q) => milliseconds(percentile(sorted, q)));
    return `p50 ${p50} · p95 ${p95}`;
  }

  function renderOverviewKpis(totals, priceRows, recent) {
    const cards = [];
    const last = priceRows[priceRows.length - 1];
    if (last) {
      const dayAgo = priceRows[priceRows.length - 25];
      const change = dayAgo ? last.close / dayAgo.close - 1 : null;
      const detail = isNumber(change)
        ? `${change >= 0 ? "+" : ""}${pct(change, 2)} in 24 h`
        : shortTime(last.ts);
      cards.push(kpi("BTC close", money(last.close), detail));
    }
    if (totals) {
      cards.push(
        kpi(
          "Predictions",
          count(totals.total_predictions),
          `vader ${count(totals.vader_predictions)} · finbert ${count(totals.finbert_predictions)}`
        ),
        kpi(
          "Realised accuracy",
          pct(totals.overall_accuracy),
          `${count(totals.correct_predictions)} of ${count(totals.predictions_with_outcomes)} ` +
            "with outcomes"
        ),
        kpi(
          "Pending outcomes",
          count(totals.pending_outcomes),
          `expired ${count(totals.expired_outcomes)}`
        ),
        kpi("Avg response", milliseconds(totals.avg_response_time_ms), latencySummary(recent))
      );
    }
    fill("overview-kpis", ...cards);
  }

  function renderPriceChart(priceRows, timeline, pair) {
    const traces = [];
    if (priceRows.length) {
      traces.push({
        type: "scatter",
        mode: "lines",
        name: "BTC close",
        x: priceRows.map((row) => row.ts),
        y: priceRows.map((row) => row.close),
        line: { color: "#334155", width: 1.4 },
        hovertemplate: "%{x|%Y-%m-%d %H:%M} UTC<br>close $%{y:,.0f}<extra></extra>",
      });
    }
    traces.push(...predictionMarkers(priceRows, (timeline && timeline.points) || []));
    let range;
    if (priceRows.length) {
      // The last week by default: a month of hourly markers would overlap.
      const end = Date.parse(priceRows[priceRows.length - 1].ts) + 2 * HOUR_MS;
      const start = Math.max(Date.parse(priceRows[0].ts), end - 7 * 24 * HOUR_MS);
      range = [isoTime(start), isoTime(end)];
    }
    const dayButton = (days) => ({
      count: days,
      label: `${days}d`,
      step: "day",
      stepmode: "backward",
    });
    drawChart(
      "chart-price",
      traces,
      layout({
        uirevision: pair ? pairKey(pair.feature_set, pair.model_type) : "none",
        xaxis: {
          type: "date",
          range,
          rangeselector: {
            buttons: [dayButton(1), dayButton(3), dayButton(7), { step: "all", label: "all" }],
            x: 0,
            y: 1.02,
            bgcolor: "#f1f5f9",
            activecolor: "#dbeafe",
          },
        },
        yaxis: {
          title: { text: "USD" },
          tickformat: "$,.0f",
          range: yRangeWithin(priceRows, range),
        },
        margin: { l: 70, r: 18, t: 34, b: 40 },
        legend: { orientation: "h", x: 1, xanchor: "right", y: 1.08 },
      }),
      emptyState(
        "No price bars yet: run ",
        code("btcmlops demo"),
        " or ",
        code("btcmlops ingest simulate"),
        "."
      )
    );
    followXRange(byId("chart-price"), priceRows);
  }

  /** One marker trace per outcome: ▲/▼ the predicted direction, at the close it was made at. */
  function predictionMarkers(priceRows, points) {
    const closeAt = new Map(priceRows.map((row) => [timeKey(row.ts), row.close]));
    const groups = { correct: [], incorrect: [], pending: [] };
    for (const point of points) {
      const close = closeAt.get(timeKey(point.feature_hour));
      if (!isNumber(close)) continue;
      const outcome =
        point.correct === true ? "correct" : point.correct === false ? "incorrect" : "pending";
      groups[outcome].push({ point, close });
    }
    return Object.entries(groups)
      .filter(([, items]) => items.length)
      .map(([outcome, items]) => ({
        type: "scatter",
        mode: "markers",
        name: outcome,
        x: items.map((item) => item.point.feature_hour),
        y: items.map((item) => item.close),
        marker: {
          color: OUTCOME_COLOURS[outcome],
          size: 8,
          symbol: items.map((item) =>
            item.point.prediction === 1 ? "triangle-up" : "triangle-down"
          ),
          line: { color: "#ffffff", width: 0.5 },
        },
        text: items.map((item) => predictionHover(item.point)),
        hovertemplate: "%{text}<extra></extra>",
      }));
  }

  function predictionHover(point) {
    const directions = { 1: "up", 0: "down" };
    const verdict =
      point.correct === true ? "correct" : point.correct === false ? "incorrect" : "pending";
    return [
      `<b>${plotText(shortTime(point.target_hour))}</b> predicted ${directions[point.prediction]}` +
        ` (p up ${pct(point.probability_up)})`,
      `actual ${directions[point.actual_direction] || "not known yet"} · ${verdict}`,
      `model ${plotText(point.model_version)}`,
    ].join("<br>");
  }

  /** Closes inside an x range, padded: plotly scales y over all data, not over what shows. */
  function yRangeWithin(priceRows, range) {
    const [start, end] = range ? range.map((v) => Date.parse(v)) : [-Infinity, Infinity];
    const shown = priceRows.filter((row) => {
      const t = Date.parse(row.ts);
      return t >= start && t <= end;
    });
    if (!shown.length) return undefined;
    const low = Math.min(...shown.map((row) => Math.min(row.low ?? row.close, row.close)));
    const high = Math.max(...shown.map((row) => Math.max(row.high ?? row.close, row.close)));
    const pad = Math.max((high - low) * 0.08, high * 0.002);
    return [low - pad, high + pad];
  }

  /** Keep the price axis fitted to the visible hours as the user zooms or picks a range. */
  function followXRange(box, priceRows) {
    box.priceRows = priceRows;
    if (box.followsXRange || !box.on) return;
    box.followsXRange = true;
    box.on("plotly_relayout", (change) => {
      const keys = Object.keys(change);
      if (!keys.some((key) => key.startsWith("xaxis.range") || key === "xaxis.autorange")) return;
      const range = change["xaxis.autorange"] ? null : box.layout.xaxis.range;
      const y = yRangeWithin(box.priceRows, range);
      if (y) Plotly.relayout(box, { "yaxis.range": y });
    });
  }

  function renderAccuracyChart(pairs, timelines) {
    const traces = [];
    const baselines = new Map(); // "kind:value" -> {kind, value, owners}
    let window = null;
    let firstX = null;
    let lastX = null;
    pairs.forEach((pair, index) => {
      const timeline = timelines[index];
      if (!timeline) return;
      window = timeline.window || window;
      const points = timeline.points || [];
      for (const point of points) {
        if (firstX === null || point.target_hour < firstX) firstX = point.target_hour;
        if (lastX === null || point.target_hour > lastX) lastX = point.target_hour;
      }
      traces.push(...accuracyTraces(pair, points));
      for (const [kind, value] of Object.entries(timeline.baselines || {})) {
        if (!isNumber(value)) continue;
        const key = `${kind}:${value.toFixed(4)}`;
        if (!baselines.has(key)) baselines.set(key, { kind, value, owners: [] });
        baselines.get(key).owners.push(pairLabel(pair.feature_set, pair.model_type));
      }
    });
    if (firstX !== null) traces.push(...baselineTraces([...baselines.values()], firstX, lastX));
    byId("accuracy-window-note").textContent = window
      ? `each point: the last ${window} resolved predictions; band: 95% interval`
      : "";
    const empty = championPairs().length
      ? emptyState(
          "No predictions with outcomes yet: run ",
          code("btcmlops demo"),
          ", or wait an hour for the first outcome."
        )
      : noModels();
    const coinFlip = {
      type: "line",
      xref: "paper",
      x0: 0,
      x1: 1,
      y0: 0.5,
      y1: 0.5,
      line: { color: "#cbd5e1", width: 1 },
    };
    drawChart(
      "chart-accuracy",
      traces,
      layout({
        uirevision: "accuracy",
        xaxis: { type: "date" },
        yaxis: { tickformat: ".0%", title: { text: "accuracy" } },
        shapes: [coinFlip],
        legend: { orientation: "v", x: 1.01, y: 1, font: { size: 11 }, tracegroupgap: 8 },
        margin: { l: 60, r: 18, t: 8, b: 40 },
      }),
      empty
    );
  }

  /** A pair's rolling accuracy, its 95% band and its label-free estimate. */
  function accuracyTraces(pair, points) {
    const colour = pairColour(pair.feature_set, pair.model_type);
    const name = pairLabel(pair.feature_set, pair.model_type);
    const resolved = points.filter((p) => isNumber(p.rolling_accuracy));
    const banded = resolved.filter((p) => isNumber(p.rolling_low) && isNumber(p.rolling_high));
    const estimated = points.filter((p) => isNumber(p.estimated_accuracy));
    const hours = (list) => list.map((p) => p.target_hour);
    const traces = [];
    if (banded.length) {
      const edge = {
        type: "scatter",
        mode: "lines",
        line: { width: 0, color: colour },
        hoverinfo: "skip",
        showlegend: false,
        legendgroup: name,
        x: hours(banded),
      };
      traces.push(
        { ...edge, y: banded.map((p) => p.rolling_high) },
        // Filled down to the previous trace: the band between high and low.
        {
          ...edge,
          y: banded.map((p) => p.rolling_low),
          fill: "tonexty",
          fillcolor: withAlpha(colour, 0.14),
        }
      );
    }
    traces.push({
      type: "scatter",
      mode: "lines",
      name,
      legendgroup: name,
      x: hours(resolved),
      y: resolved.map((p) => p.rolling_accuracy),
      line: { color: colour, width: 2.2 },
      customdata: resolved.map((p) => [p.rolling_low, p.rolling_high]),
      hovertemplate:
        `${plotText(name)}<br>%{x|%m-%d %H:%M}: %{y:.1%} ` +
        "[%{customdata[0]:.1%}, %{customdata[1]:.1%}]<extra></extra>",
    });
    if (estimated.length) {
      traces.push({
        type: "scatter",
        mode: "lines",
        name: `${name}, label-free estimate`,
        legendgroup: name,
        x: hours(estimated),
        y: estimated.map((p) => p.estimated_accuracy),
        line: { color: colour, width: 1.4, dash: "dot" },
        hovertemplate:
          `${plotText(name)}: estimate from its own probabilities %{y:.1%}<extra></extra>`,
      });
    }
    return traces;
  }

  /** The baselines as flat lines; pairs that share a value share a line. */
  function baselineTraces(baselines, firstX, lastX) {
    const names = { majority_class: "majority-class baseline", last_hour: "last-hour baseline" };
    const dashes = { majority_class: "dash", last_hour: "dashdot" };
    const perKind = new Map();
    for (const { kind } of baselines) perKind.set(kind, (perKind.get(kind) || 0) + 1);
    return baselines.map(({ kind, value, owners }) => {
      const label = names[kind] || kind;
      const name = perKind.get(kind) > 1 ? `${label} (${owners.join(", ")})` : label;
      return {
        type: "scatter",
        mode: "lines",
        name,
        x: [firstX, lastX],
        y: [value, value],
        line: { color: "#6b7280", width: 1.3, dash: dashes[kind] || "dot" },
        hovertemplate: `${plotText(name)}: %{y:.1%}<extra></extra>`,
      };
    });
  }

  function renderModelSummary(pairs, timelines, accuracies) {
    if (!pairs.length) {
      fill("overview-models", noModels());
      return;
    }
    const rows = pairs.map((pair, index) => {
      const points = (timelines[index] && timelines[index].points) || [];
      const latest = [...points].reverse().find((p) => isNumber(p.estimated_accuracy));
      return {
        pair,
        stats: (accuracies[index] && accuracies[index].accuracy_stats) || {},
        estimate: latest ? latest.estimated_accuracy : null,
        baselines: (timelines[index] && timelines[index].baselines) || {},
      };
    });
    const columns = [
      {
        key: "model",
        label: "Model",
        cell: (r) => modelCell(r.pair.feature_set, r.pair.model_type),
      },
      {
        key: "accuracy",
        label: "Realised",
        num: true,
        className: "nowrap",
        title: "7-day realised accuracy with its 95% interval",
        cell: (r) => [pct(r.stats.accuracy), sub(interval(r.stats.accuracy_interval_95))],
      },
      {
        key: "outcomes",
        label: "Outcomes",
        num: true,
        cell: (r) => [
          count(r.stats.total_predictions),
          sub(`${count(r.stats.pending_predictions)} pending`),
        ],
      },
      {
        key: "estimate",
        label: "Estimate",
        num: true,
        title: "label-free: what the model's own probabilities say its accuracy is",
        cell: (r) => [pct(r.estimate), sub("label-free")],
      },
      {
        key: "baselines",
        label: "Baselines",
        num: true,
        className: "nowrap",
        title: "majority-class / last-hour baseline over the same hours",
        cell: (r) => [
          `${pct(r.baselines.majority_class)} / ${pct(r.baselines.last_hour)}`,
          sub("majority / last"),
        ],
      },
    ];
    fill("overview-models", table(columns, rows));
  }

  function renderLatency(recent) {
    const byPair = new Map();
    for (const p of (recent && recent.predictions) || []) {
      if (!isNumber(p.response_time_ms)) continue;
      const key = pairKey(p.feature_set, p.model_type);
      if (!byPair.has(key)) byPair.set(key, { pair: p, values: [] });
      byPair.get(key).values.push(p.response_time_ms);
    }
    const traces = [...byPair.values()].map(({ pair, values }) => ({
      type: "histogram",
      name: pairLabel(pair.feature_set, pair.model_type),
      x: values,
      marker: { color: withAlpha(pairColour(pair.feature_set, pair.model_type), 0.75) },
      nbinsx: 40,
      hovertemplate: "%{x} ms: %{y} predictions<extra></extra>",
    }));
    drawChart(
      "chart-latency",
      traces,
      layout({
        barmode: "overlay",
        xaxis: { title: { text: "response time, ms" } },
        yaxis: { title: { text: "predictions" } },
        showlegend: traces.length > 1,
        legend: { orientation: "h", x: 1, xanchor: "right", y: 1.15 },
        margin: { l: 60, r: 18, t: 18, b: 44 },
      }),
      emptyState("No predictions yet: run ", code("btcmlops demo"), ".")
    );
  }

  // ===================================================================== drift

  async function renderDrift() {
    const pair = selectedPair();
    if (!pair) {
      for (const id of ["chart-drift-history", "chart-distribution"]) {
        drawChart(id, [], {}, noModels());
      }
      for (const id of ["drift-kpis", "drift-live", "drift-recommendations", "model-drift"]) {
        fill(id);
      }
      byId("drift-stored-note").textContent = "";
      byId("drift-live-note").textContent = "";
      fill("drift-table", noModels());
      return;
    }
    const featureSets = [...new Set(state.pairs.map((p) => p.feature_set))];
    const ofPair = { feature_set: pair.feature_set, model_type: pair.model_type };
    const [histories, latest, liveFeatures, liveModel] = await Promise.all([
      Promise.all(featureSets.map((fs) => load("/drift/history", { feature_set: fs, days: 30 }))),
      load("/drift/latest", ofPair),
      load("/drift/features", { feature_set: pair.feature_set }),
      load("/drift/model", ofPair),
    ]);
    const live = {
      features: liveFeatures && liveFeatures.drift_analysis,
      model: liveModel && liveModel.drift_analysis,
    };
    // The view opens on the latest stored daily check (its windows are complete); the live
    // window, still filling, is shown beside it. Before any check is stored, the live window
    // is all there is.
    const stored = latest && latest.status === "stored" ? latest : null;
    const shown = stored ? { features: stored.features, model: stored.model } : live;
    const analysis = shown.features;
    const tested = ((analysis && analysis.drift_results) || []).filter((r) => r.tested !== false);
    if (!tested.some((r) => r.feature === state.driftFeature)) {
      state.driftFeature = tested.length ? tested[0].feature : null; // the most drifted
    }
    state.driftWindows = analysis
      ? {
          reference_days: analysis.reference_period_days,
          current_days: analysis.current_period_days,
        }
      : {};
    renderStoredCheck(latest);
    renderLiveWindow(live);
    renderDriftHistory(featureSets, histories);
    renderDriftTable(analysis, stored ? "daily check" : "live window");
    renderRecommendations(stored && stored.summary, latest);
    renderModelDrift(shown.model);
    renderFeaturePicker(tested);
    await renderDistribution(pair);
  }

  /** "02-27 00:00 → 03-01 00:00 UTC": the current window of a check. */
  function currentWindow(analysis) {
    const windows = (analysis && analysis.windows) || {};
    if (!windows.current_start) return "";
    return `${shortTime(windows.current_start)} → ${shortTime(windows.current_end)} UTC`;
  }

  function featureDriftCard(analysis) {
    if (analysis.status === "success") {
      return kpi(
        "Feature drift",
        pill(analysis.drift_severity),
        `${count(analysis.significant_drift_count)} of ${count(analysis.features_tested)} ` +
          "features drifted"
      );
    }
    const needed = (analysis.method && analysis.method.min_samples) || null;
    const rows = `${count(analysis.reference_samples)} / ${count(analysis.current_samples)} rows`;
    return kpi(
      "Feature drift",
      pill(analysis.status),
      needed ? `${rows}, ${count(needed)} needed on each side` : rows
    );
  }

  function modelDriftCard(analysis) {
    const accuracy = analysis.accuracy || {};
    const detail = isNumber(accuracy.drop)
      ? `accuracy drop ${pct(accuracy.drop)} (p ${pValue(accuracy.p_value)})`
      : `${count(analysis.current_predictions)} current outcomes, ` +
        `${count(analysis.min_predictions)} needed`;
    return kpi("Model drift", pill(analysis.drift_severity || analysis.status), detail);
  }

  function renderStoredCheck(latest) {
    const note = byId("drift-stored-note");
    note.textContent = "";
    if (!latest) {
      fill("drift-kpis", emptyState("The latest daily check could not be loaded (see above)."));
      return;
    }
    if (latest.status !== "stored") {
      fill("drift-kpis", emptyState(latest.message || "No daily drift check stored yet."));
      return;
    }
    const { summary, features, model } = latest;
    note.textContent = `checked ${utc(latest.checked_at)}`;
    const cards = [
      kpi(
        "Overall severity",
        pill(summary.overall_severity || summary.status),
        pairLabel(summary.feature_set, summary.model_type)
      ),
    ];
    if (features) {
      cards.push(
        featureDriftCard(features),
        kpi(
          "Windows",
          `${count(features.reference_samples)} / ${count(features.current_samples)}`,
          `rows: reference ${features.reference_period_days} d / ` +
            `current ${features.current_period_days} d`
        )
      );
    }
    // The label-free estimate is in the model drift facts below.
    if (model) cards.push(modelDriftCard(model));
    fill("drift-kpis", ...cards);
  }

  /** The API's rolling window up to now: incomplete early in a day, so only shown beside. */
  function renderLiveWindow(live) {
    const note = byId("drift-live-note");
    note.textContent = "";
    const cards = [];
    if (live.features) {
      const reference = live.features.reference_period_days;
      note.textContent =
        `current ${currentWindow(live.features)} · reference ${reference} d before`;
      cards.push(featureDriftCard(live.features));
    }
    if (live.model) cards.push(modelDriftCard(live.model));
    if (!cards.length) cards.push(emptyState("The live window could not be loaded (see above)."));
    fill("drift-live", ...cards);
  }

  /** Severity word -> level, lowest 0, in the order the API serves (GET /drift/history). */
  function severityLevels(histories) {
    const order = histories
      .map((history) => history && history.severity_order)
      .find(Array.isArray);
    return new Map((order || []).map((word, level) => [word, level]));
  }

  function renderDriftHistory(featureSets, histories) {
    const levels = severityLevels(histories);
    const traces = [];
    const noData = { x: [], text: [] };
    featureSets.forEach((featureSet, index) => {
      const reports = ((histories[index] && histories[index].reports) || [])
        .slice()
        .sort((a, b) => (a.checked_at < b.checked_at ? -1 : 1));
      const byKind = new Map();
      for (const report of reports) {
        const level = levels.get(report.severity);
        if (level === undefined) {
          // "Not enough data" is a status, not a severity: drawn on a row of its own.
          noData.x.push(report.checked_at);
          noData.text.push(`${plotText(report.feature_set)} ${plotText(report.kind)}: ` +
            plotText(report.status));
          continue;
        }
        const kind =
          report.kind === "model" ? `model ${report.model_type || ""}`.trim() : report.kind;
        if (!byKind.has(kind)) byKind.set(kind, []);
        byKind.get(kind).push({ report, level });
      }
      const colour = FEATURE_SET_COLOURS[featureSet] || "#475467";
      for (const [kind, items] of byKind) {
        traces.push({
          type: "scatter",
          mode: "lines+markers",
          name: `${featureSet} ${kind}`,
          x: items.map((item) => item.report.checked_at),
          y: items.map((item) => item.level),
          line: {
            color: colour,
            shape: "hv",
            width: kind === "feature" ? 2.2 : 1.4,
            dash: kind === "feature" ? "solid" : kind === "summary" ? "dash" : "dot",
          },
          marker: { size: 6, color: colour },
          text: items.map((item) => driftHover(item.report)),
          hovertemplate: "%{text}<extra></extra>",
        });
      }
    });
    if (noData.x.length) {
      traces.push({
        type: "scatter",
        mode: "markers",
        name: "not enough data",
        x: noData.x,
        y: noData.x.map(() => -1),
        marker: { symbol: "circle-open", color: "#98a2b3", size: 7 },
        text: noData.text,
        hovertemplate: "%{x|%m-%d %H:%M}<br>%{text}<extra></extra>",
      });
    }
    const band = (y0, y1, fillcolor) => ({
      type: "rect",
      xref: "paper",
      x0: 0,
      x1: 1,
      y0,
      y1,
      fillcolor,
      line: { width: 0 },
      layer: "below",
    });
    const shaded = [
      ["medium", "rgba(245, 158, 11, 0.07)"],
      ["high", "rgba(220, 38, 38, 0.07)"],
    ].filter(([word]) => levels.has(word));
    drawChart(
      "chart-drift-history",
      traces,
      layout({
        uirevision: "drift-history",
        xaxis: { type: "date" },
        yaxis: {
          tickvals: [-1, ...levels.values()],
          ticktext: ["no data", ...levels.keys()],
          range: [-1.5, levels.size - 0.5],
          title: { text: "severity" },
        },
        shapes: shaded.map(([word, colour]) =>
          band(levels.get(word) - 0.5, levels.get(word) + 0.5, colour)
        ),
      }),
      emptyState(
        "No drift checks recorded yet: the scheduler runs them daily (",
        code("btcmlops demo"),
        " replays them)."
      )
    );
  }

  function driftHover(report) {
    const lines = [
      `<b>${plotText(utc(report.checked_at))}</b>`,
      `${plotText(report.kind)} check: ${plotText(report.severity)}`,
    ];
    if (isNumber(report.significant_drift_count)) {
      lines.push(`${report.significant_drift_count} of ${report.features_tested} features drifted`);
    }
    if (isNumber(report.accuracy_drop)) lines.push(`accuracy drop ${pct(report.accuracy_drop)}`);
    return lines.join("<br>");
  }

  const DRIFT_COLUMNS = [
    {
      key: "feature",
      label: "Feature",
      value: (r) => r.feature,
      firstDirection: "ascending",
      cell: (r) => [r.feature, sub(`mean ${num(r.reference_mean)} → ${num(r.current_mean)}`)],
    },
    { key: "psi", label: "PSI", num: true, value: (r) => r.psi, cell: (r) => num(r.psi) },
    {
      key: "psi_expected",
      label: "Noise level",
      num: true,
      title: "PSI expected with no drift at these sample sizes",
      value: (r) => r.psi_expected,
      cell: (r) => num(r.psi_expected),
    },
    {
      key: "psi_excess",
      label: "PSI above noise",
      num: true,
      value: (r) => psiAboveNoise(r),
      cell: (r) => num(psiAboveNoise(r)),
    },
    {
      key: "ks",
      label: "KS statistic",
      num: true,
      value: (r) => r.ks_statistic,
      cell: (r) => num(r.ks_statistic),
    },
    {
      key: "p_adjusted",
      label: "Adjusted p",
      num: true,
      title: "KS p-value after Benjamini–Hochberg across features",
      value: (r) => r.ks_pvalue_adjusted,
      cell: (r) => pValue(r.ks_pvalue_adjusted),
      firstDirection: "ascending",
    },
    {
      key: "verdict",
      label: "Verdict",
      value: (r) => (r.drift_detected ? 1 : 0),
      cell: (r) => (r.drift_detected ? pill("drift") : pill("stable", "good")),
    },
  ];

  function psiAboveNoise(result) {
    return isNumber(result.psi_noise_corrected) ? result.psi_noise_corrected : result.psi_excess;
  }

  function renderDriftTable(analysis, source) {
    const note = byId("drift-table-note");
    note.textContent = "";
    if (!analysis) {
      fill("drift-table", emptyState(`The ${source} could not be loaded (see above).`));
      return;
    }
    if (analysis.status !== "success") {
      fill(
        "drift-table",
        emptyState(
          `Not enough data for a drift check: ${count(analysis.reference_samples)} reference ` +
            `and ${count(analysis.current_samples)} current rows. ${analysis.message || ""} Run `,
          code("btcmlops demo"),
          " or wait for more hours."
        )
      );
      return;
    }
    note.textContent =
      `${source} of ${utc(analysis.timestamp)} · ${analysis.reference_period_days} d vs ` +
      `${analysis.current_period_days} d · most drifted first`;
    const rows = (analysis.drift_results || []).filter((r) => r.tested !== false);
    fill(
      "drift-table",
      table(DRIFT_COLUMNS, rows, {
        sortId: "drift-table",
        rowClass: (r) => (r.drift_detected ? "drifted" : null),
        onRowClick: (r) => chooseDriftFeature(r.feature),
      })
    );
  }

  function chooseDriftFeature(feature) {
    state.driftFeature = feature;
    byId("drift-feature-select").value = feature;
    const pair = selectedPair();
    if (pair) renderDistribution(pair).then(renderBanner);
  }

  function renderRecommendations(summary, latest) {
    const items = (summary && summary.recommendations) || [];
    const none = summary
      ? "Nothing to act on."
      : (latest && latest.message) || "No drift summary available.";
    fill(
      "drift-recommendations",
      ...(items.length
        ? items.map((text) => el("li", null, text))
        : [el("li", { class: "muted" }, none)])
    );
  }

  function renderModelDrift(analysis) {
    if (!analysis) {
      fill("model-drift", el("p", { class: "muted" }, "Model drift could not be loaded."));
      return;
    }
    const accuracy = analysis.accuracy || {};
    const calibration = analysis.calibration || {};
    const estimate = analysis.estimated_accuracy || {};
    const withInterval = (value, bounds) => `${pct(value)} ${interval(bounds)}`.trim();
    fill(
      "model-drift",
      fact("Status", pill(analysis.status)),
      fact(
        "Outcomes ref / current",
        `${count(analysis.reference_predictions)} / ${count(analysis.current_predictions)}`
      ),
      fact("Accuracy reference", withInterval(accuracy.reference, accuracy.reference_interval)),
      fact("Accuracy current", withInterval(accuracy.current, accuracy.current_interval)),
      fact("Drop (p-value)", `${pct(accuracy.drop)} (${pValue(accuracy.p_value)})`),
      fact("ECE ref → cur", `${num(calibration.reference_ece)} → ${num(calibration.current_ece)}`),
      fact(
        "Brier ref → cur",
        `${num(calibration.reference_brier)} → ${num(calibration.current_brier)}`
      ),
      fact("Label-free estimate", `${pct(estimate.value)} over ${count(estimate.predictions)}`)
    );
  }

  function renderFeaturePicker(tested) {
    const options = tested.map((r) =>
      el("option", { value: r.feature }, r.drift_detected ? `${r.feature} (drift)` : r.feature)
    );
    if (!options.length) options.push(el("option", { value: "" }, "no features"));
    const select = byId("drift-feature-select");
    select.replaceChildren(...options);
    select.value = state.driftFeature || "";
  }

  /** Bar centres and widths from bin edges; an open outer edge (null) takes its neighbour's. */
  function bins(edges, binCount) {
    const centres = [];
    const widths = [];
    for (let i = 0; i < binCount; i += 1) {
      let low = edges[i];
      let high = edges[i + 1];
      const inner = isNumber(low) && isNumber(high) ? high - low : null;
      const neighbour = isNumber(edges[i + 2]) && isNumber(high) ? edges[i + 2] - high
        : isNumber(edges[i - 1]) && isNumber(low) ? low - edges[i - 1] : 1;
      if (!isNumber(low)) low = high - neighbour;
      if (!isNumber(high)) high = low + neighbour;
      centres.push((low + high) / 2);
      widths.push((inner ?? neighbour) * 0.96);
    }
    return { centres, widths };
  }

  async function renderDistribution(pair) {
    const feature = state.driftFeature;
    if (!feature) {
      drawChart("chart-distribution", [], {}, emptyState("Choose a feature once a check has run."));
      return;
    }
    // The windows have the shown check's lengths, ending now.
    const result = await load("/drift/distribution", {
      feature_set: pair.feature_set,
      feature,
      ...state.driftWindows,
    });
    if (!result || state.driftFeature !== feature) return; // a newer choice is on its way
    const reference = result.reference_share || [];
    const current = result.current_share || [];
    const { centres, widths } = bins(result.edges || [], reference.length);
    const colour = pairColour(pair.feature_set, pair.model_type);
    const bars = (name, shares, marker) => ({
      type: "bar",
      name,
      x: centres,
      y: shares,
      width: widths,
      marker,
      hovertemplate: `%{x:.4g}: %{y:.1%} of ${name.split(" ")[0]}<extra></extra>`,
    });
    drawChart(
      "chart-distribution",
      [
        bars(`reference (${count(result.reference_samples)} rows)`, reference, {
          color: "rgba(100, 116, 139, 0.55)",
        }),
        bars(`current (${count(result.current_samples)} rows)`, current, {
          color: withAlpha(colour, 0.55),
          line: { color: colour, width: 1 },
        }),
      ],
      layout({
        barmode: "overlay",
        bargap: 0,
        xaxis: { title: { text: plotText(result.feature || feature) } },
        yaxis: { tickformat: ".0%", title: { text: "share of rows" } },
        legend: { orientation: "h", x: 1, xanchor: "right", y: 1.12 },
        margin: { l: 60, r: 18, t: 24, b: 44 },
      }),
      emptyState("No distribution for this feature.")
    );
  }

  // ===================================================================== models

  async function renderModels() {
    const [versions, history, shadows] = await Promise.all([
      load("/models/versions"),
      load("/models/history"),
      load("/retrain/shadows"),
    ]);
    const all = (versions && versions.versions) || [];
    const changes = (history && history.history) || [];
    const roles = shadowRoles(shadows);
    renderFallbackNotices();
    renderChampions(all, changes);
    renderModelShadows(all, shadows);
    renderChampionTimeline(changes);
    renderImportances(all);
    renderRegistry(all, roles);
  }

  /** version -> "challenger" | "previous_champion", from GET /retrain/shadows. */
  function shadowRoles(report) {
    const roles = new Map();
    for (const pair of (report && report.pairs) || []) {
      for (const shadow of pair.shadows || []) roles.set(shadow.version, shadow.role);
    }
    return roles;
  }

  /** The versions predicting in shadow, each with its role and the evidence it has so far. */
  function renderModelShadows(all, report) {
    const byVersion = new Map(all.map((v) => [v.version, v]));
    const rows = ((report && report.pairs) || []).flatMap((pair) =>
      (pair.shadows || []).map((shadow) => ({ ...shadow, info: byVersion.get(shadow.version) }))
    );
    if (!rows.length) {
      const why = report ? "No model is predicting in shadow." : "Shadows could not be loaded.";
      fill("models-shadows", el("p", { class: "muted small" }, why));
      return;
    }
    const columns = [
      {
        key: "model",
        label: "Model",
        cell: (s) => (s.info ? versionModelCell(s.info) : s.version),
      },
      {
        key: "version",
        label: "Version",
        className: "version",
        cell: (s) => {
          const info = s.info || {};
          return el(
            "span",
            { class: "shadow-version", title: s.version },
            shortVersion(s.version, info.feature_set, info.model_type)
          );
        },
      },
      {
        key: "role",
        label: "Role",
        cell: (s) => [
          rolePill(s.role),
          sub(s.role === "previous_champion" ? "judged for rollback" : "judged for promotion"),
        ],
      },
      {
        key: "test",
        label: "Test accuracy",
        num: true,
        cell: (s) => pct(s.info ? s.info.test_accuracy : null),
      },
      {
        key: "evidence",
        label: "Evidence",
        num: true,
        className: "nowrap",
        title:
          "a challenger: its wins on the discordant hours against the wins the trial needs at " +
          "this look; the previous champion: its rollback e-value against the one needed",
        cell: (s) => shadowEvidenceCell(s),
      },
    ];
    fill("models-shadows", table(columns, rows));
  }

  /** One notice per pair that serves a declared naive baseline, with the server's words. */
  function renderFallbackNotices() {
    const notices = state.pairs
      .filter((p) => p.fallback)
      .map((p) =>
        el(
          "div",
          {
            class: "fallback-notice",
            role: "status",
            "data-pair": pairKey(p.feature_set, p.model_type),
          },
          el("strong", null, `Declared fallback · ${pairLabel(p.feature_set, p.model_type)}:`),
          " ",
          p.fallback
        )
      );
    fill("models-fallbacks", ...notices);
  }

  function renderChampions(all, changes) {
    const champions = all.filter((v) => v.status === "champion");
    if (!champions.length) {
      fill("models-champions", noModels());
      return;
    }
    const ofPair = (v) =>
      changes.filter((c) => c.feature_set === v.feature_set && c.model_type === v.model_type);
    const lastChange = (v) => ofPair(v).pop();
    // What a rollback would return to: the version this champion replaced when it was
    // promoted (a rollback is not itself something to return to), as the registry does.
    const rollbackTarget = (v) => {
      const arrival = ofPair(v)
        .filter((c) => c.version === v.version && !c.action.endsWith("rollback"))
        .pop();
      return arrival ? arrival.previous_version : null;
    };
    const columns = [
      { key: "model", label: "Model", cell: (v) => modelCell(v.feature_set, v.model_type) },
      {
        key: "version",
        label: "Champion",
        className: "version",
        cell: (v) => [
          el(
            "span",
            {
              class: "champion-version",
              title: v.version,
              "data-pair": pairKey(v.feature_set, v.model_type),
            },
            shortVersion(v.version, v.feature_set, v.model_type)
          ),
          kindTag(v),
        ],
      },
      {
        key: "test",
        label: "Test accuracy",
        num: true,
        cell: (v) => [pct(v.test_accuracy), sub(interval(v.test_accuracy_ci))],
      },
      {
        key: "since",
        label: "Since",
        cell: (v) => {
          const change = lastChange(v);
          if (!change) return "–";
          return [
            shortTime(change.changed_at),
            sub(`${change.action} by ${change.actor}`),
            clamped(change.reason, "reason"),
          ];
        },
      },
      {
        key: "action",
        label: "",
        cell: (v) => {
          const target = rollbackTarget(v);
          return el(
            "button",
            {
              type: "button",
              class: "small danger rollback-button",
              "data-pair": pairKey(v.feature_set, v.model_type),
              disabled: !target,
              title: target ? `back to ${target}` : "nothing to roll back to: the first champion",
              onclick: () => rollback(v, target),
            },
            "Roll back"
          );
        },
      },
    ];
    fill("models-champions", table(columns, champions));
  }

  async function rollback(champion, target) {
    const label = pairLabel(champion.feature_set, champion.model_type);
    const result = await runAction({
      label: `rollback ${label}`,
      title: "Roll back the champion",
      text: `Re-point the champion of ${label} from ${champion.version} back to ${target}.`,
      confirmLabel: "Roll back",
      askReason: true,
      danger: true,
      method: "POST",
      path: "/models/rollback",
      params: { feature_set: champion.feature_set, model_type: champion.model_type },
    });
    if (result) {
      notify(result.message || "rolled back");
      await refresh();
    }
  }

  async function promote(version) {
    const label = pairLabel(version.feature_set, version.model_type);
    const result = await runAction({
      label: `promote ${version.version}`,
      title: "Promote a version",
      text: `Make ${version.version} the champion of ${label}; serving switches within seconds.`,
      confirmLabel: "Promote",
      askReason: true,
      method: "POST",
      path: "/models/promote",
      params: { version: version.version },
    });
    if (result) {
      notify(result.message || "promoted");
      await refresh();
    }
  }

  function renderChampionTimeline(changes) {
    const byPair = new Map();
    for (const change of changes) {
      const key = pairKey(change.feature_set, change.model_type);
      if (!byPair.has(key)) byPair.set(key, []);
      byPair.get(key).push(change);
    }
    const symbols = {
      promote: "circle",
      deploy: "star",
      rollback: "triangle-left",
      auto_rollback: "x",
      fallback: "square",
    };
    const traces = [];
    for (const moves of byPair.values()) {
      const { feature_set: featureSet, model_type: modelType } = moves[0];
      const colour = pairColour(featureSet, modelType);
      const x = moves.map((c) => c.changed_at);
      const y = moves.map((c) => shortVersion(c.version, featureSet, modelType));
      // The step line runs on to now: the last champion is still serving.
      const stepX = state.serverNow > x[x.length - 1] ? [...x, state.serverNow] : x;
      const stepY = stepX.length > y.length ? [...y, y[y.length - 1]] : y;
      traces.push(
        {
          type: "scatter",
          mode: "lines",
          x: stepX,
          y: stepY,
          showlegend: false,
          hoverinfo: "skip",
          line: { color: withAlpha(colour, 0.5), shape: "hv", width: 2 },
        },
        {
          type: "scatter",
          mode: "markers",
          name: pairLabel(featureSet, modelType),
          x,
          y,
          marker: {
            color: colour,
            size: 11,
            symbol: moves.map((c) => symbols[c.action] || "circle"),
            line: { color: "#ffffff", width: 1 },
          },
          text: moves.map(championMoveHover),
          hovertemplate: "%{text}<extra></extra>",
        }
      );
    }
    drawChart(
      "chart-champions",
      traces,
      layout({
        xaxis: { type: "date" },
        yaxis: { type: "category", tickfont: { family: MONO, size: 11 } },
        margin: { l: 20, r: 18, t: 8, b: 40 },
      }),
      emptyState(
        "No champion has been promoted yet: ",
        code("btcmlops train --promote"),
        " or ",
        code("btcmlops demo"),
        "."
      )
    );
  }

  function championMoveHover(change) {
    return [
      `<b>${plotText(change.action)}</b> ${plotText(utc(change.changed_at))}`,
      plotText(change.version),
      `from ${plotText(change.previous_version || "nothing")}`,
      `by ${plotText(change.actor)}: ${plotText(change.reason || "no reason given")}`,
    ].join("<br>");
  }

  function renderImportances(all) {
    const pair = selectedPair();
    const champion =
      pair &&
      all.find(
        (v) =>
          v.feature_set === pair.feature_set &&
          v.model_type === pair.model_type &&
          v.status === "champion"
      );
    const importances = ((champion && champion.metrics.feature_importances) || [])
      .filter((item) => isNumber(item.importance_mean))
      .sort((a, b) => b.importance_mean - a.importance_mean)
      .slice(0, 18)
      .reverse(); // plotly draws the first bar at the bottom
    const colour = pair ? pairColour(pair.feature_set, pair.model_type) : "#475467";
    const traces = importances.length
      ? [
          {
            type: "bar",
            orientation: "h",
            x: importances.map((item) => item.importance_mean),
            y: importances.map((item) => plotText(item.feature)),
            error_x: {
              type: "data",
              array: importances.map((item) => item.importance_std || 0),
              color: "#94a3b8",
              thickness: 1,
            },
            marker: { color: withAlpha(colour, 0.8) },
            hovertemplate: "%{y}: %{x:.4f}<extra></extra>",
          },
        ]
      : [];
    let empty = noModels();
    if (isBaseline(champion)) {
      empty = emptyState(
        `This champion is a declared ${baselineLabel(champion.baseline_rule)}: ` +
          "a naive rule that reads no features."
      );
    } else if (champion) empty = emptyState("This champion has no recorded feature importances.");
    else if (pair) {
      empty = emptyState(`${pairLabel(pair.feature_set, pair.model_type)} has no champion yet.`);
    }
    drawChart(
      "chart-importances",
      traces,
      layout({
        xaxis: {
          title: { text: "drop in ROC AUC when shuffled" },
          zeroline: true,
          zerolinecolor: "#cbd5e1",
        },
        margin: { l: 20, r: 18, t: 8, b: 44 },
        showlegend: false,
      }),
      empty
    );
  }

  function renderRegistry(all, roles) {
    if (!all.length) {
      fill("models-registry", noModels());
      return;
    }
    const test = (v) => (v.metrics && v.metrics.test) || {};
    const baseline = (v, name) => {
      const baselines = (v.metrics && v.metrics.baselines) || {};
      return baselines[name] ? baselines[name].accuracy : null;
    };
    const promoteButton = (v) =>
      el(
        "button",
        {
          type: "button",
          class: "small promote-button",
          "data-version": v.version,
          onclick: () => promote(v),
        },
        "Promote"
      );
    const columns = [
      {
        key: "version",
        label: "Version",
        className: "version",
        value: (v) => v.created_at,
        cell: (v) =>
          el("span", { title: v.version }, shortVersion(v.version, v.feature_set, v.model_type)),
      },
      {
        key: "model",
        label: "Model",
        value: (v) => pairKey(v.feature_set, v.model_type),
        cell: (v) => versionModelCell(v),
      },
      {
        key: "status",
        label: "Status",
        value: (v) => v.status,
        cell: (v) => [
          pill(v.status),
          v.status === "shadow" ? sub(ROLE_WORDS[roles.get(v.version)] || "") : null,
        ],
      },
      {
        key: "test",
        label: "Test accuracy",
        num: true,
        value: (v) => v.test_accuracy,
        cell: (v) => [
          pct(v.test_accuracy),
          sub(`${interval(v.test_accuracy_ci)} · ${count(test(v).rows)} h`),
        ],
      },
      {
        key: "validation",
        label: "Validation",
        num: true,
        value: (v) => v.validation_accuracy,
        cell: (v) => pct(v.validation_accuracy),
      },
      {
        key: "auc",
        label: "ROC AUC",
        num: true,
        value: (v) => test(v).roc_auc,
        cell: (v) => num(test(v).roc_auc),
      },
      {
        key: "brier",
        label: "Brier",
        num: true,
        value: (v) => test(v).brier_score,
        cell: (v) => num(test(v).brier_score),
      },
      {
        key: "baselines",
        label: "Baselines",
        title: "accuracy of always the majority direction / of repeating the last hour",
        className: "nowrap",
        num: true,
        value: (v) => baseline(v, "majority_class"),
        cell: (v) => `${pct(baseline(v, "majority_class"))} / ${pct(baseline(v, "last_hour"))}`,
      },
      {
        key: "created",
        label: "Created",
        value: (v) => v.created_at,
        cell: (v) => [shortTime(v.created_at), sub(`by ${v.created_by}`)],
      },
      { key: "reason", label: "Reason", cell: (v) => clamped(v.reason) },
      {
        key: "action",
        label: "",
        cell: (v) => (v.status === "champion" ? "" : promoteButton(v)),
      },
    ];
    fill("models-registry", table(columns, all, { sortId: "registry" }));
  }

  // ===================================================================== retraining

  let retrainJob = null; // {job_id, label} while a run started from this page is followed

  async function renderRetraining() {
    const pair = selectedPair();
    byId("retrain-button").disabled = !pair || Boolean(retrainJob);
    const [checks, history, shadows, versions] = await Promise.all([
      pair
        ? load("/retrain/checks", {
            feature_set: pair.feature_set,
            model_type: pair.model_type,
            limit: 50,
          })
        : null,
      load("/retrain/history", { limit: 100 }),
      load("/retrain/shadows"),
      load("/models/versions"),
    ]);
    const runs = (history && history.runs) || [];
    renderRunsChart(runs);
    renderRuns(runs, history);
    renderChecks(pair, checks);
    const kinds = new Map(((versions && versions.versions) || []).map((v) => [v.version, v]));
    renderShadowEvidence(shadows, kinds);
  }

  function accuracyOf(metrics) {
    if (!metrics) return null;
    if (isNumber(metrics.accuracy)) return metrics.accuracy;
    return isNumber(metrics.test_accuracy) ? metrics.test_accuracy : null;
  }

  function renderRunsChart(runs) {
    const finished = runs.filter((r) => isNumber(accuracyOf(r.challenger_metrics))).reverse();
    const withChampion = finished.filter((r) => isNumber(accuracyOf(r.champion_metrics)));
    const connectors = { x: [], y: [] };
    for (const run of withChampion) {
      connectors.x.push(run.started_at, run.started_at, null);
      connectors.y.push(accuracyOf(run.champion_metrics), accuracyOf(run.challenger_metrics), null);
    }
    const traces = [
      {
        type: "scatter",
        mode: "lines",
        x: connectors.x,
        y: connectors.y,
        line: { color: "#cbd5e1", width: 2 },
        hoverinfo: "skip",
        showlegend: false,
      },
    ];
    for (const decision of ["deployed", "kept", "fallback"]) {
      const decidedAs = (r) =>
        ["deployed", "fallback"].includes(r.decision) ? r.decision : "kept";
      const runsDecided = finished.filter((r) => decidedAs(r) === decision);
      if (!runsDecided.length) continue;
      traces.push({
        type: "scatter",
        mode: "markers",
        name: decision === "fallback" ? "naive baseline (fallback)" : `challenger ${decision}`,
        x: runsDecided.map((r) => r.started_at),
        y: runsDecided.map((r) => accuracyOf(r.challenger_metrics)),
        marker: {
          size: 9,
          color: DECISION_COLOURS[decision],
          symbol: runsDecided.map((r) => (r.feature_set === "finbert" ? "square" : "circle")),
        },
        text: runsDecided.map(
          (r) =>
            `${plotText(pairLabel(r.feature_set, r.model_type))}: ` +
            plotText(r.decision_reason || r.decision || "")
        ),
        hovertemplate: "%{text}<br>challenger %{y:.1%}<extra></extra>",
      });
    }
    // Drawn last and hollow, so a challenger that scored the same shows inside it.
    traces.push({
      type: "scatter",
      mode: "markers",
      name: "champion",
      x: withChampion.map((r) => r.started_at),
      y: withChampion.map((r) => accuracyOf(r.champion_metrics)),
      marker: { symbol: "diamond-open", size: 16, color: "#334155", line: { width: 2 } },
      text: withChampion.map((r) => `champion ${plotText(r.champion_version)}`),
      hovertemplate: "%{text}<br>%{y:.1%}<extra></extra>",
    });
    const accuracies = finished.flatMap((r) => [
      accuracyOf(r.challenger_metrics),
      accuracyOf(r.champion_metrics),
    ]);
    const times = finished.map((r) => Date.parse(r.started_at));
    const pad = Math.max((Math.max(...times) - Math.min(...times)) * 0.08, 12 * HOUR_MS);
    const xRange = times.length
      ? [isoTime(Math.min(...times) - pad), isoTime(Math.max(...times) + pad)]
      : undefined;
    drawChart(
      "chart-runs",
      traces,
      layout({
        xaxis: { type: "date", range: xRange },
        yaxis: {
          tickformat: ".0%",
          title: { text: "accuracy" },
          range: paddedRange(accuracies, 0.06, 0, 1),
        },
      }),
      emptyState(
        "No retraining has finished yet: press ",
        el("b", null, "Run retraining"),
        " above, or let the scheduler trigger one."
      )
    );
  }

  const RUN_COLUMNS = [
    {
      key: "started",
      label: "Started",
      className: "nowrap",
      value: (r) => r.started_at,
      cell: (r) => shortTime(r.started_at),
    },
    {
      key: "model",
      label: "Model",
      value: (r) => pairKey(r.feature_set, r.model_type),
      cell: (r) => modelCell(r.feature_set, r.model_type),
    },
    {
      key: "trigger",
      label: "Trigger",
      value: (r) => r.trigger,
      cell: (r) => [r.trigger, clamped((r.reasons || []).join("; "))],
    },
    { key: "status", label: "Status", value: (r) => r.status, cell: (r) => pill(r.status) },
    {
      key: "decision",
      label: "Decision",
      value: (r) => r.decision,
      cell: (r) => (r.decision ? pill(r.decision) : "–"),
    },
    {
      key: "accuracy",
      label: "Challenger vs champion",
      num: true,
      value: (r) => accuracyOf(r.challenger_metrics),
      cell: (r) =>
        `${pct(accuracyOf(r.challenger_metrics))} vs ${pct(accuracyOf(r.champion_metrics))}`,
    },
    {
      key: "p",
      label: "McNemar p",
      num: true,
      value: (r) => (r.significance ? r.significance.p_value : null),
      cell: (r) => pValue(r.significance ? r.significance.p_value : null),
    },
    {
      key: "e",
      label: "Evidence",
      num: true,
      className: "nowrap",
      title:
        "the paired test the decision rests on: the challenger's wins on the discordant hours " +
        "against the wins the trial needed at that look (a fallback: e-value against the one " +
        "needed)",
      value: (r) => testMargin(decisionTest(r.evidence)),
      cell: (r) => {
        const test = decisionTest(r.evidence);
        if (!test) return "–";
        if (isEValueTest(test)) return `e ${eValue(test.e_value)} / ${eValue(test.threshold)}`;
        return `${count(test.wins)} / ${count(test.threshold)} wins`;
      },
    },
    {
      key: "duration",
      label: "Duration",
      num: true,
      value: (r) => r.duration_seconds,
      cell: (r) => seconds(r.duration_seconds),
    },
    { key: "reason", label: "Why", cell: (r) => clamped(r.error || r.decision_reason, "wide") },
  ];

  function renderRuns(runs, history) {
    if (!history) {
      fill("retrain-runs", emptyState("The run history could not be loaded (see above)."));
      return;
    }
    if (!runs.length) {
      fill(
        "retrain-runs",
        emptyState(
          "No retraining runs yet: press ",
          el("b", null, "Run retraining"),
          " or run ",
          code("btcmlops demo"),
          "."
        )
      );
      return;
    }
    const rowClass = (r) => `run-row status-${r.status}`;
    fill("retrain-runs", table(RUN_COLUMNS, runs, { sortId: "runs", rowClass }));
  }

  /** Every number of a check, one per line, for a cell's tooltip. */
  function checkDetails(check) {
    return Object.entries(check)
      .filter(([key, value]) => key !== "reason" && value !== null && typeof value !== "object")
      .map(([key, value]) => `${key.replace(/_/g, " ")}: ${formatCheckValue(key, value)}`)
      .join("\n");
  }

  function formatCheckValue(key, value) {
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (isNumber(value)) {
      if (/p_value/.test(key)) return pValue(value);
      if (/accuracy|drop/.test(key) && Math.abs(value) <= 1) return pct(value);
      return Number.isInteger(value) ? count(value) : num(value, 2);
    }
    return /_at$/.test(key) ? shortTime(value) : String(value);
  }

  /** One check of the policy: whether it fired, and its reason (which carries the numbers). */
  function checkCell(check, firedWord, quietWord) {
    if (!check || typeof check !== "object") return "–";
    return el(
      "div",
      { class: "check", title: checkDetails(check) },
      firedWord ? pill(firedWord, "medium") : pill(quietWord, "none"),
      sub(check.reason)
    );
  }

  const CHECK_COLUMNS = [
    {
      key: "checked",
      label: "Checked",
      className: "nowrap",
      cell: (c) => shortTime(c.checked_at),
    },
    {
      key: "decision",
      label: "Retrain?",
      cell: (c) =>
        el(
          "div",
          { class: "check" },
          c.should_retrain ? pill("retrain", "medium") : pill("no", "none"),
          (c.reasons || []).map((reason) => sub(reason))
        ),
    },
    {
      key: "performance",
      label: "Performance",
      cell: (c) =>
        checkCell(c.performance_check, fired(c.performance_check, "degraded"), "holding"),
    },
    {
      key: "drift",
      label: "Drift",
      cell: (c) => checkCell(c.drift_check, fired(c.drift_check, "drifted"), "below threshold"),
    },
    {
      key: "schedule",
      label: "Schedule",
      cell: (c) => checkCell(c.schedule_check, fired(c.schedule_check, "due"), "not due"),
    },
    {
      key: "data",
      label: "Data",
      cell: (c) => {
        const short = c.data_check && !c.data_check.sufficient_data;
        return checkCell(c.data_check, short && "too little", "enough");
      },
    },
    {
      key: "cooldown",
      label: "Cooldown",
      cell: (c) => {
        const active = c.cooldown_check && c.cooldown_check.active;
        return checkCell(c.cooldown_check, active && "cooling down", "clear");
      },
    },
  ];

  const fired = (check, word) => (check && check.triggered ? word : null);

  function renderChecks(pair, checks) {
    byId("retrain-latest-note").textContent = "";
    if (!pair) {
      fill("retrain-checks", noModels());
      fill("retrain-latest", noModels());
      return;
    }
    if (!checks) {
      fill("retrain-checks", emptyState("The retraining checks could not be loaded (see above)."));
      fill("retrain-latest");
      return;
    }
    const items = checks.checks || [];
    if (!items.length) {
      const none = () =>
        emptyState(
          "No checks recorded for this model yet: the scheduler runs one daily (",
          code("btcmlops demo"),
          " replays them)."
        );
      fill("retrain-checks", none());
      fill("retrain-latest", none());
      return;
    }
    renderLatestDecision(items[0]);
    fill("retrain-checks", table(CHECK_COLUMNS, items));
  }

  function renderLatestDecision(check) {
    byId("retrain-latest-note").textContent = utc(check.checked_at);
    const performance = check.performance_check || {};
    const drift = check.drift_check || {};
    const schedule = check.schedule_check || {};
    const data = check.data_check || {};
    const cooldown = check.cooldown_check || {};
    const decision = check.should_retrain
      ? pill("retrain", "medium")
      : pill("no retraining", "none");
    const age = isNumber(schedule.champion_age_days)
      ? `${schedule.champion_age_days.toFixed(1)} of ${schedule.interval_days} days`
      : "–";
    const cooling = cooldown.active
      ? `active (${num(cooldown.hours_since_last_run, 1)} h since the last run)`
      : "clear";
    const reasons = check.reasons && check.reasons.length ? check.reasons : ["No trigger fired."];
    fill(
      "retrain-latest",
      el(
        "div",
        { class: "facts" },
        fact("Decision", decision),
        fact(
          "Live vs baseline accuracy",
          `${pct(performance.live_accuracy)} vs ${pct(performance.baseline_accuracy)}`
        ),
        fact("Drop (one-sided p)", `${pct(performance.drop)} (${pValue(performance.p_value)})`),
        fact(
          "Outcomes judged",
          `${count(performance.live_predictions)} (≥ ${count(performance.min_predictions)} needed)`
        ),
        fact("Drift severity", pill(drift.severity || "n/a")),
        fact("Champion age", age),
        fact("Rows to train on", `${count(data.sample_count)} (≥ ${count(data.min_required)})`),
        fact("Cooldown", cooling)
      ),
      el("ul", { class: "recommendations reasons" }, reasons.map((r) => el("li", null, r)))
    );
  }

  // ===================================================================== shadow evidence

  /** The sequential test a decision rests on: its own, or for a fallback the chosen rule's. */
  function decisionTest(evidence) {
    if (!evidence) return null;
    if (evidence.test) return evidence.test;
    const tests = evidence.tests || {};
    return (evidence.baseline && tests[evidence.baseline]) || null;
  }

  /** A mixture e-value test (rollback, fallback, old stored runs) rather than the trial. */
  const isEValueTest = (test) => Boolean(test) && isNumber(test.e_value);

  /** "look 7 of 31" from a 0-based look; "look 7" when the trial's length is unknown. */
  function lookWords(look, looks) {
    const at = `look ${isNumber(look) ? count(look + 1) : "–"}`;
    return isNumber(looks) ? `${at} of ${count(looks)}` : at;
  }

  /** "41 wins of 53 needed (look 7 of 31)" for the trial, "e-value 2.3 of 20" otherwise. */
  function testWords(test) {
    if (!test) return "–";
    if (isEValueTest(test)) return `e-value ${eValue(test.e_value)} of ${eValue(test.threshold)}`;
    return (
      `${count(test.wins)} wins of ${count(test.threshold)} needed ` +
      `(${lookWords(test.look, test.trial_looks)})`
    );
  }

  /** A test on the evidence chart's scale: wins - wins needed, or ln e - ln threshold. */
  function testMargin(test) {
    if (!test) return null;
    if (isEValueTest(test)) {
      const ok = test.e_value > 0 && isNumber(test.threshold) && test.threshold > 0;
      return ok ? Math.log(test.e_value) - Math.log(test.threshold) : null;
    }
    return isNumber(test.wins) && isNumber(test.threshold) ? test.wins - test.threshold : null;
  }

  /** A number with a fixed count of decimals ("-0.1", "3.0"); "–" when missing. */
  const fixed = (value, digits = 1) => (isNumber(value) ? value.toFixed(digits) : "–");

  /** A failed promotion condition in words, with the numbers it was judged on. */
  function conditionWords(name, evidence) {
    const test = evidence.test || {};
    const alone = `(${count(test.wins)}:${count(test.losses)} hours right alone)`;
    const words = {
      sequential_test: () =>
        isEValueTest(test)
          ? "the paired test has not yet shown it better than the champion: e-value " +
            `${eValue(test.e_value)} of ${eValue(test.threshold)} needed ${alone}`
          : "the paired trial has not yet shown it better than the champion: " +
            `${count(test.wins)} wins of ${count(test.threshold)} needed at ` +
            `${lookWords(test.look, test.trial_looks)} ${alone}` +
            (test.over ? "; its trial is over" : ""),
      beats_majority: () =>
        `does not beat the majority class: ${pct(evidence.challenger_accuracy)} vs ` +
        pct(evidence.majority_accuracy),
      beats_last_hour: () =>
        `does not beat "same direction as the last hour": ${pct(evidence.challenger_accuracy)} ` +
        `vs ${pct(evidence.last_hour_accuracy)}`,
      beats_base_rate_log_loss: () =>
        `log loss ${num(evidence.challenger_log_loss, 4)} not below the base rate's ` +
        num(evidence.base_rate_log_loss, 4),
      not_degenerate: () =>
        `degenerate: one class on ${pct(evidence.one_class_share, 0)} of hours (95% at most)`,
    };
    return words[name] ? words[name]() : name.replace(/_/g, " ");
  }

  /** A failed condition in a few words, for a table cell (the sentence is its tooltip). */
  function conditionShort(name, evidence) {
    const test = evidence.test || {};
    const words = {
      sequential_test: isEValueTest(test)
        ? "not significant"
        : `${count(test.wins)} of ${count(test.threshold)} wins`,
      beats_majority: "≤ majority class",
      beats_last_hour: "≤ last hour",
      beats_base_rate_log_loss: "log loss ≥ base rate",
      not_degenerate: `one class ${pct(evidence.one_class_share, 0)}`,
    };
    return words[name] || name.replace(/_/g, " ");
  }

  function conditionList(evidence) {
    const failed = evidence.failed || [];
    return el(
      "ul",
      { class: "conditions" },
      failed.map((name) => el("li", null, conditionWords(name, evidence)))
    );
  }

  /** The trial's length, from the shadow's current look (the server sends it there). */
  const trialLooks = (shadow) => ((shadow.decision || {}).test || {}).trial_looks;

  /** A shadow's statistic against its bar in its own words: a challenger's wins against the
   * trial's boundary at this look, the previous champion's e-value against the rollback's. */
  function shadowEvidenceWords(shadow) {
    if (shadow.role === "previous_champion") {
      return `e-value ${eValue(eFromLog(shadow.statistic))} of ${eValue(eFromLog(shadow.bar))}`;
    }
    if (shadow.trial_over) return "trial over";
    const test = (shadow.decision || {}).test || {};
    const look = isNumber(test.look) ? test.look : (shadow.path || []).length - 1;
    return (
      `${count(shadow.statistic)} wins of ${count(shadow.bar)} needed ` +
      `(${lookWords(look, trialLooks(shadow))})`
    );
  }

  /** The evidence in words and a bar filled by how far the statistic has come to its bar. */
  function shadowEvidenceCell(shadow) {
    const { statistic, bar, margin } = shadow;
    const share =
      isNumber(statistic) && isNumber(bar) && bar > 0
        ? Math.min(1, Math.max(0, statistic / bar))
        : 0;
    const reached = isNumber(margin) && margin >= 0;
    const test = (shadow.decision || {}).test || {};
    // The trial puts its boundary past the discordant hours when none fits the level yet.
    const unreachable =
      !shadow.trial_over && isNumber(test.discordant) && isNumber(bar) && bar > test.discordant;
    return [
      shadowEvidenceWords(shadow),
      shadow.trial_over ? sub(`${count(statistic)} wins of ${count(bar)} at its last look`) : null,
      unreachable ? sub(`out of reach: ${count(test.discordant)} discordant hours so far`) : null,
      el(
        "span",
        {
          class: `evidence-bar${reached ? " reached" : ""}`,
          title:
            `${shadow.scale || "statistic"}: ${fixed(statistic, 2)} of ${fixed(bar, 2)}` +
            (isNumber(test.discordant) ? ` · ${count(test.discordant)} discordant hours` : ""),
        },
        el("span", { style: { width: `${(share * 100).toFixed(1)}%` } })
      ),
    ];
  }

  function shadowVerdict(shadow) {
    if (shadow.role === "previous_champion") {
      const reached = isNumber(shadow.margin) && shadow.margin >= 0;
      return el(
        "div",
        { class: "check" },
        reached ? pill("would roll back", "high") : pill("champion holds", "good"),
        sub("rollback test: is the previous champion better than the current one?")
      );
    }
    const decision = shadow.decision;
    if (!decision) return "–";
    if (decision.promote) {
      return el(
        "div",
        { class: "check" },
        pill("meets the rule", "good"),
        sub("promoted at the next daily review")
      );
    }
    return el("div", { class: "check" }, pill("kept in shadow", "kept"), conditionList(decision));
  }

  function shadowColumns(report, kinds) {
    const short = (version) => shortVersion(version, report.feature_set, report.model_type);
    return [
      {
        key: "version",
        label: "Version",
        className: "version",
        cell: (s) => [
          el("span", { class: "shadow-version", title: s.version }, short(s.version)),
          kindTag(kinds.get(s.version)),
        ],
      },
      { key: "role", label: "Role", cell: (s) => rolePill(s.role) },
      { key: "since", label: "Since", className: "nowrap", cell: (s) => shortTime(s.since) },
      {
        key: "hours",
        label: "Paired hours",
        num: true,
        title: "hours both it and the champion answered: the offline comparison, then live",
        cell: (s) => [
          count((s.offline_hours || 0) + (s.live_hours || 0)),
          sub(`${count(s.offline_hours)} offline + ${count(s.live_hours)} live`),
        ],
      },
      {
        key: "evidence",
        label: "Evidence",
        num: true,
        className: "nowrap",
        title:
          "a challenger: its wins on the discordant hours against the wins the trial needs at " +
          "this look; the previous champion: its rollback e-value against the one needed",
        cell: (s) => shadowEvidenceCell(s),
      },
      { key: "verdict", label: "Verdict", cell: (s) => shadowVerdict(s) },
    ];
  }

  function decisionAccuracy(run, side) {
    const evidence = run.evidence || {};
    const own = evidence[`${side}_accuracy`];
    return isNumber(own) ? own : accuracyOf(run[`${side}_metrics`]);
  }

  function decisionWhy(run) {
    const evidence = run.evidence || {};
    if (run.decision === "fallback" || evidence.baseline) {
      const rule = RULE_WORDS[evidence.baseline] || evidence.baseline;
      return [
        `the champion was significantly worse than "${rule}"`,
        clamped(run.decision_reason, "wide"),
      ];
    }
    const failed = evidence.failed || [];
    if (failed.length) {
      return el(
        "span",
        {
          class: "failed-conditions",
          title: failed.map((name) => conditionWords(name, evidence)).join("\n"),
        },
        failed.map((name) => el("span", { class: "condition" }, conditionShort(name, evidence)))
      );
    }
    if (evidence.promote) return el("span", { class: "muted" }, "every condition held");
    return clamped(run.decision_reason, "wide");
  }

  const DECISION_COLUMNS = [
    {
      key: "time",
      label: "Time",
      className: "nowrap",
      cell: (r) => shortTime(r.started_at),
    },
    {
      key: "trigger",
      label: "Trigger",
      cell: (r) => [
        r.trigger,
        el(
          "span",
          { class: "sub mono", title: r.challenger_version || null },
          shortVersion(r.challenger_version, r.feature_set, r.model_type)
        ),
      ],
    },
    { key: "decision", label: "Decision", cell: (r) => pill(r.decision || r.status) },
    {
      key: "hours",
      label: "Paired hours",
      num: true,
      cell: (r) => {
        const evidence = r.evidence || {};
        const split = isNumber(evidence.live_hours)
          ? `${count(evidence.offline_hours)} offline + ${count(evidence.live_hours)} live`
          : "";
        return [count(evidence.hours), sub(split)];
      },
    },
    {
      key: "discordant",
      label: "Wins:losses",
      num: true,
      title: "discordant hours: only the challenger right : only the champion right",
      cell: (r) => {
        const test = decisionTest(r.evidence);
        return test ? `${count(test.wins)}:${count(test.losses)}` : "–";
      },
    },
    {
      key: "e",
      label: "Evidence",
      num: true,
      className: "nowrap",
      title:
        "the trial: wins needed at that look; a fallback's rule: its e-value against the one " +
        "needed",
      cell: (r) => {
        const test = decisionTest(r.evidence);
        if (!test) return "–";
        const verdict = test.rejects ? "significant" : test.over ? "trial over" : "not significant";
        return [
          isEValueTest(test)
            ? `e-value ${eValue(test.e_value)} of ${eValue(test.threshold)}`
            : `needs ${count(test.threshold)} (${lookWords(test.look, test.trial_looks)})`,
          sub(verdict),
        ];
      },
    },
    {
      key: "challenger",
      label: "Challenger",
      num: true,
      title: "accuracy on the paired hours (for a fallback: the naive baseline's)",
      cell: (r) => [
        pct(decisionAccuracy(r, "challenger")),
        r.decision === "fallback" ? sub("baseline") : null,
      ],
    },
    {
      key: "champion",
      label: "Champion",
      num: true,
      cell: (r) => pct(decisionAccuracy(r, "champion")),
    },
    {
      key: "majority",
      label: "Majority",
      num: true,
      title: "always the majority direction of those hours",
      cell: (r) => pct((r.evidence || {}).majority_accuracy),
    },
    {
      key: "last",
      label: "Last hour",
      num: true,
      title: "the same direction as the hour before",
      cell: (r) => pct((r.evidence || {}).last_hour_accuracy),
    },
    { key: "why", label: "Failed conditions", cell: (r) => decisionWhy(r) },
  ];

  /** One panel per pair: the evidence chart, the shadow table and the decision history.
   * Panels are kept across refreshes so their charts keep their zoom. */
  function renderShadowEvidence(report, kinds) {
    const box = byId("retrain-shadows");
    const pairs = report ? report.pairs || [] : [];
    const keys = pairs.map((p) => pairKey(p.feature_set, p.model_type));
    for (const child of [...box.children]) {
      if (!keys.includes(child.dataset.pair)) {
        child.querySelectorAll(".js-plotly-plot").forEach((chart) => Plotly.purge(chart));
        child.remove();
      }
    }
    if (!pairs.length) {
      const why = report
        ? emptyState(
            "No champion yet, so no shadow models: ",
            code("btcmlops demo"),
            " shows them."
          )
        : emptyState("The shadow models could not be loaded (see above).");
      box.append(
        el(
          "div",
          { class: "panel", "data-pair": "" },
          el("div", { class: "panel-head" }, el("h2", null, "Shadow models")),
          why
        )
      );
      return;
    }
    pairs.forEach((pair, index) => {
      const block = shadowPanel(box, pair);
      if (box.children[index] !== block) box.insertBefore(block, box.children[index] || null);
      renderShadowPanel(block, pair, kinds);
    });
  }

  function shadowPanel(box, pair) {
    const key = pairKey(pair.feature_set, pair.model_type);
    const existing = [...box.children].find((node) => node.dataset.pair === key);
    if (existing) return existing;
    const slug = key.replace(/[^A-Za-z0-9_]/g, "-");
    return el(
      "div",
      { class: "panel shadow-pair", "data-pair": key },
      el(
        "div",
        { class: "panel-head" },
        el(
          "h2",
          null,
          "Shadow evidence ",
          el(
            "span",
            { class: "shadow-pair-label" },
            `· ${pairLabel(pair.feature_set, pair.model_type)}`
          )
        ),
        el("span", { class: "legend-note shadow-champion" })
      ),
      el("div", { id: `chart-shadows-${slug}`, class: "chart shadow-chart" }),
      el(
        "div",
        { class: "panel-head" },
        el("h2", null, "Shadow models"),
        el("span", { class: "legend-note" }, "predict every hour beside the champion; never served")
      ),
      el("div", { class: "table-wrap shadow-table" }),
      el(
        "div",
        { class: "panel-head" },
        el("h2", null, "Decisions and their evidence"),
        el("span", { class: "legend-note" }, "newest first; accuracies on the same paired hours")
      ),
      el("div", { class: "table-wrap scroll decision-table" })
    );
  }

  function renderShadowPanel(block, pair, kinds) {
    const champion = pair.champion;
    const note = block.querySelector(".shadow-champion");
    note.replaceChildren(
      champion
        ? `champion ${shortVersion(champion.version, pair.feature_set, pair.model_type)}`
        : "no champion",
      champion && champion.kind === "baseline" ? ` (${baselineLabel(champion.baseline_rule)})` : "",
      ` · ${promotionRuleWords(pair)}, rolls back at e ≥ ${eValue(1 / pair.rollback_alpha)}`
    );
    const chart = block.querySelector(".shadow-chart");
    renderShadowChart(chart.id, pair);
    const shadows = pair.shadows || [];
    block
      .querySelector(".shadow-table")
      .replaceChildren(
        shadows.length
          ? table(shadowColumns(pair, kinds), shadows)
          : emptyState(
              "No model in shadow: a retraining whose challenger is kept, or a new champion's " +
                "predecessor, predicts here beside the champion."
            )
      );
    const decisions = pair.decisions || [];
    block
      .querySelector(".decision-table")
      .replaceChildren(
        decisions.length
          ? table(DECISION_COLUMNS, decisions)
          : emptyState("No decision with recorded evidence for this model yet.")
      );
  }

  /** "promotes when a challenger's wins reach the trial's boundary (α 0.05 over 31 looks)". */
  function promotionRuleWords(pair) {
    const looks = (pair.shadows || []).map(trialLooks).find(isNumber);
    const spent = `α ${pair.promotion_alpha}${isNumber(looks) ? ` over ${looks} looks` : ""}`;
    return `promotes when a challenger's wins reach the trial's boundary (${spent})`;
  }

  /** A path point in its shadow's words: "41 wins of 53 needed, look 7 of 31" or
   * "log e 1.2 of 3.0 (e-value 3.32 of 20)". */
  function pathWords(shadow, point, look) {
    if (shadow.role === "previous_champion") {
      return (
        `log e ${fixed(point.statistic)} of ${fixed(point.bar)} ` +
        `(e-value ${eValue(eFromLog(point.statistic))} of ${eValue(eFromLog(point.bar))})`
      );
    }
    return (
      `${count(point.statistic)} wins of ${count(point.bar)} needed, ` +
      lookWords(look, trialLooks(shadow))
    );
  }

  function renderShadowChart(id, pair) {
    const traces = [];
    const shadows = pair.shadows || [];
    const short = (version) => shortVersion(version, pair.feature_set, pair.model_type);
    let challengers = 0;
    for (const shadow of shadows) {
      const previous = shadow.role === "previous_champion";
      const colour = previous
        ? PREVIOUS_CHAMPION_COLOUR
        : SHADOW_COLOURS[challengers++ % SHADOW_COLOURS.length];
      // A challenger's path has one point per look of its trial, the first (at: null) its
      // offline comparison, drawn at "since"; the previous champion's one per live day.
      const points = (shadow.path || [])
        .map((point, look) => ({ ...point, look }))
        .filter((p) => isNumber(p.margin));
      const name = `${short(shadow.version)} · ${ROLE_WORDS[shadow.role] || shadow.role}`;
      traces.push({
        type: "scatter",
        mode: "lines+markers",
        name,
        x: points.map((p) => p.at || shadow.since),
        y: points.map((p) => p.margin),
        line: { color: colour, width: 2.2, dash: previous ? "dash" : "solid" },
        marker: {
          color: colour,
          size: points.map((p) => (p.at ? 6 : 9)),
          symbol: points.map((p) => (p.at ? "circle" : "diamond")),
        },
        customdata: points.map((p) => [
          count(p.hours),
          plotText(pathWords(shadow, p, p.look)),
          p.at ? (previous ? "live, end of the day" : "live, daily look") : "offline comparison",
        ]),
        hovertemplate:
          `${plotText(name)}<br>%{x|%Y-%m-%d %H:%M}: %{customdata[1]}` +
          "<br>margin %{y:+.2f} · %{customdata[0]} paired hours · %{customdata[2]}" +
          "<extra></extra>",
      });
    }
    const decided = (pair.decisions || [])
      .map((run) => ({ run, test: decisionTest(run.evidence) }))
      .map((item) => ({ ...item, margin: testMargin(item.test) }))
      .filter(({ margin }) => isNumber(margin));
    for (const decision of ["deployed", "kept", "fallback"]) {
      const items = decided.filter(({ run }) => run.decision === decision);
      if (!items.length) continue;
      traces.push({
        type: "scatter",
        mode: "markers",
        name: `decision: ${decision}`,
        x: items.map(({ run }) => run.started_at),
        y: items.map(({ margin }) => margin),
        marker: {
          color: DECISION_COLOURS[decision],
          symbol: DECISION_SYMBOLS[decision],
          size: decision === "kept" ? 9 : 12,
          line: { color: DECISION_COLOURS[decision], width: 1.5 },
        },
        text: items.map(({ run, test }) => decisionHover(run, test)),
        hovertemplate: "%{text}<extra></extra>",
      });
    }
    const values = [0, ...traces.flatMap((trace) => trace.y)].filter(isNumber);
    const span = Math.max(...values) - Math.min(...values);
    const bar = zeroLineWords(pair);
    drawChart(
      id,
      traces,
      layout({
        uirevision: id,
        xaxis: { type: "date" },
        yaxis: {
          title: { text: "margin to the bar" },
          zeroline: false,
          range: paddedRange(values, Math.max(0.6, span * 0.1)),
        },
        shapes: [
          {
            type: "line",
            xref: "paper",
            x0: 0,
            x1: 1,
            y0: 0,
            y1: 0,
            line: { color: "#16a34a", width: 1.5, dash: "dash" },
          },
        ],
        annotations: [
          {
            xref: "paper",
            x: 0,
            xanchor: "left",
            y: 0,
            yanchor: "bottom",
            text: plotText(bar),
            showarrow: false,
            font: { size: 11, color: "#15803d" },
          },
        ],
        legend: { orientation: "h", x: 0, y: -0.18, font: { size: 11 } },
        margin: { l: 56, r: 18, t: 10, b: 40 },
      }),
      emptyState(
        "Nothing in shadow and no decision with evidence yet: a kept challenger predicts in " +
          "shadow and its evidence grows here, day by day."
      )
    );
  }

  /** The one bar of the chart: every line is its statistic minus its own bar. */
  function zeroLineWords(pair) {
    const roles = new Set((pair.shadows || []).map((s) => s.role));
    const words = [];
    if (!roles.size || [...roles].some((role) => role !== "previous_champion")) {
      words.push("promote (wins reach the trial's boundary)");
    }
    if (!roles.size || roles.has("previous_champion")) {
      words.push(`roll back (e-value ≥ ${eValue(1 / pair.rollback_alpha)})`);
    }
    return `${words.join(" / ")} at 0`;
  }

  function decisionHover(run, test) {
    return [
      `<b>${plotText(run.decision)}</b> ${plotText(utc(run.started_at))} ` +
        `(${plotText(run.trigger)})`,
      plotText(run.challenger_version || ""),
      `${plotText(testWords(test))} · ${count(test.wins)}:${count(test.losses)} hours right alone`,
      `${count((run.evidence || {}).hours)} paired hours`,
    ].join("<br>");
  }

  async function startRetraining() {
    const pair = selectedPair();
    if (!pair || retrainJob) return;
    const label = pairLabel(pair.feature_set, pair.model_type);
    const deploy = byId("retrain-deploy").checked;
    const response = await runAction({
      label: `retrain ${label}`,
      title: "Run a retraining",
      text:
        `Train a challenger for ${label} and ` +
        (deploy ? "deploy it if it beats the champion." : "only compare it with the champion."),
      confirmLabel: "Run",
      method: "POST",
      path: "/retrain/execute",
      params: {
        feature_set: pair.feature_set,
        model_type: pair.model_type,
        deploy_if_better: deploy,
        async: true,
      },
    });
    if (!response) return;
    if (!response.job_id) {
      // A server that ran it synchronously: the answer is the outcome.
      showJob(null, "finished", response.deployment ? response.deployment.reason : "");
      await refresh();
      return;
    }
    retrainJob = { job_id: response.job_id, label };
    byId("retrain-button").disabled = true;
    showJob(retrainJob, response.status || "queued", "");
    await refresh();
    followJob();
  }

  function showJob(job, status, detail) {
    fill(
      "retrain-job",
      job ? `Job ${job.job_id} (${job.label}): ` : "",
      pill(status),
      detail ? ` ${detail}` : ""
    );
  }

  /** Poll the job until it ends, then show how it ended and refresh the view. */
  async function followJob() {
    const job = retrainJob;
    if (!job) return;
    let run = null;
    try {
      run = (await api("GET", `/retrain/jobs/${encodeURIComponent(job.job_id)}`)).job;
    } catch (error) {
      actionProblems.set(`retraining job ${job.job_id}`, describeError(error));
      renderBanner();
    }
    if (run && !RUNNING_STATUSES.has(run.status)) {
      retrainJob = null;
      if (run.status === "failed") showJob(job, "failed", run.error || "see the server log");
      else showJob(job, run.decision || run.status, run.decision_reason || "");
      byId("retrain-button").disabled = false;
      await refresh();
      return;
    }
    if (run) showJob(job, run.status, "");
    setTimeout(followJob, JOB_POLL_MS);
  }

  // ===================================================================== health

  async function renderHealth() {
    const scheduler = await load("/scheduler/jobs");
    const health = state.health;
    const components = (health && health.components) || {};
    const store = components.store || {};
    const writer = components.prediction_logging || {};
    const models = components.models || {};
    const jobs = (scheduler && scheduler.jobs) || [];
    const failing = jobs.filter((j) => (j.consecutive_failures || 0) > 0).length;
    const loadErrors = Object.entries(models.load_errors || {});
    fill(
      "health-kpis",
      kpi(
        "Service",
        pill(health ? health.status : "unreachable"),
        health ? utc(health.timestamp) : ""
      ),
      kpi("Store", pill(store.status || "unknown"), store.dialect || store.error || ""),
      kpi(
        "Prediction writer",
        pill(writer.state || "unknown"),
        `queue ${count(writer.queue_depth)} of ${count(writer.queue_capacity)}`
      ),
      kpi(
        "Spool",
        bytes(writer.spool_bytes),
        `spooled ${count(writer.spooled)} · replayed ${count(writer.replayed)} · ` +
          `lost ${count(writer.lost)}`
      ),
      kpi(
        "Loaded models",
        count(health ? health.loaded_models : null),
        `${loadErrors.length} load errors`
      ),
      kpi(
        "Scheduler",
        pill(schedulerWord(scheduler)),
        scheduler ? `${jobs.length} jobs · ${failing} failing` : ""
      )
    );
    fill(
      "health-store",
      fact("Store", store.status || "–"),
      fact("Dialect", store.dialect || "–"),
      fact("Writer state", writer.state || "–"),
      fact(
        "Queue depth / capacity",
        `${count(writer.queue_depth)} / ${count(writer.queue_capacity)}`
      ),
      fact("Written", count(writer.written)),
      fact("Spooled / replayed", `${count(writer.spooled)} / ${count(writer.replayed)}`),
      fact("Lost", count(writer.lost)),
      fact("Spool size", bytes(writer.spool_bytes)),
      fact("Last error", writer.last_error || store.error || "none")
    );
    renderFeatureRows(models.feature_rows || {});
    renderLoadedModels(models.loaded || [], loadErrors, models.fallbacks || []);
    renderJobs(scheduler, jobs);
  }

  function renderFeatureRows(rows) {
    const entries = Object.entries(rows);
    if (!entries.length) {
      fill(
        "health-rows",
        emptyState("No feature rows in memory yet: ", code("btcmlops features build"), ".")
      );
      return;
    }
    const columns = [
      { key: "set", label: "Feature set", cell: ([featureSet]) => featureSet },
      { key: "ts", label: "Newest row in memory", cell: ([, hour]) => utc(hour) },
    ];
    fill("health-rows", table(columns, entries));
  }

  function renderLoadedModels(loaded, loadErrors, fallbacks) {
    const errors = [
      ...fallbacks.map((sentence) => el("div", { class: "fallback-notice" }, sentence)),
      ...loadErrors.map(([pair, message]) => el("p", { class: "muted" }, `${pair}: ${message}`)),
    ];
    if (!loaded.length) {
      fill("health-models", noModels(), ...errors);
      return;
    }
    const columns = [
      { key: "model", label: "Model", cell: (m) => modelCell(m.feature_set, m.model_type) },
      {
        key: "version",
        label: "Version",
        className: "version",
        cell: (m) => [shortVersion(m.version, m.feature_set, m.model_type), kindTag(m)],
      },
      { key: "loaded", label: "Loaded", cell: (m) => shortTime(m.loaded_at) },
      { key: "test", label: "Test accuracy", num: true, cell: (m) => pct(m.test_accuracy) },
      { key: "features", label: "Features", num: true, cell: (m) => count(m.features) },
    ];
    fill("health-models", table(columns, loaded), ...errors);
  }

  function schedulerWord(scheduler) {
    if (!scheduler) return "unknown";
    if (scheduler.running) return scheduler.leader ? "running" : "standing by";
    return scheduler.lease_holder ? "elsewhere" : "not here";
  }

  function schedulerNote(scheduler) {
    if (!scheduler) return "";
    if (scheduler.running && scheduler.leader) return "this process runs the jobs";
    if (scheduler.lease_holder) return `the jobs run in ${scheduler.lease_holder}`;
    return "no scheduler in this process; the last runs are read from the store";
  }

  /** A job's returned numbers in one short line ("bars 1 · articles 2"). */
  function summariseDetail(detail) {
    if (detail === null || detail === undefined) return "";
    if (typeof detail !== "object") return String(detail);
    const parts = [];
    for (const [key, value] of Object.entries(detail)) {
      if (value === null || value === undefined) continue;
      if (Array.isArray(value)) {
        if (value.length) parts.push(`${key} ${value.length}`);
      } else if (typeof value === "object") {
        const inner = summariseDetail(value);
        if (inner) parts.push(`${key}: ${inner}`);
      } else {
        parts.push(`${key} ${isNumber(value) ? count(value) : value}`);
      }
    }
    const line = parts.join(" · ");
    return line.length > 140 ? `${line.slice(0, 139)}…` : line;
  }

  const JOB_COLUMNS = [
    { key: "name", label: "Job", value: (j) => j.name, cell: (j) => j.name },
    {
      key: "last",
      label: "Last started",
      className: "nowrap",
      value: (j) => j.last_started_at,
      cell: (j) => shortTime(j.last_started_at),
    },
    {
      key: "status",
      label: "Last status",
      value: (j) => j.last_status,
      cell: (j) => pill(j.last_status || "never"),
    },
    {
      key: "duration",
      label: "Duration",
      num: true,
      value: (j) => j.last_duration_seconds,
      cell: (j) => seconds(j.last_duration_seconds),
    },
    {
      key: "next",
      label: "Next run",
      className: "nowrap",
      value: (j) => j.next_run_at,
      cell: (j) => shortTime(j.next_run_at),
    },
    {
      key: "failures",
      label: "Failures in a row",
      num: true,
      value: (j) => j.consecutive_failures,
      cell: (j) => count(j.consecutive_failures),
    },
    {
      key: "detail",
      label: "Last result",
      cell: (j) =>
        el(
          "span",
          { class: "sub", title: j.last_detail ? JSON.stringify(j.last_detail, null, 1) : null },
          j.last_error || summariseDetail(j.last_detail)
        ),
    },
  ];

  function renderJobs(scheduler, jobs) {
    byId("scheduler-note").textContent = schedulerNote(scheduler);
    if (!scheduler) {
      fill("health-jobs", emptyState("The scheduler could not be asked (see above)."));
      return;
    }
    if (!jobs.length) {
      fill(
        "health-jobs",
        emptyState("No scheduler jobs yet: start them with ", code("btcmlops serve"), ".")
      );
      return;
    }
    fill("health-jobs", table(JOB_COLUMNS, jobs, { sortId: "jobs" }));
  }

  // ===================================================================== refresh loop

  const RENDERERS = {
    overview: renderOverview,
    drift: renderDrift,
    models: renderModels,
    retraining: renderRetraining,
    health: renderHealth,
  };

  let running = null;
  let again = false;
  let timer = null;

  /** Refresh the visible view; a call during a refresh queues one more afterwards. */
  function refresh() {
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
      await RENDERERS[view]();
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
      if (document.hidden) clearTimeout(timer);
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
})();
