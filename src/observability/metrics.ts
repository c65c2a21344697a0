import { Metric, MetricBoundaries, MetricKey, type MetricKeyType, MetricLabel } from "effect"

/**
 * Every metric the service exports, as Effect `Metric`s in the process-wide registry. `/metrics` on either port
 * renders a snapshot of that registry (see `exposition.ts`). Names follow Prometheus conventions: a `riscv_runner_`
 * prefix, base units (seconds), `_total` on counters and only on counters. The README lists them.
 */

const secondsBuckets = MetricBoundaries.fromIterable([1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600])
const cycleBuckets = MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])

export const webhookDeliveriesKey = MetricKey.counter("riscv_runner_webhook_deliveries_total", {
  description: "Verified webhook deliveries, by event and by the outcome written to installation_events."
})
export const webhookDeliveries = Metric.fromMetricKey(webhookDeliveriesKey)
export const signatureFailures = Metric.counter("riscv_runner_webhook_signature_failures_total", {
  description: "Webhook deliveries refused because their signature was missing or did not match."
})
export const jobs = Metric.gauge("riscv_runner_jobs", {
  description: "Active jobs by status (pending, running), read from the database at scrape time."
})
export const jobTransitions = Metric.counter("riscv_runner_job_transitions_total", {
  description: "Jobs this process moved to a status (running, completed, failed)."
})
export const queueWaitKey = MetricKey.histogram(
  "riscv_runner_queue_wait_seconds",
  secondsBuckets,
  "Seconds from a job's creation to the provisioning of its runner, by pool and entity."
)
export const queueWait = Metric.fromMetricKey(queueWaitKey)
export const workers = Metric.gauge("riscv_runner_workers", {
  description: "Active workers (runner pods) by status (pending, running), read from the database at scrape time."
})
export const workerFailures = Metric.counter("riscv_runner_worker_failures_total", {
  description: "Workers this process marked failed, by failure reason."
})
export const orphanPodsDeleted = Metric.counter("riscv_runner_orphan_pods_deleted_total", {
  description: "Runner pods this process deleted because no active worker row accounted for them, by reason (no_row, row_finished)."
})
export const poolSlotsFree = Metric.gauge("riscv_runner_pool_slots_free", {
  description: "Free runner slots per pool at the scheduler's latest capacity reading (negative when pods outnumber slots)."
})
/** Not `..._slots_total`: `_total` is for counters only (promtool rejects it on a gauge). */
export const poolSlotsTotal = Metric.gauge("riscv_runner_pool_slots", {
  description: "Runner slots per pool (allocatable riseproject.com/runner) at the latest capacity reading."
})
export const boardQuarantined = Metric.gauge("riscv_runner_board_quarantined", {
  description: "1 while a board (node) is quarantined after failing runners, 0 once it is on trial or trusted again."
})
export const cycleDuration = Metric.histogram(
  "riscv_runner_scheduler_cycle_duration_seconds",
  cycleBuckets,
  "Duration of one scheduler cycle (job sync, worker sync, demand matching)."
)
export const githubCalls = Metric.counter("riscv_runner_github_api_calls_total", {
  description: "GitHub REST calls by operation and HTTP status (0 = no answer)."
})
export const githubRateLimitRemaining = Metric.gauge("riscv_runner_github_rate_limit_remaining", {
  description: "Requests left in an installation's primary GitHub rate-limit budget, as GitHub last reported it."
})
export const kubeCalls = Metric.counter("riscv_runner_kube_api_calls_total", {
  description: "Kubernetes API calls by operation."
})
export const redeliveries = Metric.counter("riscv_runner_redeliveries_total", {
  description: "Webhook deliveries the scheduler asked GitHub to send again, by app (org, personal) and result (requested, failed)."
})
export const jobsDiscovered = Metric.counter("riscv_runner_jobs_discovered_total", {
  description: "Queued jobs the sweep found on GitHub that no delivery had announced, and stored as pending."
})

/**
 * One series of a metric, built once per `id` and kept: `Metric.tagged` unions its tags into a new array on every
 * update, so the registry hashes the key each time; a metric made from the tagged key looks its series up once.
 * For counters updated on every request (deliveries, HTTP answers) and the queue-wait histogram (once per runner
 * provisioned); `id` names the tags' values.
 */
export const seriesOf = <Type extends MetricKeyType.MetricKeyType<any, any>>(
  key: MetricKey.MetricKey<Type>,
  cache: Map<string, Metric.Metric<Type, MetricKeyType.MetricKeyType.InType<Type>, MetricKeyType.MetricKeyType.OutType<Type>>>,
  id: string,
  tags: () => Readonly<Record<string, string>>
): Metric.Metric<Type, MetricKeyType.MetricKeyType.InType<Type>, MetricKeyType.MetricKeyType.OutType<Type>> => {
  let series = cache.get(id)
  if (series === undefined) {
    const labels = Object.entries(tags()).map(([k, v]) => MetricLabel.make(k, v))
    series = Metric.fromMetricKey(MetricKey.taggedWithLabels(key, labels))
    cache.set(id, series)
  }
  return series
}

/** A tagged instrument: `tagged(counter, { event: "ping" })`. */
export const tagged = <Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  tags: Readonly<Record<string, string | number>>
): Metric.Metric<Type, In, Out> =>
  Object.entries(tags).reduce((m, [k, v]) => Metric.tagged(m, k, String(v)), metric)

// --- added for the dashboards and alerts of deploy/monitoring (issue 15) ---------------------------------------
export const githubRateLimit = Metric.gauge("riscv_runner_github_rate_limit", {
  description: "The size of an installation's primary GitHub rate-limit budget per hour, as GitHub last reported it."
})
export const queuePending = Metric.gauge("riscv_runner_queue_pending_jobs", {
  description: "Pending jobs per pool, read from the database at scrape time."
})
export const queueOldestWait = Metric.gauge("riscv_runner_queue_oldest_wait_seconds", {
  description: "Seconds the oldest pending job of each pool has waited, at scrape time (0 when none waits)."
})
export const nodeWorkerFailures = Metric.counter("riscv_runner_node_worker_failures_total", {
  description: "Workers this process marked failed, by the node (board) their pod was on; \"unknown\" before scheduling."
})
export const httpResponsesKey = MetricKey.counter("riscv_runner_http_responses_total", {
  description: "HTTP answers by server (webhook, scheduler) and status class (2xx, 3xx, 4xx, 5xx)."
})
export const httpResponses = Metric.fromMetricKey(httpResponsesKey)
export const clusterUp = Metric.gauge("riscv_runner_cluster_up", {
  description: "Per configured cluster (\"default\" for KUBECONFIG's): 1 when its API answered the scheduler's latest reading, 0 when it did not."
})
export const queueOldestUncappedWait = Metric.gauge("riscv_runner_queue_oldest_uncapped_wait_seconds", {
  description: "Seconds the oldest pending job of each pool whose entity is below its cap has waited, at scrape time (0 when none): what only the scheduler can be holding up."
})
