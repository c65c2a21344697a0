import type { NewInstallationEvent } from "../../src/domain/InstallationEvent.ts"
import type { NewJob } from "../../src/domain/Job.ts"
import type { NewWorker } from "../../src/domain/Worker.ts"

export const newJob = (jobId: number, over: Partial<NewJob> = {}): NewJob => ({
  job_id: jobId,
  provider: "github",
  entity_id: 1001,
  entity_name: "acme",
  entity_type: "Organization",
  repo_full_name: "acme/app",
  installation_id: 5001,
  job_labels: ["ubuntu-24.04-riscv"],
  k8s_pool: "scw-em-rv1",
  k8s_image: "riscv-runner:ubuntu-24.04-staging",
  html_url: `https://github.com/acme/app/actions/runs/1/job/${jobId}`,
  ...over
})

export const newWorker = (podName: string, over: Partial<NewWorker> = {}): NewWorker => ({
  pod_name: podName,
  provider: "github",
  entity_id: 1001,
  entity_name: "acme",
  entity_type: "Organization",
  installation_id: 5001,
  repo_full_name: null,
  job_labels: ["ubuntu-24.04-riscv"],
  k8s_pool: "scw-em-rv1",
  k8s_image: "riscv-runner:ubuntu-24.04-staging",
  ...over
})

export const newEvent = (over: Partial<NewInstallationEvent> = {}): NewInstallationEvent => ({
  source: "webhook",
  event: "installation.created",
  outcome: "ok",
  installation_id: 5001,
  app_id: 2167633,
  entity_type: "Organization",
  entity_id: 1001,
  entity_name: "acme",
  payload: { action: "created" },
  delivery_id: null,
  ...over
})
