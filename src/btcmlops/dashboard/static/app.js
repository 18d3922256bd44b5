/* btcmlops dashboard: reads the HTTP API and draws it with the locally served plotly.js.
 *
 * No framework and no build step. Every string that comes from the API reaches the page
 * through textContent (el() below) or, inside charts, through plotText(); never innerHTML.
 * The page refreshes the visible view every 15 s and pauses while the tab is hidden.
 */
"use strict";

(() => {
  const page = document.body;
  const API_BASE = page.dataset.apiBase || "";
  const KEY_REQUIRED = page.dataset.keyRequired === "true";
  const REFRESH_MS = 15000;
  const JOB_POLL_MS = 1500;
  const KEY_STORAGE = "btcmlops.apiKey";
  const PAIR_STORAGE = "btcmlops.pair";
  const VIEWS = ["overview", "drift", "models", "retraining", "health"];
  const HOUR_MS = 3600 * 1000;

  // One colour per feature set and model type, used by every chart and table.
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
  const SEVERITY_LEVELS = { none: 0, low: 1, medium: 2, high: 3 };
  const RUNNING_STATUSES = new Set(["queued", "pending", "running", "started"]);
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

  const state = {
    view: "overview",
    pairs: [], // [{feature_set, model_type, champion, versions}]
    pair: null, // "feature_set/model_type"
    health: null,
    serverNow: null,
    driftFeature: null,
    sorts: {},
    refreshes: 0,
  };

  // ======================================================================= DOM helpers

  /** Build an element; strings become text nodes, so API data is never parsed as HTML. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
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

  function emptyState(...parts) {
    return el("div", { class: "empty" }, ...parts);
  }

  function pill(word, extraClass) {
    const text = word === null || word === undefined || word === "" ? "n/a" : String(word);
    const kind = text.toLowerCase().replace(/[^a-z_]/g, "");
    return el("span", { class: `pill ${kind} ${extraClass || ""}`.trim() }, text);
  }

  /** Characters Plotly would read as markup in chart text, escaped. */
  function plotText(value) {
    return String(value ?? "")
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;");
  }

  // ======================================================================= formatting

  const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
  const pct = (value, digits = 1) => (isNumber(value) ? `${(value * 100).toFixed(digits)}%` : "–");

  function num(value, digits = 3) {
    if (!isNumber(value)) return "–";
    if (value !== 0 && Math.abs(value) < 10 ** -digits) return value.toExponential(1);
    return value.toFixed(digits);
  }

  function pValue(value) {
    if (!isNumber(value)) return "–";
    return value < 0.001 ? value.toExponential(1) : value.toFixed(3);
  }

  function interval(low, high) {
    if (!isNumber(low) || !isNumber(high)) return "";
    return `[${(low * 100).toFixed(1)}, ${(high * 100).toFixed(1)}]`;
  }

  const count = (value) => (isNumber(value) ? value.toLocaleString("en-US") : "–");
  const money = (value) =>
    isNumber(value) ? `$${value.toLocaleString("en-US", { maximumFractionDigits: 0 })}` : "–";

  function utc(value) {
    if (!value) return "–";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  }

  const shortTime = (value) => utc(value).replace(" UTC", "");

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

  const MODEL_NAMES = {
    random_forest: "random forest",
    gradient_boosting: "gradient boosting",
    logistic_regression: "logistic regression",
  };
  const pairKey = (featureSet, modelType) => `${featureSet}/${modelType}`;
  const pairLabel = (featureSet, modelType) =>
    `${featureSet} · ${MODEL_NAMES[modelType] || modelType}`;
  const pairColour = (featureSet, modelType) =>
    PAIR_COLOURS[pairKey(featureSet, modelType)] || FEATURE_SET_COLOURS[featureSet] || "#475467";

  function swatch(colour) {
    return el("span", { class: "swatch", style: { background: colour } });
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

  // ======================================================================= problems banner

  const problems = new Map(); // label -> message; cleared at the start of every refresh
  const actionProblems = new Map(); // kept until the next action succeeds

  function renderBanner() {
    const list = byId("banner-list");
    const all = [...problems.entries(), ...actionProblems.entries()];
    list.replaceChildren(...all.map(([label, message]) => el("li", null, `${label}: ${message}`)));
    byId("banner").hidden = all.length === 0;
  }

  function notify(message) {
    const notice = byId("notice");
    notice.textContent = message;
    notice.hidden = !message;
  }

  // ======================================================================= the API client

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
      /* storage disabled: the key is asked again next time */
    }
  }

  async function send(method, path, params) {
    const url = new URL(API_BASE + path, window.location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") {
        url.searchParams.set(name, String(value));
      }
    }
    const headers = { Accept: "application/json" };
    const key = storedKey();
    if (key) headers["X-API-Key"] = key;
    let response;
    try {
      response = await fetch(url, { method, headers });
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

  let keyPrompt = null; // one prompt shared by every request that met a 401 meanwhile

  function promptForKey(message) {
    if (!keyPrompt) {
      keyPrompt = ask({
        title: "API key needed",
        text: message,
        askKey: true,
        confirmLabel: "Use key",
      }).finally(() => {
        keyPrompt = null;
      });
    }
    return keyPrompt;
  }

  /** A request; a 401 asks for the key (kept in sessionStorage) and tries again. */
  async function api(method, path, params) {
    for (;;) {
      try {
        return await send(method, path, params);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 401) throw error;
        storeKey("");
        const answer = await promptForKey(
          `${method} ${path} was refused: ${error.message} Enter the key to continue.`
        );
        if (!answer || !answer.key) throw error;
        storeKey(answer.key);
      }
    }
  }

  /** A read for a view: errors go to the banner and the caller gets null. */
  async function load(path, params) {
    try {
      return await api("GET", path, params);
    } catch (error) {
      const query = new URLSearchParams(
        Object.entries(params || {}).filter(([, v]) => v !== undefined && v !== null)
      ).toString();
      problems.set(`GET ${path}${query ? `?${query}` : ""}`, error.describe ? error.describe() : String(error));
      return null;
    }
  }

  // ======================================================================= the dialog

  let dialogQueue = Promise.resolve();

  /** Open the confirmation dialog; resolves {reason, key} or null when cancelled. */
  function ask(options) {
    const next = dialogQueue.then(() => openDialog(options));
    dialogQueue = next.catch(() => null);
    return next;
  }

  function openDialog({ title, text, askReason = false, askKey = false, confirmLabel, danger }) {
    const dialog = byId("action-dialog");
    const form = byId("action-form");
    const reason = byId("action-reason");
    const key = byId("action-key");
    const confirm = byId("action-confirm");
    byId("action-title").textContent = title;
    byId("action-text").textContent = text;
    byId("action-reason-row").hidden = !askReason;
    byId("action-key-row").hidden = !askKey;
    reason.value = "";
    key.value = "";
    confirm.textContent = confirmLabel || "Confirm";
    confirm.className = danger ? "primary danger-fill" : "primary";
    return new Promise((resolve) => {
      const finish = (answer) => {
        form.removeEventListener("submit", onSubmit);
        byId("action-cancel").removeEventListener("click", onCancel);
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
      byId("action-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      (askKey ? key : askReason ? reason : confirm).focus();
    });
  }

  /**
   * A state-changing action: confirm (with a reason and, when the server has one, the API
   * key), send it, and on 401 ask again for the key. Resolves the response or null.
   */
  async function runAction({ label, title, text, confirmLabel, askReason, method, path, params, danger }) {
    let keyProblem = "";
    for (;;) {
      const needKey = (KEY_REQUIRED && !storedKey()) || Boolean(keyProblem);
      const answer = await ask({
        title,
        text: keyProblem ? `${keyProblem} ${text}` : text,
        askReason,
        askKey: needKey,
        confirmLabel,
        danger,
      });
      if (!answer) return null;
      if (needKey) storeKey(answer.key);
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
          keyProblem = "The API key was not accepted.";
          continue;
        }
        actionProblems.set(label, error.describe ? error.describe() : String(error));
        renderBanner();
        return null;
      }
    }
  }

  // ======================================================================= charts

  const PLOT_CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"],
  };

  function layout(extra) {
    const base = {
      margin: { l: 56, r: 18, t: 8, b: 40 },
      font: { family: FONT, size: 12, color: "#1b2433" },
      paper_bgcolor: "#ffffff",
      plot_bgcolor: "#ffffff",
      hovermode: "closest",
      hoverlabel: { font: { family: FONT } },
      legend: { orientation: "h", x: 0, y: -0.16, font: { size: 11 } },
      xaxis: { gridcolor: "#eef1f5", linecolor: "#d0d5dd", zeroline: false, automargin: true },
      yaxis: { gridcolor: "#eef1f5", linecolor: "#d0d5dd", zeroline: false, automargin: true },
    };
    const merged = { ...base, ...extra };
    merged.xaxis = { ...base.xaxis, ...(extra.xaxis || {}) };
    merged.yaxis = { ...base.yaxis, ...(extra.yaxis || {}) };
    return merged;
  }

  /** Draw traces into a chart box, or an empty state when there is nothing to draw. */
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

  // ======================================================================= tables

  /**
   * A table from column specs {key, label, value(row) -> sortable, cell(row) -> Node|string,
   * num}. With `sortId`, clicking a header sorts by it (remembered across refreshes).
   */
  function table(columns, rows, { sortId, rowClass, onRowClick } = {}) {
    const sort = sortId ? state.sorts[sortId] : null;
    let shown = rows.slice();
    if (sort) {
      const column = columns.find((c) => c.key === sort.key);
      if (column && column.value) {
        const direction = sort.direction === "ascending" ? 1 : -1;
        shown.sort((a, b) => compareValues(column.value(a), column.value(b)) * direction);
      }
    }
    const head = el(
      "tr",
      null,
      columns.map((column) => {
        const sortable = Boolean(sortId && column.value);
        const th = el("th", {
          class: `${column.num ? "num" : ""} ${sortable ? "sortable" : ""}`.trim() || null,
          scope: "col",
          "aria-sort": sort && sort.key === column.key ? sort.direction : null,
          title: column.title,
        }, column.label);
        if (sortable) {
          th.tabIndex = 0;
          const toggle = () => {
            const current = state.sorts[sortId];
            const direction =
              current && current.key === column.key && current.direction === "descending"
                ? "ascending"
                : current && current.key === column.key
                  ? "descending"
                  : column.firstDirection || "descending";
            state.sorts[sortId] = { key: column.key, direction };
            th.closest(".table-wrap").replaceChildren(table(columns, rows, { sortId, rowClass, onRowClick }));
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
      })
    );
    const body = shown.map((row) => {
      const tr = el(
        "tr",
        { class: rowClass ? rowClass(row) : null },
        columns.map((column) => {
          const content = column.cell ? column.cell(row) : column.value(row);
          return el("td", { class: column.num ? "num" : column.className }, content ?? "–");
        })
      );
      if (onRowClick) {
        tr.style.cursor = "pointer";
        tr.addEventListener("click", () => onRowClick(row));
      }
      return tr;
    });
    return el("table", null, el("thead", null, head), el("tbody", null, body));
  }

  function compareValues(a, b) {
    const missingA = a === null || a === undefined || (typeof a === "number" && Number.isNaN(a));
    const missingB = b === null || b === undefined || (typeof b === "number" && Number.isNaN(b));
    if (missingA || missingB) return missingA === missingB ? 0 : missingA ? -1 : 1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b));
  }

  function fill(id, ...nodes) {
    byId(id).replaceChildren(...nodes);
  }

  function kpi(label, value, detail, extraClass) {
    return el(
      "div",
      { class: `kpi ${extraClass || ""}`.trim() },
      el("div", { class: "label" }, label),
      el("div", { class: "value" }, value),
      detail ? el("div", { class: "detail" }, detail) : null
    );
  }

  function fact(label, value) {
    return el("div", { class: "fact" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
  }

  // ======================================================================= shared state

  function selectedPair() {
    const found = state.pairs.find((p) => pairKey(p.feature_set, p.model_type) === state.pair);
    return found || null;
  }

  function championPairs() {
    return state.pairs.filter((p) => p.champion);
  }

  async function refreshCommon() {
    const [health, models] = await Promise.all([load("/health"), load("/models")]);
    state.health = health;
    if (health) {
      state.serverNow = health.timestamp;
      const status = health.status || "unknown";
      const healthPill = byId("health-pill");
      healthPill.className = `pill ${status}`;
      healthPill.textContent = status;
      byId("server-clock").textContent = `server time ${utc(health.timestamp)}`;
    }
    if (models) {
      const pairs = [];
      for (const [featureSet, entries] of Object.entries(models.available_models || {})) {
        for (const entry of entries) {
          pairs.push({
            feature_set: featureSet,
            model_type: entry.model_type,
            champion: entry.champion,
            versions: entry.versions || [],
          });
        }
      }
      state.pairs = pairs;
      renderPairPicker();
    }
  }

  function renderPairPicker() {
    const select = byId("pair-select");
    const keys = state.pairs.map((p) => pairKey(p.feature_set, p.model_type));
    if (!keys.includes(state.pair)) {
      let remembered = null;
      try {
        remembered = localStorage.getItem(PAIR_STORAGE);
      } catch {
        remembered = null;
      }
      const withChampion = championPairs().map((p) => pairKey(p.feature_set, p.model_type));
      state.pair = keys.includes(remembered) ? remembered : withChampion[0] || keys[0] || null;
    }
    const options = state.pairs.map((p) =>
      el(
        "option",
        { value: pairKey(p.feature_set, p.model_type) },
        pairLabel(p.feature_set, p.model_type) + (p.champion ? "" : " (no champion)")
      )
    );
    if (!options.length) options.push(el("option", { value: "" }, "no models yet"));
    select.replaceChildren(...options);
    select.value = state.pair || "";
    const pair = selectedPair();
    const label = pair ? pairLabel(pair.feature_set, pair.model_type) : "";
    document.querySelectorAll(".pair-label").forEach((node) => {
      node.textContent = label ? `· ${label}` : "";
    });
    document.querySelectorAll(".feature-set-label").forEach((node) => {
      node.textContent = pair ? `· ${pair.feature_set}` : "";
    });
  }

  const noModels = () =>
    emptyState(
      "No models yet: run ",
      code("btcmlops demo"),
      " for a complete example, or train one with ",
      code("btcmlops train --feature-set vader --promote"),
      "."
    );

  // ======================================================================= overview

  async function renderOverview() {
    const pairs = championPairs();
    const pair = selectedPair();
    const timelineOf = (p) =>
      load("/predictions/timeline", {
        feature_set: p.feature_set,
        model_type: p.model_type,
        days: 30,
        window: 48,
      });
    const accuracyOf = (p) =>
      load("/predictions/accuracy", { feature_set: p.feature_set, model_type: p.model_type, days: 7 });
    const [statistics, prices, recent, timelines, accuracies] = await Promise.all([
      load("/predictions/statistics"),
      load("/market/prices", { hours: 720 }),
      load("/predictions/recent", { limit: 1000 }),
      Promise.all(pairs.map(timelineOf)),
      Promise.all(pairs.map(accuracyOf)),
    ]);
    const priceRows = (prices && prices.prices) || [];
    renderOverviewKpis(statistics, priceRows, recent);
    const selectedIndex = pairs.findIndex((p) => p === pair);
    renderPriceChart(priceRows, selectedIndex >= 0 ? timelines[selectedIndex] : null, pair);
    renderAccuracyChart(pairs, timelines);
    renderModelSummary(pairs, timelines, accuracies);
    renderLatency(recent);
  }

  function percentile(sorted, q) {
    if (!sorted.length) return null;
    const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[index];
  }

  function renderOverviewKpis(statistics, priceRows, recent) {
    const cards = [];
    const last = priceRows[priceRows.length - 1];
    const dayAgo = priceRows[priceRows.length - 25];
    if (last) {
      const change = dayAgo ? last.close / dayAgo.close - 1 : null;
      cards.push(
        kpi("BTC close", money(last.close), isNumber(change) ? `${change >= 0 ? "+" : ""}${pct(change, 2)} in 24 h` : shortTime(last.ts))
      );
    }
    if (statistics && statistics.statistics) {
      const s = statistics.statistics;
      cards.push(
        kpi("Predictions", count(s.total_predictions), `vader ${count(s.vader_predictions)} · finbert ${count(s.finbert_predictions)}`),
        kpi("Realised accuracy", pct(s.overall_accuracy), `${count(s.correct_predictions)} of ${count(s.predictions_with_outcomes)} with outcomes`),
        kpi("Pending outcomes", count(s.pending_outcomes), `expired ${count(s.expired_outcomes)}`),
        kpi("Avg response", isNumber(s.avg_response_time_ms) ? `${s.avg_response_time_ms.toFixed(1)} ms` : "–", latencySummary(recent))
      );
    }
    fill("overview-kpis", ...cards);
  }

  function latencies(recent) {
    return ((recent && recent.predictions) || [])
      .map((p) => p.response_time_ms)
      .filter(isNumber)
      .sort((a, b) => a - b);
  }

  function latencySummary(recent) {
    const sorted = latencies(recent);
    if (!sorted.length) return "no predictions yet";
    return `p50 ${percentile(sorted, 0.5).toFixed(1)} · p95 ${percentile(sorted, 0.95).toFixed(1)} ms`;
  }

  function renderPriceChart(priceRows, timeline, pair) {
    const closeAt = new Map(priceRows.map((row) => [timeKey(row.ts), row.close]));
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
    const points = (timeline && timeline.points) || [];
    const groups = { correct: [], incorrect: [], pending: [] };
    for (const point of points) {
      const close = closeAt.get(timeKey(point.feature_hour));
      if (!isNumber(close)) continue;
      const group = point.correct === true ? "correct" : point.correct === false ? "incorrect" : "pending";
      groups[group].push({ point, close });
    }
    for (const [group, items] of Object.entries(groups)) {
      if (!items.length) continue;
      traces.push({
        type: "scatter",
        mode: "markers",
        name: group,
        x: items.map((i) => i.point.feature_hour),
        y: items.map((i) => i.close),
        marker: {
          color: OUTCOME_COLOURS[group],
          size: 8,
          symbol: items.map((i) => (i.point.prediction === 1 ? "triangle-up" : "triangle-down")),
          line: { color: "#ffffff", width: 0.5 },
        },
        text: items.map((i) => predictionHover(i.point)),
        hovertemplate: "%{text}<extra></extra>",
      });
    }
    let range;
    if (priceRows.length) {
      const end = Date.parse(priceRows[priceRows.length - 1].ts) + 2 * HOUR_MS;
      const start = Math.max(Date.parse(priceRows[0].ts), end - 7 * 24 * HOUR_MS);
      range = [new Date(start).toISOString(), new Date(end).toISOString()];
    }
    const empty = priceRows.length
      ? null
      : emptyState("No price bars yet: run ", code("btcmlops demo"), " or ", code("btcmlops ingest prices"), ".");
    drawChart(
      "chart-price",
      traces,
      layout({
        uirevision: pair ? pairKey(pair.feature_set, pair.model_type) : "none",
        xaxis: {
          type: "date",
          range,
          rangeselector: {
            buttons: [
              { count: 1, label: "1d", step: "day", stepmode: "backward" },
              { count: 3, label: "3d", step: "day", stepmode: "backward" },
              { count: 7, label: "7d", step: "day", stepmode: "backward" },
              { step: "all", label: "all" },
            ],
            x: 0,
            y: 1.02,
            bgcolor: "#f1f5f9",
            activecolor: "#dbeafe",
          },
        },
        yaxis: { title: { text: "USD" }, tickformat: "$,.0f" },
        margin: { l: 70, r: 18, t: 34, b: 40 },
        legend: { orientation: "h", x: 1, xanchor: "right", y: 1.08 },
      }),
      empty
    );
  }

  function predictionHover(point) {
    const direction = point.prediction === 1 ? "up" : "down";
    const actual =
      point.actual_direction === 1 ? "up" : point.actual_direction === 0 ? "down" : "pending";
    const verdict = point.correct === true ? "correct" : point.correct === false ? "incorrect" : point.outcome_status;
    return [
      `<b>${plotText(shortTime(point.target_hour))}</b> predicted ${direction} (p up ${pct(point.probability_up)})`,
      `actual ${actual} · ${plotText(verdict)}`,
      `model ${plotText(point.model_version)}`,
    ].join("<br>");
  }

  function renderAccuracyChart(pairs, timelines) {
    const traces = [];
    const baselines = new Map();
    let window = null;
    let firstX = null;
    let lastX = null;
    pairs.forEach((pair, index) => {
      const timeline = timelines[index];
      if (!timeline) return;
      window = timeline.window || window;
      const colour = pairColour(pair.feature_set, pair.model_type);
      const name = pairLabel(pair.feature_set, pair.model_type);
      const points = timeline.points || [];
      const resolved = points.filter((p) => isNumber(p.rolling_accuracy));
      const banded = resolved.filter((p) => isNumber(p.rolling_low) && isNumber(p.rolling_high));
      for (const p of points) {
        if (firstX === null || p.target_hour < firstX) firstX = p.target_hour;
        if (lastX === null || p.target_hour > lastX) lastX = p.target_hour;
      }
      if (banded.length) {
        traces.push({
          type: "scatter", mode: "lines", x: banded.map((p) => p.target_hour),
          y: banded.map((p) => p.rolling_high), line: { width: 0, color: colour },
          hoverinfo: "skip", showlegend: false, legendgroup: name,
        });
        traces.push({
          type: "scatter", mode: "lines", x: banded.map((p) => p.target_hour),
          y: banded.map((p) => p.rolling_low), line: { width: 0, color: colour },
          fill: "tonexty", fillcolor: withAlpha(colour, 0.14), hoverinfo: "skip",
          name: `${name} 95% interval`, showlegend: false, legendgroup: name,
        });
      }
      traces.push({
        type: "scatter", mode: "lines", name, legendgroup: name,
        x: resolved.map((p) => p.target_hour), y: resolved.map((p) => p.rolling_accuracy),
        line: { color: colour, width: 2.2 },
        customdata: resolved.map((p) => [p.rolling_low, p.rolling_high]),
        hovertemplate: `${plotText(name)}<br>%{x|%m-%d %H:%M}: %{y:.1%} [%{customdata[0]:.1%}, %{customdata[1]:.1%}]<extra></extra>`,
      });
      const estimated = points.filter((p) => isNumber(p.estimated_accuracy));
      if (estimated.length) {
        traces.push({
          type: "scatter", mode: "lines", name: `${name} label-free estimate`, legendgroup: name,
          x: estimated.map((p) => p.target_hour), y: estimated.map((p) => p.estimated_accuracy),
          line: { color: colour, width: 1.4, dash: "dot" },
          hovertemplate: `${plotText(name)} estimate from its own probabilities<br>%{y:.1%}<extra></extra>`,
        });
      }
      for (const [kind, value] of Object.entries(timeline.baselines || {})) {
        if (isNumber(value)) {
          const key = `${kind}:${value.toFixed(4)}`;
          if (!baselines.has(key)) baselines.set(key, { kind, value, pairs: [] });
          baselines.get(key).pairs.push(name);
        }
      }
    });
    const baselineStyle = { majority_class: "dash", last_hour: "dashdot" };
    const baselineName = { majority_class: "majority-class baseline", last_hour: "last-hour baseline" };
    const kindsSeen = new Map();
    for (const { kind } of baselines.values()) kindsSeen.set(kind, (kindsSeen.get(kind) || 0) + 1);
    for (const { kind, value, pairs: owners } of baselines.values()) {
      if (firstX === null) break;
      const label = baselineName[kind] || kind;
      const name = kindsSeen.get(kind) > 1 ? `${label} (${owners.join(", ")})` : label;
      traces.push({
        type: "scatter", mode: "lines", name, x: [firstX, lastX], y: [value, value],
        line: { color: "#6b7280", width: 1.3, dash: baselineStyle[kind] || "dot" },
        hovertemplate: `${plotText(name)}: %{y:.1%}<extra></extra>`,
      });
    }
    byId("accuracy-window-note").textContent = window
      ? `each point: the last ${window} resolved predictions; band: 95% interval`
      : "";
    drawChart(
      "chart-accuracy",
      traces,
      layout({
        uirevision: "accuracy",
        yaxis: { tickformat: ".0%", title: { text: "accuracy" } },
        xaxis: { type: "date" },
        shapes: [
          {
            type: "line", xref: "paper", x0: 0, x1: 1, y0: 0.5, y1: 0.5,
            line: { color: "#cbd5e1", width: 1 },
          },
        ],
        legend: { orientation: "h", x: 0, y: -0.18, font: { size: 11 } },
        margin: { l: 60, r: 18, t: 8, b: 40 },
      }),
      championPairs().length
        ? emptyState("No predictions with outcomes yet: run ", code("btcmlops demo"), ", or wait an hour for the first outcome.")
        : noModels()
    );
  }

  function renderModelSummary(pairs, timelines, accuracies) {
    if (!pairs.length) {
      fill("overview-models", noModels());
      return;
    }
    const rows = pairs.map((pair, index) => {
      const stats = accuracies[index] && accuracies[index].accuracy_stats;
      const points = (timelines[index] && timelines[index].points) || [];
      const latest = [...points].reverse().find((p) => isNumber(p.estimated_accuracy));
      return { pair, stats, estimate: latest ? latest.estimated_accuracy : null, baselines: timelines[index] && timelines[index].baselines };
    });
    fill(
      "overview-models",
      table(
        [
          { key: "model", label: "Model", cell: (r) => [swatch(pairColour(r.pair.feature_set, r.pair.model_type)), pairLabel(r.pair.feature_set, r.pair.model_type)] },
          {
            key: "accuracy", label: "Realised", num: true, title: "7-day realised accuracy, 95% interval",
            cell: (r) => r.stats ? [pct(r.stats.accuracy), el("span", { class: "sub" }, r.stats.accuracy_interval_95 ? interval(...r.stats.accuracy_interval_95) : "")] : "–",
          },
          { key: "n", label: "Outcomes", num: true, cell: (r) => (r.stats ? count(r.stats.total_predictions) : "–") },
          { key: "pending", label: "Pending", num: true, cell: (r) => (r.stats ? count(r.stats.pending_predictions) : "–") },
          { key: "estimate", label: "Label-free estimate", num: true, title: "the model's own probability-based estimate", cell: (r) => pct(r.estimate) },
          { key: "majority", label: "Majority", num: true, cell: (r) => pct(r.baselines && r.baselines.majority_class) },
          { key: "last_hour", label: "Last hour", num: true, cell: (r) => pct(r.baselines && r.baselines.last_hour) },
        ],
        rows
      )
    );
  }

  function renderLatency(recent) {
    const predictions = (recent && recent.predictions) || [];
    const byPair = new Map();
    for (const p of predictions) {
      if (!isNumber(p.response_time_ms)) continue;
      const key = pairKey(p.feature_set, p.model_type);
      if (!byPair.has(key)) byPair.set(key, { feature_set: p.feature_set, model_type: p.model_type, values: [] });
      byPair.get(key).values.push(p.response_time_ms);
    }
    const traces = [...byPair.values()].map((group) => ({
      type: "histogram",
      name: pairLabel(group.feature_set, group.model_type),
      x: group.values,
      marker: { color: withAlpha(pairColour(group.feature_set, group.model_type), 0.75) },
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

  // ======================================================================= drift

  async function renderDrift() {
    const pair = selectedPair();
    if (!pair) {
      fill("drift-kpis");
      ["chart-drift-history", "chart-distribution"].forEach((id) => drawChart(id, [], {}, noModels()));
      fill("drift-table", noModels());
      fill("drift-recommendations");
      fill("model-drift");
      return;
    }
    const featureSets = [...new Set(state.pairs.map((p) => p.feature_set))];
    const params = { feature_set: pair.feature_set, model_type: pair.model_type };
    const [histories, features, summary, modelDrift] = await Promise.all([
      Promise.all(featureSets.map((fs) => load("/drift/history", { feature_set: fs, days: 30 }))),
      load("/drift/features", { feature_set: pair.feature_set }),
      load("/drift/summary", params),
      load("/drift/model", params),
    ]);
    const analysis = features && features.drift_analysis;
    const results = (analysis && analysis.drift_results) || [];
    const tested = results.filter((r) => r.tested !== false);
    if (!tested.some((r) => r.feature === state.driftFeature)) {
      state.driftFeature = tested.length ? tested[0].feature : null;
    }
    renderDriftKpis(analysis, summary && summary.summary, modelDrift && modelDrift.drift_analysis);
    renderDriftHistory(featureSets, histories);
    renderDriftTable(analysis);
    renderRecommendations(summary && summary.summary);
    renderModelDrift(modelDrift && modelDrift.drift_analysis);
    renderFeaturePicker(tested);
    await renderDistribution(pair);
  }

  function renderDriftKpis(analysis, summary, modelDrift) {
    const cards = [];
    if (summary) cards.push(kpi("Overall severity", pill(summary.overall_severity || summary.status || "n/a"), pairLabel(summary.feature_set, summary.model_type)));
    if (analysis) {
      if (analysis.status === "success") {
        cards.push(
          kpi("Feature drift", pill(analysis.drift_severity), `${count(analysis.significant_drift_count)} of ${count(analysis.features_tested)} features drifted`),
          kpi("Windows", `${count(analysis.reference_samples)} / ${count(analysis.current_samples)}`, `rows: reference ${analysis.reference_period_days} d / current ${analysis.current_period_days} d`)
        );
      } else {
        cards.push(kpi("Feature drift", pill(analysis.status), analysis.message || "not enough rows for a check"));
      }
    }
    if (modelDrift) {
      const accuracy = modelDrift.accuracy || {};
      cards.push(
        kpi("Model drift", pill(modelDrift.drift_severity || modelDrift.status), isNumber(accuracy.drop) ? `accuracy drop ${pct(accuracy.drop)} (p ${pValue(accuracy.p_value)})` : `${count(modelDrift.current_predictions)} recent outcomes`)
      );
      const estimate = modelDrift.estimated_accuracy;
      if (estimate) cards.push(kpi("Label-free estimate", pct(estimate.value), `${count(estimate.predictions)} predictions`));
    }
    fill("drift-kpis", ...cards);
  }

  function renderDriftHistory(featureSets, histories) {
    const traces = [];
    const unknown = { x: [], text: [] };
    featureSets.forEach((featureSet, index) => {
      const reports = ((histories[index] && histories[index].reports) || [])
        .slice()
        .sort((a, b) => (a.checked_at < b.checked_at ? -1 : 1));
      const byKind = new Map();
      for (const report of reports) {
        const level = SEVERITY_LEVELS[report.severity];
        if (level === undefined) {
          unknown.x.push(report.checked_at);
          unknown.text.push(`${plotText(report.feature_set)} ${plotText(report.kind)}: ${plotText(report.status)}`);
          continue;
        }
        const kind = report.kind === "model" ? `model ${report.model_type || ""}`.trim() : report.kind;
        const key = `${featureSet}|${kind}`;
        if (!byKind.has(key)) byKind.set(key, { kind, reports: [] });
        byKind.get(key).reports.push({ report, level });
      }
      for (const { kind, reports: items } of byKind.values()) {
        const colour = FEATURE_SET_COLOURS[featureSet] || "#475467";
        const dash = kind === "feature" ? "solid" : kind === "summary" ? "dash" : "dot";
        traces.push({
          type: "scatter",
          mode: "lines+markers",
          name: `${featureSet} ${kind}`,
          x: items.map((i) => i.report.checked_at),
          y: items.map((i) => i.level),
          line: { color: colour, shape: "hv", width: kind === "feature" ? 2.2 : 1.4, dash },
          marker: { size: 6, color: colour },
          text: items.map((i) => driftHover(i.report)),
          hovertemplate: "%{text}<extra></extra>",
        });
      }
    });
    if (unknown.x.length) {
      traces.push({
        type: "scatter", mode: "markers", name: "not enough data", x: unknown.x,
        y: unknown.x.map(() => -1), marker: { symbol: "circle-open", color: "#98a2b3", size: 7 },
        text: unknown.text, hovertemplate: "%{x|%m-%d %H:%M}<br>%{text}<extra></extra>",
      });
    }
    const band = (y0, y1, colour) => ({
      type: "rect", xref: "paper", x0: 0, x1: 1, y0, y1, fillcolor: colour, line: { width: 0 }, layer: "below",
    });
    drawChart(
      "chart-drift-history",
      traces,
      layout({
        uirevision: "drift-history",
        xaxis: { type: "date" },
        yaxis: {
          tickvals: [-1, 0, 1, 2, 3],
          ticktext: ["no data", "none", "low", "medium", "high"],
          range: [-1.5, 3.5],
          title: { text: "severity" },
        },
        shapes: [band(1.5, 2.5, "rgba(245, 158, 11, 0.07)"), band(2.5, 3.5, "rgba(220, 38, 38, 0.07)")],
      }),
      emptyState("No drift checks recorded yet: they run daily with the scheduler (", code("btcmlops demo"), " replays them).")
    );
  }

  function driftHover(report) {
    const lines = [`<b>${plotText(utc(report.checked_at))}</b>`, `${plotText(report.kind)} check: ${plotText(report.severity)}`];
    if (isNumber(report.significant_drift_count)) {
      lines.push(`${report.significant_drift_count} of ${report.features_tested} features drifted`);
    }
    if (isNumber(report.accuracy_drop)) lines.push(`accuracy drop ${pct(report.accuracy_drop)}`);
    return lines.join("<br>");
  }

  function renderDriftTable(analysis) {
    const note = byId("drift-table-note");
    note.textContent = "";
    if (!analysis) {
      fill("drift-table", emptyState("The feature drift check could not be loaded (see above)."));
      return;
    }
    if (analysis.status !== "success") {
      fill(
        "drift-table",
        emptyState(
          `Not enough data for a drift check: ${count(analysis.reference_samples)} reference and ${count(analysis.current_samples)} current rows. `,
          analysis.message || "",
          " Run ",
          code("btcmlops demo"),
          " or wait for more hours."
        )
      );
      return;
    }
    note.textContent = `${utc(analysis.timestamp)} · reference ${analysis.reference_period_days} d vs current ${analysis.current_period_days} d`;
    const noiseCorrected = (r) => (isNumber(r.psi_noise_corrected) ? r.psi_noise_corrected : r.psi_excess);
    const verdict = (r) => (r.tested === false ? "untested" : r.drift_detected ? "drift" : "stable");
    const columns = [
      { key: "feature", label: "Feature", value: (r) => r.feature, firstDirection: "ascending" },
      { key: "psi", label: "PSI", num: true, value: (r) => r.psi, cell: (r) => num(r.psi) },
      { key: "psi_expected", label: "Noise level", num: true, title: "PSI expected under no drift at these sample sizes", value: (r) => r.psi_expected, cell: (r) => num(r.psi_expected) },
      { key: "psi_excess", label: "PSI above noise", num: true, value: noiseCorrected, cell: (r) => num(noiseCorrected(r)) },
      { key: "ks", label: "KS statistic", num: true, value: (r) => r.ks_statistic, cell: (r) => num(r.ks_statistic) },
      { key: "p_adjusted", label: "Adjusted p", num: true, title: "KS p-value after Benjamini–Hochberg", value: (r) => r.ks_pvalue_adjusted, cell: (r) => pValue(r.ks_pvalue_adjusted), firstDirection: "ascending" },
      { key: "means", label: "Mean ref → cur", num: true, value: (r) => (isNumber(r.current_mean) && isNumber(r.reference_mean) ? r.current_mean - r.reference_mean : null), cell: (r) => `${num(r.reference_mean, 3)} → ${num(r.current_mean, 3)}` },
      { key: "verdict", label: "Verdict", value: (r) => (r.drift_detected ? 1 : 0), cell: (r) => pill(verdict(r), verdict(r) === "stable" ? "good" : "") },
    ];
    if (!state.sorts["drift-table"]) state.sorts["drift-table"] = { key: "psi_excess", direction: "descending" };
    fill(
      "drift-table",
      table(columns, analysis.drift_results || [], {
        sortId: "drift-table",
        rowClass: (r) => (r.drift_detected ? "drifted" : null),
        onRowClick: (r) => {
          if (r.tested === false) return;
          state.driftFeature = r.feature;
          byId("drift-feature-select").value = r.feature;
          const pair = selectedPair();
          if (pair) renderDistribution(pair).then(renderBanner);
        },
      })
    );
  }

  function renderRecommendations(summary) {
    const items = (summary && summary.recommendations) || [];
    fill(
      "drift-recommendations",
      ...(items.length
        ? items.map((text) => el("li", null, text))
        : [el("li", { class: "muted" }, summary ? "Nothing to act on." : "No drift summary available.")])
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
    const withInterval = (value, bounds) =>
      `${pct(value)} ${Array.isArray(bounds) ? interval(bounds[0], bounds[1]) : ""}`.trim();
    const facts = [
      fact("Status", pill(analysis.status)),
      fact("Outcomes ref / current", `${count(analysis.reference_predictions)} / ${count(analysis.current_predictions)}`),
      fact("Accuracy reference", withInterval(accuracy.reference, accuracy.reference_interval)),
      fact("Accuracy current", withInterval(accuracy.current, accuracy.current_interval)),
      fact("Drop (p-value)", `${pct(accuracy.drop)} (${pValue(accuracy.p_value)})`),
      fact("ECE ref → cur", `${num(calibration.reference_ece)} → ${num(calibration.current_ece)}`),
      fact("Brier ref → cur", `${num(calibration.reference_brier)} → ${num(calibration.current_brier)}`),
      fact("Label-free estimate", `${pct(estimate.value)} over ${count(estimate.predictions)}`),
    ];
    fill("model-drift", ...facts);
  }

  function renderFeaturePicker(tested) {
    const select = byId("drift-feature-select");
    select.replaceChildren(
      ...tested.map((r) => el("option", { value: r.feature }, `${r.feature}${r.drift_detected ? "  (drift)" : ""}`))
    );
    if (!tested.length) select.append(el("option", { value: "" }, "no features"));
    select.value = state.driftFeature || "";
  }

  async function renderDistribution(pair) {
    const feature = state.driftFeature;
    if (!feature) {
      drawChart("chart-distribution", [], {}, emptyState("Choose a feature once a drift check has run."));
      return;
    }
    const result = await load("/drift/distribution", { feature_set: pair.feature_set, feature });
    if (!result || state.driftFeature !== feature) return;
    const edges = result.edges || [];
    const reference = result.reference_share || [];
    const current = result.current_share || [];
    const widths = [];
    const centres = [];
    for (let i = 0; i < reference.length; i += 1) {
      let low = edges[i];
      let high = edges[i + 1];
      const typical = isNumber(edges[i + 2]) && isNumber(edges[i + 1]) ? edges[i + 2] - edges[i + 1] : isNumber(edges[i - 1]) && isNumber(low) ? low - edges[i - 1] : 1;
      if (!isNumber(low)) low = high - typical;
      if (!isNumber(high)) high = low + typical;
      centres.push((low + high) / 2);
      widths.push((high - low) * 0.96);
    }
    const colour = pairColour(pair.feature_set, pair.model_type);
    const traces = [
      {
        type: "bar", name: `reference (${count(result.reference_samples)} rows)`, x: centres, y: reference,
        width: widths, marker: { color: "rgba(100, 116, 139, 0.55)" },
        hovertemplate: "%{x:.4g}: %{y:.1%} of reference<extra></extra>",
      },
      {
        type: "bar", name: `current (${count(result.current_samples)} rows)`, x: centres, y: current,
        width: widths, marker: { color: withAlpha(colour, 0.55), line: { color: colour, width: 1 } },
        hovertemplate: "%{x:.4g}: %{y:.1%} of current<extra></extra>",
      },
    ];
    drawChart(
      "chart-distribution",
      traces,
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

  // ======================================================================= models

  async function renderModels() {
    const [versions, history] = await Promise.all([load("/models/versions"), load("/models/history")]);
    const all = (versions && versions.versions) || [];
    const changes = (history && history.history) || [];
    renderChampions(all, changes);
    renderChampionTimeline(changes);
    renderImportances(all);
    renderRegistry(all);
  }

  function renderChampions(all, changes) {
    const champions = all.filter((v) => v.status === "champion");
    if (!champions.length) {
      fill("models-champions", noModels());
      return;
    }
    const lastChange = (v) =>
      [...changes].reverse().find((c) => c.feature_set === v.feature_set && c.model_type === v.model_type);
    fill(
      "models-champions",
      table(
        [
          { key: "model", label: "Model", cell: (v) => [swatch(pairColour(v.feature_set, v.model_type)), pairLabel(v.feature_set, v.model_type)] },
          { key: "version", label: "Champion", className: "version", cell: (v) => el("span", { title: v.version, class: "champion-version", "data-pair": pairKey(v.feature_set, v.model_type) }, shortVersion(v.version, v.feature_set, v.model_type)) },
          { key: "test", label: "Test accuracy", num: true, cell: (v) => [pct(v.test_accuracy), el("span", { class: "sub" }, interval(...(v.test_accuracy_ci || [])))] },
          {
            key: "since", label: "Since",
            cell: (v) => {
              const c = lastChange(v);
              if (!c) return "–";
              return [
                shortTime(c.changed_at),
                el("span", { class: "sub" }, `${c.action} by ${c.actor}`),
                c.reason ? el("span", { class: "sub reason" }, c.reason) : null,
              ];
            },
          },
          {
            key: "action", label: "",
            cell: (v) => el("button", {
              type: "button", class: "small danger rollback-button", "data-pair": pairKey(v.feature_set, v.model_type),
              onclick: () => rollback(v),
            }, "Roll back"),
          },
        ],
        champions
      )
    );
  }

  async function rollback(version) {
    const label = pairLabel(version.feature_set, version.model_type);
    const result = await runAction({
      label: `rollback ${label}`,
      title: "Roll back champion",
      confirmLabel: "Roll back",
      text: `Re-point the champion of ${label} to the version ${version.version} replaced.`,
      askReason: true,
      danger: true,
      method: "POST",
      path: "/models/rollback",
      params: { feature_set: version.feature_set, model_type: version.model_type },
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
      title: "Promote version",
      confirmLabel: "Promote",
      text: `Make ${version.version} the champion of ${label}. Serving switches to it within seconds.`,
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
    const symbols = { promote: "circle", deploy: "star", rollback: "triangle-left", auto_rollback: "x" };
    const traces = [];
    for (const items of byPair.values()) {
      const first = items[0];
      const colour = pairColour(first.feature_set, first.model_type);
      const label = (c) => shortVersion(c.version, c.feature_set, c.model_type);
      const x = items.map((c) => c.changed_at);
      const y = items.map(label);
      if (state.serverNow && state.serverNow > x[x.length - 1]) {
        x.push(state.serverNow);
        y.push(y[y.length - 1]);
      }
      traces.push({
        type: "scatter", mode: "lines", x, y, showlegend: false, hoverinfo: "skip",
        line: { color: withAlpha(colour, 0.5), shape: "hv", width: 2 },
      });
      traces.push({
        type: "scatter",
        mode: "markers",
        name: pairLabel(first.feature_set, first.model_type),
        x: items.map((c) => c.changed_at),
        y: items.map(label),
        marker: { color: colour, size: 11, symbol: items.map((c) => symbols[c.action] || "circle"), line: { color: "#fff", width: 1 } },
        text: items.map((c) => [`<b>${plotText(c.action)}</b> ${plotText(utc(c.changed_at))}`, plotText(c.version), `from ${plotText(c.previous_version || "nothing")}`, `by ${plotText(c.actor)}: ${plotText(c.reason || "no reason given")}`].join("<br>")),
        hovertemplate: "%{text}<extra></extra>",
      });
    }
    drawChart(
      "chart-champions",
      traces,
      layout({
        xaxis: { type: "date" },
        yaxis: { type: "category", automargin: true, tickfont: { family: "ui-monospace, Menlo, Consolas, monospace", size: 11 } },
        margin: { l: 20, r: 18, t: 8, b: 40 },
      }),
      emptyState("No champion has been promoted yet: ", code("btcmlops train --promote"), " or ", code("btcmlops demo"), ".")
    );
  }

  function renderImportances(all) {
    const pair = selectedPair();
    const champion = pair && all.find((v) => v.feature_set === pair.feature_set && v.model_type === pair.model_type && v.status === "champion");
    const importances = ((champion && champion.metrics && champion.metrics.feature_importances) || [])
      .filter((i) => isNumber(i.importance_mean))
      .sort((a, b) => b.importance_mean - a.importance_mean)
      .slice(0, 18)
      .reverse();
    const colour = pair ? pairColour(pair.feature_set, pair.model_type) : "#475467";
    drawChart(
      "chart-importances",
      importances.length
        ? [{
            type: "bar", orientation: "h", x: importances.map((i) => i.importance_mean),
            y: importances.map((i) => plotText(i.feature)),
            error_x: { type: "data", array: importances.map((i) => i.importance_std || 0), color: "#94a3b8", thickness: 1 },
            marker: { color: withAlpha(colour, 0.8) },
            hovertemplate: "%{y}: %{x:.4f}<extra></extra>",
          }]
        : [],
      layout({
        xaxis: { title: { text: "drop in score when shuffled" }, zeroline: true, zerolinecolor: "#cbd5e1" },
        yaxis: { automargin: true },
        margin: { l: 20, r: 18, t: 8, b: 44 },
        showlegend: false,
      }),
      champion
        ? emptyState("This champion has no recorded feature importances.")
        : pair ? emptyState(`${pairLabel(pair.feature_set, pair.model_type)} has no champion yet.`) : noModels()
    );
  }

  function renderRegistry(all) {
    if (!all.length) {
      fill("models-registry", noModels());
      return;
    }
    const baseline = (v, name) => v.metrics && v.metrics.baselines && v.metrics.baselines[name] && v.metrics.baselines[name].accuracy;
    const test = (v) => (v.metrics && v.metrics.test) || {};
    fill(
      "models-registry",
      table(
        [
          { key: "version", label: "Version", className: "version", value: (v) => v.version, cell: (v) => el("span", { title: v.version }, v.version) },
          { key: "model", label: "Model", value: (v) => pairKey(v.feature_set, v.model_type), cell: (v) => [swatch(pairColour(v.feature_set, v.model_type)), pairLabel(v.feature_set, v.model_type)] },
          { key: "status", label: "Status", value: (v) => v.status, cell: (v) => pill(v.status) },
          { key: "test", label: "Test accuracy", num: true, value: (v) => v.test_accuracy, cell: (v) => [pct(v.test_accuracy), el("span", { class: "sub" }, interval(...(v.test_accuracy_ci || [])))] },
          { key: "validation", label: "Validation", num: true, value: (v) => v.validation_accuracy, cell: (v) => pct(v.validation_accuracy) },
          { key: "auc", label: "ROC AUC", num: true, value: (v) => test(v).roc_auc, cell: (v) => num(test(v).roc_auc) },
          { key: "brier", label: "Brier", num: true, value: (v) => test(v).brier_score, cell: (v) => num(test(v).brier_score) },
          { key: "baselines", label: "Majority / last hour", num: true, value: (v) => baseline(v, "majority_class"), cell: (v) => `${pct(baseline(v, "majority_class"))} / ${pct(baseline(v, "last_hour"))}` },
          { key: "rows", label: "Test rows", num: true, value: (v) => test(v).rows, cell: (v) => count(test(v).rows) },
          { key: "created", label: "Created", value: (v) => v.created_at, cell: (v) => [shortTime(v.created_at), el("span", { class: "sub" }, `by ${v.created_by}`)] },
          { key: "reason", label: "Reason", cell: (v) => el("span", { class: "sub" }, v.reason || "") },
          {
            key: "action", label: "",
            cell: (v) => v.status === "champion" ? "" : el("button", { type: "button", class: "small promote-button", "data-version": v.version, onclick: () => promote(v) }, "Promote"),
          },
        ],
        all,
        { sortId: "registry" }
      )
    );
  }

  // ======================================================================= retraining

  let retrainJob = null; // {job_id, pair} while a run started here is being followed

  async function renderRetraining() {
    const pair = selectedPair();
    byId("retrain-button").disabled = !pair || Boolean(retrainJob);
    const [checks, history] = await Promise.all([
      pair ? load("/retrain/checks", { feature_set: pair.feature_set, model_type: pair.model_type, limit: 50 }) : null,
      load("/retrain/history", { limit: 100 }),
    ]);
    const runs = (history && history.runs) || [];
    renderRunsChart(runs);
    renderRuns(runs, history);
    renderChecks(pair, checks);
  }

  function accuracyOf(metrics) {
    if (!metrics) return null;
    if (isNumber(metrics.accuracy)) return metrics.accuracy;
    if (isNumber(metrics.test_accuracy)) return metrics.test_accuracy;
    return null;
  }

  function renderRunsChart(runs) {
    const finished = runs.filter((r) => isNumber(accuracyOf(r.challenger_metrics))).reverse();
    const decisionColour = { deployed: "#16a34a", kept: "#64748b" };
    const connectors = { x: [], y: [] };
    for (const run of finished) {
      const champion = accuracyOf(run.champion_metrics);
      if (isNumber(champion)) {
        connectors.x.push(run.started_at, run.started_at, null);
        connectors.y.push(champion, accuracyOf(run.challenger_metrics), null);
      }
    }
    const withChampion = finished.filter((r) => isNumber(accuracyOf(r.champion_metrics)));
    const traces = [
      { type: "scatter", mode: "lines", x: connectors.x, y: connectors.y, line: { color: "#cbd5e1", width: 2 }, hoverinfo: "skip", showlegend: false },
      {
        type: "scatter", mode: "markers", name: "champion", x: withChampion.map((r) => r.started_at),
        y: withChampion.map((r) => accuracyOf(r.champion_metrics)),
        marker: { symbol: "diamond-open", size: 10, color: "#334155", line: { width: 2 } },
        text: withChampion.map((r) => `champion ${plotText(r.champion_version)}`),
        hovertemplate: "%{text}<br>%{y:.1%}<extra></extra>",
      },
    ];
    for (const decision of ["deployed", "kept"]) {
      const items = finished.filter((r) => (r.decision === decision) || (decision === "kept" && r.decision !== "deployed"));
      if (!items.length) continue;
      traces.push({
        type: "scatter", mode: "markers", name: `challenger ${decision}`,
        x: items.map((r) => r.started_at), y: items.map((r) => accuracyOf(r.challenger_metrics)),
        marker: { size: 11, color: decisionColour[decision], symbol: items.map((r) => (r.feature_set === "finbert" ? "square" : "circle")) },
        text: items.map((r) => `${plotText(pairLabel(r.feature_set, r.model_type))}: ${plotText(r.decision_reason || r.decision || "")}`),
        hovertemplate: "%{text}<br>challenger %{y:.1%}<extra></extra>",
      });
    }
    drawChart(
      "chart-runs",
      traces,
      layout({ xaxis: { type: "date" }, yaxis: { tickformat: ".0%", title: { text: "accuracy" } } }),
      emptyState("No retraining has finished yet: press ", el("b", null, "Run retraining"), " above, or let the scheduler trigger one.")
    );
  }

  function renderRuns(runs, history) {
    if (!history) {
      fill("retrain-runs", emptyState("The run history could not be loaded (see above)."));
      return;
    }
    if (!runs.length) {
      fill("retrain-runs", emptyState("No retraining runs yet: press ", el("b", null, "Run retraining"), " or run ", code("btcmlops demo"), "."));
      return;
    }
    const significance = (r) => (r.significance && isNumber(r.significance.p_value) ? r.significance.p_value : null);
    fill(
      "retrain-runs",
      table(
        [
          { key: "started", label: "Started", value: (r) => r.started_at, cell: (r) => shortTime(r.started_at) },
          { key: "model", label: "Model", value: (r) => pairKey(r.feature_set, r.model_type), cell: (r) => [swatch(pairColour(r.feature_set, r.model_type)), pairLabel(r.feature_set, r.model_type)] },
          { key: "trigger", label: "Trigger", value: (r) => r.trigger, cell: (r) => [r.trigger, el("span", { class: "sub" }, (r.reasons || []).join("; "))] },
          { key: "status", label: "Status", value: (r) => r.status, cell: (r) => pill(r.status) },
          { key: "decision", label: "Decision", value: (r) => r.decision, cell: (r) => (r.decision ? pill(r.decision) : "–") },
          { key: "accuracy", label: "Challenger vs champion", num: true, value: (r) => accuracyOf(r.challenger_metrics), cell: (r) => `${pct(accuracyOf(r.challenger_metrics))} vs ${pct(accuracyOf(r.champion_metrics))}` },
          { key: "p", label: "McNemar p", num: true, value: significance, cell: (r) => pValue(significance(r)) },
          { key: "duration", label: "Duration", num: true, value: (r) => r.duration_seconds, cell: (r) => seconds(r.duration_seconds) },
          { key: "reason", label: "Why", cell: (r) => el("span", { class: "sub" }, r.error || r.decision_reason || "") },
        ],
        runs,
        { sortId: "runs", rowClass: (r) => `run-row status-${r.status}` }
      )
    );
  }

  function checkLines(check) {
    if (!check || typeof check !== "object") return "–";
    const lines = [];
    for (const [key, value] of Object.entries(check)) {
      if (key === "reason" || value === null || value === undefined || typeof value === "object") continue;
      let shown = value;
      if (typeof value === "boolean") shown = value ? "yes" : "no";
      else if (isNumber(value)) {
        shown = /accuracy|drop|threshold/.test(key) && Math.abs(value) <= 1 ? pct(value) : /p_value/.test(key) ? pValue(value) : Number.isInteger(value) ? count(value) : num(value, 2);
      } else if (/_at$/.test(key)) shown = shortTime(value);
      lines.push(el("li", null, el("span", { class: "k" }, `${key.replace(/_/g, " ")}: `), String(shown)));
    }
    const reason = check.reason ? el("li", { class: "muted" }, check.reason) : null;
    return el("ul", { class: "check-lines" }, reason, lines);
  }

  function renderChecks(pair, checks) {
    if (!pair) {
      fill("retrain-checks", noModels());
      return;
    }
    if (!checks) {
      fill("retrain-checks", emptyState("The retraining checks could not be loaded (see above)."));
      return;
    }
    const items = checks.checks || [];
    if (!items.length) {
      fill("retrain-checks", emptyState("No checks recorded for this model yet: the scheduler runs one daily (", code("btcmlops demo"), " replays them)."));
      return;
    }
    fill(
      "retrain-checks",
      table(
        [
          { key: "checked", label: "Checked", cell: (c) => shortTime(c.checked_at) },
          { key: "decision", label: "Retrain?", cell: (c) => [pill(c.should_retrain ? "retrain" : "no", c.should_retrain ? "medium" : "none"), el("ul", { class: "check-lines" }, (c.reasons || []).map((r) => el("li", null, r)))] },
          { key: "performance", label: "Performance", cell: (c) => checkLines(c.performance_check) },
          { key: "drift", label: "Drift", cell: (c) => checkLines(c.drift_check) },
          { key: "schedule", label: "Schedule", cell: (c) => checkLines(c.schedule_check) },
          { key: "data", label: "Data", cell: (c) => checkLines(c.data_check) },
        ],
        items
      )
    );
  }

  async function startRetraining() {
    const pair = selectedPair();
    if (!pair || retrainJob) return;
    const label = pairLabel(pair.feature_set, pair.model_type);
    const deploy = byId("retrain-deploy").checked;
    const response = await runAction({
      label: `retrain ${label}`,
      title: "Run retraining",
      confirmLabel: "Run",
      text: `Train a challenger for ${label} and ${deploy ? "deploy it if it beats the champion" : "only compare it with the champion"}.`,
      askReason: false,
      method: "POST",
      path: "/retrain/execute",
      params: { feature_set: pair.feature_set, model_type: pair.model_type, deploy_if_better: deploy, async: true },
    });
    if (!response) return;
    if (!response.job_id) {
      showJob(null, response.deployment ? `finished: ${response.deployment.reason}` : "finished");
      await refresh();
      return;
    }
    retrainJob = { job_id: response.job_id, label };
    byId("retrain-button").disabled = true;
    showJob(retrainJob, response.status || "queued");
    await refresh();
    followJob();
  }

  function showJob(job, text) {
    const line = byId("retrain-job");
    line.replaceChildren(job ? el("span", null, `Job ${job.job_id} (${job.label}): `) : "", pill(text.split(":")[0]), text.includes(":") ? ` ${text.slice(text.indexOf(":") + 1)}` : "");
  }

  async function followJob() {
    const job = retrainJob;
    if (!job) return;
    let answer = null;
    try {
      answer = await api("GET", `/retrain/jobs/${encodeURIComponent(job.job_id)}`);
    } catch (error) {
      actionProblems.set(`retraining job ${job.job_id}`, error.describe ? error.describe() : String(error));
      renderBanner();
    }
    const run = answer && answer.job;
    if (run && !RUNNING_STATUSES.has(run.status)) {
      retrainJob = null;
      const outcome = run.status === "failed" ? `failed: ${run.error || "see the server log"}` : `${run.decision || run.status}: ${run.decision_reason || ""}`;
      showJob(job, outcome);
      byId("retrain-button").disabled = false;
      await refresh();
      return;
    }
    if (run) showJob(job, run.status);
    setTimeout(followJob, JOB_POLL_MS);
  }

  // ======================================================================= health

  async function renderHealth() {
    const scheduler = await load("/scheduler/jobs");
    const health = state.health;
    const components = (health && health.components) || {};
    const store = components.store || {};
    const writer = components.prediction_logging || {};
    const models = components.models || {};
    const jobs = (scheduler && scheduler.jobs) || [];
    const failing = jobs.filter((j) => (j.consecutive_failures || 0) > 0).length;
    fill(
      "health-kpis",
      kpi("Service", pill(health ? health.status : "unreachable"), health ? utc(health.timestamp) : ""),
      kpi("Store", pill(store.status || "unknown"), store.dialect || store.error || ""),
      kpi("Prediction writer", pill(writer.state || "unknown"), `queue ${count(writer.queue_depth)} of ${count(writer.queue_capacity)}`),
      kpi("Spool", bytes(writer.spool_bytes), `spooled ${count(writer.spooled)} · replayed ${count(writer.replayed)} · lost ${count(writer.lost)}`),
      kpi("Loaded models", count(health ? health.loaded_models : null), `${Object.keys(models.load_errors || {}).length} load errors`),
      kpi("Scheduler", pill(scheduler ? (scheduler.running ? "running" : "stopped") : "unknown"), scheduler ? `${jobs.length} jobs · ${failing} failing` : "")
    );
    fill(
      "health-store",
      fact("Store", store.status || "–"),
      fact("Dialect", store.dialect || "–"),
      fact("Writer state", writer.state || "–"),
      fact("Queue depth / capacity", `${count(writer.queue_depth)} / ${count(writer.queue_capacity)}`),
      fact("Written", count(writer.written)),
      fact("Spooled / replayed", `${count(writer.spooled)} / ${count(writer.replayed)}`),
      fact("Lost", count(writer.lost)),
      fact("Spool size", bytes(writer.spool_bytes)),
      fact("Last error", writer.last_error || store.error || "none")
    );
    const rows = Object.entries(models.feature_rows || {});
    fill(
      "health-rows",
      rows.length
        ? table([{ key: "set", label: "Feature set", cell: (r) => r[0] }, { key: "ts", label: "Newest row in memory", cell: (r) => utc(r[1]) }], rows)
        : emptyState("No feature rows in memory yet: ", code("btcmlops features build --feature-set vader"), ".")
    );
    const loaded = models.loaded || [];
    const errors = Object.entries(models.load_errors || {});
    fill(
      "health-models",
      loaded.length
        ? table(
            [
              { key: "model", label: "Model", cell: (m) => [swatch(pairColour(m.feature_set, m.model_type)), pairLabel(m.feature_set, m.model_type)] },
              { key: "version", label: "Version", className: "version", cell: (m) => shortVersion(m.version, m.feature_set, m.model_type) },
              { key: "loaded", label: "Loaded", cell: (m) => shortTime(m.loaded_at) },
              { key: "test", label: "Test accuracy", num: true, cell: (m) => pct(m.test_accuracy) },
              { key: "features", label: "Features", num: true, cell: (m) => count(m.features) },
            ],
            loaded
          )
        : noModels(),
      ...errors.map(([pairName, message]) => el("p", { class: "muted" }, `${pairName}: ${message}`))
    );
    renderJobs(scheduler, jobs);
  }

  function renderJobs(scheduler, jobs) {
    byId("scheduler-note").textContent = scheduler ? (scheduler.running ? "scheduler running" : "scheduler not running in this process") : "";
    if (!scheduler) {
      fill("health-jobs", emptyState("The scheduler could not be asked (see above)."));
      return;
    }
    if (!jobs.length) {
      fill("health-jobs", emptyState("No scheduler jobs have run yet: start them with ", code("btcmlops serve"), " or replay with ", code("btcmlops demo"), "."));
      return;
    }
    fill(
      "health-jobs",
      table(
        [
          { key: "name", label: "Job", value: (j) => j.name, cell: (j) => j.name },
          { key: "last", label: "Last started", value: (j) => j.last_started_at, cell: (j) => shortTime(j.last_started_at) },
          { key: "status", label: "Last status", value: (j) => j.last_status, cell: (j) => pill(j.last_status || "never") },
          { key: "duration", label: "Duration", num: true, value: (j) => j.last_duration_seconds, cell: (j) => seconds(j.last_duration_seconds) },
          { key: "next", label: "Next run", value: (j) => j.next_run_at, cell: (j) => shortTime(j.next_run_at) },
          { key: "failures", label: "Failures in a row", num: true, value: (j) => j.consecutive_failures, cell: (j) => count(j.consecutive_failures) },
          { key: "error", label: "Last error", cell: (j) => el("span", { class: "sub" }, j.last_error || "") },
        ],
        jobs,
        { sortId: "jobs" }
      )
    );
  }

  // ======================================================================= refresh loop

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
      // A drawing bug must not stop the refresh loop; it shows, and the console has the stack.
      problems.set(`drawing the ${view} view`, String(error));
      console.error(error);
    }
    renderBanner();
    state.refreshes += 1;
    byId("refresh-status").textContent = `updated ${new Date().toLocaleTimeString()} · every ${REFRESH_MS / 1000} s while visible`;
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
      tab.classList.toggle("active", tab.dataset.tab === state.view);
      if (tab.dataset.tab === state.view) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    resizeCharts(byId(`view-${state.view}`));
    document.title = `${state.view[0].toUpperCase()}${state.view.slice(1)} · btcmlops`;
  }

  function start() {
    window.addEventListener("hashchange", () => {
      showView();
      refresh();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) clearTimeout(timer);
      else refresh();
    });
    byId("refresh-button").addEventListener("click", () => refresh());
    byId("pair-select").addEventListener("change", (event) => {
      state.pair = event.target.value;
      state.driftFeature = null;
      try {
        localStorage.setItem(PAIR_STORAGE, state.pair);
      } catch {
        /* not remembered across visits */
      }
      refresh();
    });
    byId("drift-feature-select").addEventListener("change", (event) => {
      state.driftFeature = event.target.value;
      const pair = selectedPair();
      if (pair) renderDistribution(pair).then(renderBanner);
    });
    byId("retrain-button").addEventListener("click", startRetraining);
    showView();
    refresh();
  }

  if (typeof Plotly === "undefined") {
    byId("banner-list").replaceChildren(el("li", null, "plotly.min.js did not load: charts cannot be drawn."));
    byId("banner").hidden = false;
  }
  start();
})();
