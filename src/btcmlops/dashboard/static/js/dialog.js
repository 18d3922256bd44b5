/* The one modal dialog: confirmations, a reason, and the API key when the server wants one. */

import { byId } from "./dom.js";

let dialogQueue = Promise.resolve();

/** Open the dialog (one at a time); resolves {reason, key}, or null when cancelled. */
export function ask(options) {
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

let keyPrompt = null; // one prompt shared by every read that met a 401 meanwhile

/** Ask for the API key; reads refused meanwhile share the one prompt. */
export function promptForKey(message) {
  if (!keyPrompt) {
    keyPrompt = ask({ title: "API key needed", text: message, askKey: true }).finally(() => {
      keyPrompt = null;
    });
  }
  return keyPrompt;
}
