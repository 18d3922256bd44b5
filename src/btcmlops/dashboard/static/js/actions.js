/* State-changing requests, each confirmed in the dialog first. */

import { KEY_REQUIRED } from "./config.js";
import { actionProblems, renderBanner } from "./banner.js";
import { ApiError, describeError, send, storeKey, storedKey } from "./api.js";
import { ask } from "./dialog.js";

/**
 * A state-changing action: confirm it (with a reason and, when the server has a key and
 * this tab has none yet, the API key), send it, and on 401 ask for the key again.
 * Resolves the response, or null when cancelled or refused (the banner says why).
 */
export async function runAction(action) {
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
