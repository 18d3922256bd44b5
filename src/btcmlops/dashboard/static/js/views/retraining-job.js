/* Retraining: a run started from this page, followed until it ends. */

import { JOB_POLL_MS } from "../config.js";
import { byId, fill, pill } from "../dom.js";
import { pairLabel } from "../format.js";
import { actionProblems, renderBanner } from "../banner.js";
import { api, describeError } from "../api.js";
import { runAction } from "../actions.js";
import { selectedPair } from "../pairs.js";
import { refresh } from "../refresh.js";

const RUNNING_STATUSES = new Set(["queued", "pending", "running", "started"]);

let retrainJob = null; // {job_id, label} while a run started from this page is followed

/** Whether a run started from this page is still being followed (its button stays off). */
export const followingRetrainJob = () => Boolean(retrainJob);

export async function startRetraining() {
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
