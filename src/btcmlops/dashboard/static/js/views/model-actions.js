/* Models: rollback and promotion, confirmed in the dialog. */

import { pairLabel } from "../format.js";
import { notify } from "../banner.js";
import { runAction } from "../actions.js";
import { refresh } from "../refresh.js";

export async function rollback(champion, target) {
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

export async function promote(version) {
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
