/**
 * The annotations every log line about a job or a worker carries, under the same keys everywhere, so that a JSON
 * log (LOG_FORMAT=json) can be filtered by job, pod or entity: `job_id`, `pod`, `entity` (the login) and
 * `entity_id`. A pod not known yet is an empty string rather than a missing key.
 */

export const jobLogFields = (job: {
  readonly job_id: number
  readonly k8s_pod: string | null
  readonly entity_name: string
  readonly entity_id: number
}) => ({ job_id: job.job_id, pod: job.k8s_pod ?? "", entity: job.entity_name, entity_id: job.entity_id })

export const workerLogFields = (worker: { readonly pod_name: string; readonly entity_name: string; readonly entity_id: number }) => ({
  pod: worker.pod_name,
  entity: worker.entity_name,
  entity_id: worker.entity_id
})

/** The pod spec labels every runner pod with its entity (see layers/kube/podSpec.ts). */
const ENTITY_ID_LABEL = "riseproject.dev/entity_id"
const ENTITY_NAME_LABEL = "riseproject.dev/entity_name"

/** For lines about a pod read from the cluster, whose worker row is not at hand. */
export const podLogFields = (pod: { readonly name: string; readonly labels: Readonly<Record<string, string>> }) => ({
  pod: pod.name,
  entity: pod.labels[ENTITY_NAME_LABEL] ?? "",
  entity_id: Number(pod.labels[ENTITY_ID_LABEL] ?? 0)
})
