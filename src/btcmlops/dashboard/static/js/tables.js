/* Tables from column specs, sortable by a click on a header. */

import { state } from "./state.js";
import { el } from "./dom.js";

/**
 * A table from column specs {key, label, cell(row) -> node|text, value(row) -> sortable,
 * num, title, className, firstDirection}. With `sortId`, clicking a header with a `value`
 * sorts by it; the choice is kept across refreshes.
 */
export function table(columns, rows, options = {}) {
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
