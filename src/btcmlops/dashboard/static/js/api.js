/* The HTTP API client: requests with the stored API key; reads that ask for the key on a 401. */

import { API_BASE, KEY_STORAGE } from "./config.js";
import { problems } from "./banner.js";
import { promptForKey } from "./dialog.js";

export class ApiError extends Error {
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

export const describeError = (error) =>
  error instanceof ApiError ? error.describe() : String(error);

export function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function storeKey(key) {
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
export async function send(method, path, params) {
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

/** A read: on 401 (reads protected by the server) ask for the key and try again. */
export async function api(method, path, params) {
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
export async function load(path, params) {
  try {
    return await api("GET", path, params);
  } catch (error) {
    problems.set(`GET ${path}${queryString(params)}`, describeError(error));
    return null;
  }
}
