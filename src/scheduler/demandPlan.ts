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
      // A burst gives out hundreds of slots among hundreds of entities, so this loop runs their product: plain
      // arithmetic on the queue's own numbers, no look-up in the config per entity per slot.
      const open = [...queues.values()]
      while (slots > 0) {
        let best: EntityQueue | undefined
        let bestShare = Infinity
        for (const q of open) {
          if (q.next >= q.rows.length) continue
          const head = q.rows[q.next]!
          const workers = entityWorkers(head)
          if (q.cap !== null && workers >= q.cap) continue
          const share = workers / q.weight
          if (
            best === undefined || share < bestShare ||
            (share === bestShare && compareRows(head, best.rows[best.next]!) < 0)
          ) {
            best = q
            bestShare = share
          }
        }
        if (best === undefined) break
        const row = best.rows[best.next++]!
        take(row)
        taken.add(row)
        slots--
      }
    }
    for (const row of rows) {
      if (!taken.has(row)) skipped.push({ job: row.job, why: underCap(row) ? "no_capacity" : "entity_cap" })
    }
  }
  return { provisions, skipped }
}
