import { Clock, Context, Effect, Either, FiberRef, Metric, Option } from "effect"
import { type FailureInfo, FailureReason } from "../domain/FailureInfo.ts"
import type { Job } from "../domain/Job.ts"
import type { Status } from "../domain/Status.ts"
import type { GithubCallCounts, GithubOperation, RateLimit } from "../services/Github.ts"
import type { ClusterReading, KubeOperation, PoolCapacity } from "../services/Kube.ts"
import { eventLabel } from "./eventLabels.ts"
import * as M from "./metrics.ts"

/**
 * Feeds the metrics from what the program already knows. Counters that live in a service (the GitHub and Kube
 * call counts) are turned into registry counters by adding what grew since the last scrape; gauges read at
 * scrape time reset the series that vanished (an entity whose queue emptied reads 0, not its last value).
 */

const lastSeen = new Map<string, number>()
/** Adds to `counter` what `current` grew since the last call with the same key (a restarted source restarts). */
const addGrowth = (key: string, counter: Metric.Metric.Counter<number>, current: number) =>
  Effect.suspend(() => {
    const before = lastSeen.get(key) ?? 0
    lastSeen.set(key, current)
    const delta = current >= before ? current - before : current
    return delta > 0 ? Metric.incrementBy(counter, delta) : Effect.void
  })

export const recordGithubCalls = (counts: GithubCallCounts) =>
  Effect.forEach(Object.entries(counts) as Array<[GithubOperation, Readonly<Record<number, number>>]>, ([operation, byStatus]) =>
    Effect.forEach(Object.entries(byStatus), ([status, n]) =>
      addGrowth(`github|${operation}|${status}`, M.tagged(M.githubCalls, { operation, status }), n)), { discard: true })

export const recordKubeCalls = (counts: Readonly<Record<KubeOperation, number>>) =>
  Effect.forEach(Object.entries(counts), ([operation, n]) => addGrowth(`kube|${operation}`, M.tagged(M.kubeCalls, { operation }), n), {
    discard: true
  })

const gaugeSeries = new Map<string, Set<string>>()
/** Sets one gauge family to exactly these series; series set before and absent now read 0. */
export const setGaugeFamily = (
  family: string,
  gauge: Metric.Metric.Gauge<number>,
  values: ReadonlyArray<readonly [Readonly<Record<string, string>>, number]>
) =>
  Effect.suspend(() => {
    const now = new Set(values.map(([tags]) => JSON.stringify(tags)))
    const before = gaugeSeries.get(family) ?? new Set<string>()
    gaugeSeries.set(family, new Set([...before, ...now]))
    const zeroed = [...before].filter((k) => !now.has(k)).map((k) => [JSON.parse(k) as Record<string, string>, 0] as const)
    return Effect.forEach([...values, ...zeroed], ([tags, v]) => Metric.set(M.tagged(gauge, tags), v), { discard: true })
  })

export const countBy = <A>(items: ReadonlyArray<A>, key: (a: A) => string, keys: ReadonlyArray<string> = []): Map<string, number> => {
  const counts = new Map<string, number>(keys.map((k) => [k, 0]))
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return counts
}

const ACTIVE: ReadonlyArray<Status> = ["pending", "running"]

export const recordActive = (jobs: ReadonlyArray<{ readonly status: Status }>, workers: ReadonlyArray<{ readonly status: Status }>) =>
  Effect.zipRight(
    setGaugeFamily("jobs", M.jobs, [...countBy(jobs, (j) => j.status, ACTIVE)].map(([status, n]) => [{ status }, n] as const)),
    setGaugeFamily("workers", M.workers, [...countBy(workers, (w) => w.status, ACTIVE)].map(([status, n]) => [{ status }, n] as const))
  )

export const recordCapacity = (capacity: ReadonlyMap<string, PoolCapacity>) =>
  Effect.zipRight(
    setGaugeFamily("slots_free", M.poolSlotsFree, [...capacity.values()].map((c) => [{ pool: c.pool }, c.available] as const)),
    setGaugeFamily("slots_total", M.poolSlotsTotal, [...capacity.values()].map((c) => [{ pool: c.pool }, c.total] as const))
  )

/**
 * Whether each cluster's API answered, from a reading the scheduler made of every cluster anyway (capacity, runner
 * pods): the scrape makes no Kubernetes call, and the latest reading of a cluster wins. Every configured cluster is
 * in every such reading, so each has its series from the first cycle.
 */
export const recordClusterReadings = (readings: ReadonlyArray<ClusterReading<unknown>>) =>
  Effect.forEach(readings, ({ cluster, result }) => Metric.set(M.tagged(M.clusterUp, { cluster }), Either.isRight(result) ? 1 : 0), {
    discard: true
  })

/** Every board with a standing: 1 while quarantined, else 0. */
export const recordQuarantine = (states: ReadonlyArray<{ readonly node: string; readonly pool: string; readonly state: string }>) =>
  setGaugeFamily("board_quarantined", M.boardQuarantined, states.map((s) => [{ node: s.node, pool: s.pool }, s.state === "quarantined" ? 1 : 0] as const))

const rateLimitSeen = new Set<number>()
/** Every installation whose budget has been exported: each scrape refreshes them all, active work or not. */
export const rateLimitInstallations = (): ReadonlySet<number> => rateLimitSeen

/**
 * An installation's budget as GitHub last reported it, at `nowMs`. Once its window has reset (`resetAt` passed),
 * GitHub has refilled it, whatever the last answer said: reported as full, not as the stale low figure, which
 * would keep RiscvRunnerGithubBudgetLow firing for an installation that has made no call since.
 */
export const recordRateLimit = (installationId: number, limit: Option.Option<RateLimit>, nowMs: number) =>
  Option.match(limit, {
    onNone: () => Effect.void,
    onSome: (l) =>
      Effect.suspend(() => {
        rateLimitSeen.add(installationId)
        const tags = { installation_id: String(installationId) }
        return Effect.zipRight(
          Metric.set(M.tagged(M.githubRateLimitRemaining, tags), l.resetAt.getTime() <= nowMs ? l.limit : l.remaining),
          Metric.set(M.tagged(M.githubRateLimit, tags), l.limit)
        )
      })
  })

interface QueuedJob {
  readonly status: Status
  readonly k8s_pool: string
  readonly created_at: Date
}

/**
 * Per pool, the pending jobs and how long the oldest has waited, at `nowMs` (scrape time); and how long the oldest
 * has waited of those `heldByCap` does not hold back (an entity at its cap waits by design, whatever boards are free).
 */
export const recordQueue = <J extends QueuedJob>(jobs: ReadonlyArray<J>, nowMs: number, heldByCap: (job: J) => boolean = () => false) =>
  Effect.suspend(() => {
    const pending = new Map<string, number>()
    const oldest = new Map<string, number>()
    const oldestUncapped = new Map<string, number>()
    const earlier = (map: Map<string, number>, pool: string, at: number) => map.set(pool, Math.min(map.get(pool) ?? Number.POSITIVE_INFINITY, at))
    for (const j of jobs) {
      if (j.status !== "pending") continue
      pending.set(j.k8s_pool, (pending.get(j.k8s_pool) ?? 0) + 1)
      earlier(oldest, j.k8s_pool, j.created_at.getTime())
      if (!heldByCap(j)) earlier(oldestUncapped, j.k8s_pool, j.created_at.getTime())
    }
    const waits = (map: Map<string, number>) => [...map].map(([pool, at]) => [{ pool }, Math.max(0, (nowMs - at) / 1000)] as const)
    return Effect.all([
      setGaugeFamily("queue_pending", M.queuePending, [...pending].map(([pool, n]) => [{ pool }, n] as const)),
      setGaugeFamily("queue_oldest", M.queueOldestWait, waits(oldest)),
      setGaugeFamily("queue_oldest_uncapped", M.queueOldestUncappedWait, waits(oldestUncapped))
    ], { discard: true })
  })

/** A worker failed on `node` (null: its pod was never scheduled). */
export const recordNodeFailure = (node: string | null) =>
  Metric.increment(M.tagged(M.nodeWorkerFailures, { node: node === null || node === "" ? "unknown" : node }))

const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const
const responseSeries = new Map<string, Metric.Metric.Counter<number>>()
const responseCounter = (server: string, code: string) =>
  M.seriesOf(M.httpResponsesKey, responseSeries, `${server}|${code}`, () => ({ server, code }))

/** One HTTP answer of `server`, by status class. */
export const recordHttpResponse = (server: string, status: number) => Metric.increment(httpResponseCounter(server, status))

/** The series of `recordHttpResponse`, built once per server and status class. */
export const httpResponseCounter = (server: string, status: number) =>
  responseCounter(server, STATUS_CLASSES[Math.min(4, Math.max(0, Math.floor(status / 100) - 1))]!)

/**
 * Every status class of `server`'s answers at 0, when the port starts serving: the 5xx alert's `rate()` then sees
 * the first 5xx as a step from 0 (a series born at 1 has no rate until its second 5xx).
 */
export const initialiseHttpResponses = (server: string) =>
  Effect.forEach(STATUS_CLASSES, (code) => Metric.incrementBy(responseCounter(server, code), 0), { discard: true })

/** A runner was provisioned for `job`: its wait so far goes to the queue-wait histogram. */
// once per runner provisioned: the series is built once per (pool, entity), as many as the registry holds anyway
// One step, which is what `Metric.update` does after its own reads of the clock and the fiber's metric labels.
export const recordQueueWait = (job: Job) =>
  Effect.withFiberRuntime<void>((fiber) => {
    const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
    M.seriesOf(M.queueWaitKey, queueWaitSeries, `${job.k8s_pool}|${job.entity_name}`, () => ({ pool: job.k8s_pool, entity: job.entity_name }))
      .unsafeUpdate(Math.max(0, (now - job.created_at.getTime()) / 1000), fiber.getFiberRef(FiberRef.currentMetricLabels))
    return Effect.void
  })
const queueWaitSeries = new Map<string, Metric.Metric.Histogram<number>>()

export const recordCycle = (millis: number) => Metric.update(M.cycleDuration, millis / 1000)

export const recordWorkerFailure = (info: FailureInfo) =>
  Metric.increment(M.tagged(M.workerFailures, { reason: info.version === 2 ? info.reason : "other" }))

export const recordJobTransition = (status: Status) => Metric.increment(M.tagged(M.jobTransitions, { status }))

/** One verified delivery; the event label is bounded (see `eventLabel`), the outcome is one of a fixed set. */
export const recordDelivery = (event: string, outcome: string) => Metric.increment(deliveryCounter(event, outcome))

/** The series of `recordDelivery`, built once per label pair: what the front door's plain path updates itself. */
export const deliveryCounter = (event: string, outcome: string) => {
  const label = eventLabel(event)
  // the labels are bounded (`eventLabel`, the outcomes), so is the cache
  return M.seriesOf(M.webhookDeliveriesKey, deliverySeries, `${label}|${outcome}`, () => ({ event: label, outcome }))
}
const deliverySeries = new Map<string, Metric.Metric.Counter<number>>()

export const recordSignatureFailure = Metric.increment(M.signatureFailures)
/** The signature failures at 0 from the webhook's start, so the first one counts in `increase()`. */
export const initialiseSignatureFailures = Metric.incrementBy(M.signatureFailures, 0)

/**
 * The scheduler's counters of rare events, at 0 for every label value they can take, so their series exist from
 * the first scrape: an alert on `increase(...)` then sees the first event (a series that appears at 1 has no
 * increase), and an absent name is a broken rule rather than a quiet day.
 */
export const initialiseSchedulerCounters = Effect.forEach(
  [
    ...["org", "personal"].flatMap((app) => ["requested", "failed"].map((result) => M.tagged(M.redeliveries, { app, result }))),
    ...["no_row", "row_finished"].map((reason) => M.tagged(M.orphanPodsDeleted, { reason })),
    // every reason `recordWorkerFailure` can give, for the dashboard's failures by reason
    ...[...FailureReason.literals, "other"].map((reason) => M.tagged(M.workerFailures, { reason })),
    M.jobsDiscovered
  ],
  (counter) => Metric.incrementBy(counter, 0),
  { discard: true }
)
