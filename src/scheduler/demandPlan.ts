import { type Job, runnerRepoOf } from "../domain/Job.ts"
import { encodeLabelSet } from "../domain/Labels.ts"
import type { DemandRow } from "../services/Db.ts"

/**
 * The demand planner: from the set-based demand (one row per pending job lacking a runner), the free slots of
 * each pool, the entities' caps and weights and the policy, the ordered list of runners to provision this cycle.
 * Pure, so the policies are tested by tables.
 */

export type Policy = "fair" | "fifo"

export interface PlanInput {
  /** oldest first, as `Db.getDemand` returns them */
  readonly demand: ReadonlyArray<DemandRow>
  /** free slots per pool (may be negative); a pool that is absent has none */
  readonly available: ReadonlyMap<string, number>
  /** the cap on an entity's active workers; null = no cap */
  readonly capFor: (entityId: number) => number | null
  /** the entity's fair-share weight (> 0) */
  readonly weightFor: (entityId: number) => number
  readonly policy: Policy
  /** matching groups that must not be provisioned now (allocation back-off); see `groupKey` */
  readonly blocked?: ReadonlySet<string> | undefined
  /**
   * Groups with a run of failures whose back-off has passed: each gets one runner this cycle, a probe. A failure
   * that shows only after the pod exists (an image that cannot be pulled) then costs one failed worker per back-off
   * step rather than one per waiting job; the first success ends the run, and the group is served in full again.
   */
  readonly probing?: ReadonlySet<string> | undefined
}

export interface Provision {
  readonly job: Job
  readonly pool: string
}

export interface Skipped {
  readonly job: Job
  readonly why: "no_capacity" | "entity_cap" | "backoff"
}

export interface Plan {
  readonly provisions: ReadonlyArray<Provision>
  /** the first reason each left-over row was not provisioned (for logs and tests) */
  readonly skipped: ReadonlyArray<Skipped>
}

/**
 * The key of a matching group, as the planner and the back-off share it: (entity, exact label set) for an
 * organisation, and (entity, repository, exact label set) for a personal account, whose runners are repo-scoped
 * (`runnerRepoOf`): a runner or a failure on one of its repositories says nothing about another.
 */
export const groupKey = (entityId: number, labels: ReadonlyArray<string>, repo: string | null = null): string =>
  repo === null ? `${entityId}|${encodeLabelSet(labels)}` : `${entityId}|${encodeLabelSet(labels)}|${repo}`

/** The matching group of a job; see `groupKey`. */
export const jobGroupKey = (job: Pick<Job, "entity_id" | "entity_type" | "repo_full_name" | "job_labels">): string =>
  groupKey(job.entity_id, job.job_labels, runnerRepoOf(job))

interface EntityQueue {
  readonly entityId: number
  readonly rows: Array<DemandRow>
  next: number
  /** active workers now plus those planned this cycle */
  workers: number
  /** the entity's cap and weight, asked once: the loop below reads them once per slot per entity */
  readonly cap: number | null
  readonly weight: number
}

const compareRows = (a: DemandRow, b: DemandRow): number =>
  a.job.created_at.getTime() - b.job.created_at.getTime() || a.job.job_id - b.job.job_id

/**
 * A binary min-heap of entity queues on (share, head's created_at, head's job_id), the share being the entity's
 * workers (active plus planned) for its weight. A queue is offered only while it has a head and is under its cap;
 * its key is computed when offered, and no other queue's key changes while it waits in the heap (each entity has
 * one queue per pool, and only the chosen one's entity gets a worker).
 */
class QueueHeap {
  private readonly items: Array<{ readonly q: EntityQueue; readonly share: number; readonly head: DemandRow }> = []
  constructor(private readonly workersOf: (row: DemandRow) => number) {}

  offer(q: EntityQueue): void {
    if (q.next >= q.rows.length) return
    const head = q.rows[q.next]!
    const workers = this.workersOf(head)
    if (q.cap !== null && workers >= q.cap) return
    const items = this.items
    items.push({ q, share: workers / q.weight, head })
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.before(i, parent)) break
      this.swap(i, parent)
      i = parent
    }
  }

  take(): EntityQueue | undefined {
    const items = this.items
    if (items.length === 0) return undefined
    const top = items[0]!
    const last = items.pop()!
    if (items.length > 0) {
      items[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < items.length && this.before(l, m)) m = l
        if (r < items.length && this.before(r, m)) m = r
        if (m === i) break
        this.swap(i, m)
        i = m
      }
    }
    return top.q
  }

  private before(i: number, j: number): boolean {
    const a = this.items[i]!
    const b = this.items[j]!
    return a.share < b.share || (a.share === b.share && compareRows(a.head, b.head) < 0)
  }

  private swap(i: number, j: number): void {
    const t = this.items[i]!
    this.items[i] = this.items[j]!
    this.items[j] = t
  }
}

export const planProvisioning = (input: PlanInput): Plan => {
  const blocked = input.blocked ?? new Set<string>()
  const probing = input.probing ?? new Set<string>()
  const provisions: Array<Provision> = []
  const skipped: Array<Skipped> = []
  // Planned workers per entity over all pools: the cap counts every pool.
  const planned = new Map<number, number>()
  const entityWorkers = (row: DemandRow) => row.entityActiveWorkers + (planned.get(row.job.entity_id) ?? 0)
  const underCap = (row: DemandRow) => {
    const cap = input.capFor(row.job.entity_id)
    return cap === null || entityWorkers(row) < cap
  }
  const take = (row: DemandRow) => {
    provisions.push({ job: row.job, pool: row.job.k8s_pool })
    planned.set(row.job.entity_id, (planned.get(row.job.entity_id) ?? 0) + 1)
  }

  const eligible: Array<DemandRow> = []
  const probed = new Set<string>()
  for (const row of [...input.demand].sort(compareRows)) {
    const key = jobGroupKey(row.job)
    if (blocked.has(key)) skipped.push({ job: row.job, why: "backoff" })
    else if (probing.has(key) && probed.has(key)) skipped.push({ job: row.job, why: "backoff" })
    else {
      // a probing group offers only its oldest job
      if (probing.has(key)) probed.add(key)
      eligible.push(row)
    }
  }

  // Pools are independent (a slot of one board kind never serves another), so each is planned on its own, in
  // name order so that plans are repeatable.
  const byPool = new Map<string, Array<DemandRow>>()
  for (const row of eligible) {
    const rows = byPool.get(row.job.k8s_pool) ?? []
    rows.push(row)
    byPool.set(row.job.k8s_pool, rows)
  }
  for (const pool of [...byPool.keys()].sort()) {
    const rows = byPool.get(pool)!
    let slots = Math.max(0, input.available.get(pool) ?? 0)
    const taken = new Set<DemandRow>()
    if (input.policy === "fifo") {
      // The original: oldest job first; a capped entity's job is passed over, the next one gets the slot.
      for (const row of rows) {
        if (slots <= 0) break
        if (!underCap(row)) continue
        take(row)
        taken.add(row)
        slots--
      }
    } else {
      // Fair share: each free slot goes to the entity with the fewest workers for its weight (counting those
      // planned so far); ties go to the entity whose oldest waiting job is older. FIFO inside an entity.
      const queues = new Map<number, EntityQueue>()
      for (const row of rows) {
        const q = queues.get(row.job.entity_id) ?? {
          entityId: row.job.entity_id,
          rows: [],
          next: 0,
          workers: row.entityActiveWorkers,
          cap: input.capFor(row.job.entity_id),
          weight: input.weightFor(row.job.entity_id)
        }
        q.rows.push(row)
        queues.set(row.job.entity_id, q)
      }
      // Each slot goes to the open queue with the smallest (share, head's age, head's job id): the order the
      // scan of every queue per slot chose by, a total order since job ids are unique. A burst gives out hundreds
      // of slots among hundreds of entities, so the queues are kept in a heap on that order: taking a slot
      // changes only the chosen queue's key (its entity's workers and its head), and it goes back in with its new
      // key while it has rows and room under its cap.
      const heap = new QueueHeap(entityWorkers)
      for (const q of queues.values()) heap.offer(q)
      while (slots > 0) {
        const best = heap.take()
        if (best === undefined) break
        const row = best.rows[best.next++]!
        take(row)
        taken.add(row)
        slots--
        heap.offer(best)
      }
    }
    for (const row of rows) {
      if (!taken.has(row)) skipped.push({ job: row.job, why: underCap(row) ? "no_capacity" : "entity_cap" })
    }
  }
  return { provisions, skipped }
}
