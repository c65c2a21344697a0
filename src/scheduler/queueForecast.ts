import type { QueueGroup } from "../services/Db.ts"
import { groupKey, type Policy } from "./demandPlan.ts"

/**
 * The queue's forecast: the order in which the demand planner will hand boards to the pending jobs, and when.
 *
 * It replays the planner forward in time. First this cycle, exactly as `planProvisioning` decides it: each pool in
 * name order, each free slot to the job the policy picks (fifo: the oldest job whose entity is under its cap; fair:
 * the entity with the fewest workers for its weight, ties to the older head, FIFO inside an entity). Then the
 * future: every slot of a pool frees up when its worker ends (a running worker after a typical run from when it
 * started, a starting one after a typical run from now, a job picked here after a typical run from its start), and
 * at that moment goes to the job the same rule picks then, with the entities' worker counts of that moment (workers
 * end, so a capped entity gets a board back when one of its own ends, never from a free board it may not use).
 * A slot that finds no eligible job is offered again at the next change (a worker ending, a back-off ending).
 *
 * Position k of a pool is the k-th job of the pool to get a board: first those that have their runner already
 * (being provisioned, oldest first), then the forecast's picks in order, then any job it never serves (an entity
 * whose cap no worker will free), oldest first.
 *
 * Linear in the pending jobs times the entities waiting in a pool, over typed arrays; `advance` runs a bounded
 * number of steps so the caller can give the event loop back between slices.
 */

export type WaitReason = "provisioning" | "no_free_board" | "cap_reached" | "backoff_after_failure"
export const REASONS: ReadonlyArray<WaitReason> = ["provisioning", "no_free_board", "cap_reached", "backoff_after_failure"]
const PROVISIONING = 0
const NO_FREE_BOARD = 1
const CAP_REACHED = 2
const BACKOFF = 3

/** One slot of a pool that is taken now: its worker's entity, and since when it runs (null: still starting). */
export interface BusySlot {
  readonly pool: string
  readonly entityId: number
  readonly runningSince: Date | null
}

export interface ForecastContext {
  readonly now: Date
  /** free slots per pool now, as the planner reads them (may be negative); absent: none */
  readonly available: ReadonlyMap<string, number>
  /** total slots per pool; 0 or absent: unknown, every slot counts */
  readonly total: ReadonlyMap<string, number>
  readonly busy: ReadonlyArray<BusySlot>
  readonly capFor: (entityId: number) => number | null
  readonly weightFor: (entityId: number) => number
  readonly policy: Policy
  /** blocked matching groups (see `groupKey`) and until when */
  readonly blocked: ReadonlyMap<string, Date>
  /** typical run time per pool in ms; absent pools use `fallbackDurationMs` */
  readonly durations: ReadonlyMap<string, number>
  readonly fallbackDurationMs: number | null
}

/** Where nothing says how long a run takes, the forecast still orders the jobs, with this stand-in (no estimates). */
const NOMINAL_DURATION_MS = 3_600_000

/** A binary min-heap of (time, tag) pairs, ordered by time then tag. */
class EventHeap {
  private readonly times: Array<number> = []
  private readonly tags: Array<number> = []
  get size(): number {
    return this.times.length
  }
  peekTime(): number {
    return this.times[0]!
  }
  peekTag(): number {
    return this.tags[0]!
  }
  private less(i: number, j: number): boolean {
    return this.times[i]! < this.times[j]! || (this.times[i] === this.times[j] && this.tags[i]! < this.tags[j]!)
  }
  private swap(i: number, j: number): void {
    const t = this.times[i]!
    this.times[i] = this.times[j]!
    this.times[j] = t
    const g = this.tags[i]!
    this.tags[i] = this.tags[j]!
    this.tags[j] = g
  }
  push(time: number, tag: number): void {
    this.times.push(time)
    this.tags.push(tag)
    let i = this.times.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.less(i, parent)) break
      this.swap(i, parent)
      i = parent
    }
  }
  pop(): void {
    const last = this.times.length - 1
    this.swap(0, last)
    this.times.pop()
    this.tags.pop()
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < this.times.length && this.less(l, m)) m = l
      if (r < this.times.length && this.less(r, m)) m = r
      if (m === i) break
      this.swap(i, m)
      i = m
    }
  }
}

/**
 * A binary heap of an pool's entity lines, ordered by `before`, each line at most once and knowing its place, so
 * a line whose key changed moves in place: O(log lines) per change, whatever happened before.
 */
class LineHeap {
  private readonly items: Array<EntityLine> = []
  constructor(private readonly before: (x: EntityLine, y: EntityLine) => boolean) {}
  top(): EntityLine | undefined {
    return this.items[0]
  }
  private place(line: EntityLine, i: number): void {
    this.items[i] = line
    line.at = i
  }
  private up(i: number): void {
    const a = this.items
    const line = a[i]!
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.before(line, a[parent]!)) break
      this.place(a[parent]!, i)
      i = parent
    }
    this.place(line, i)
  }
  private down(i: number): void {
    const a = this.items
    const line = a[i]!
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = -1
      if (l < a.length && this.before(a[l]!, line)) m = l
      if (r < a.length && this.before(a[r]!, m < 0 ? line : a[l]!)) m = r
      if (m < 0) break
      this.place(a[m]!, i)
      i = m
    }
    this.place(line, i)
  }
  /** the line's key changed (or it became eligible) */
  upsert(line: EntityLine): void {
    if (line.at < 0) {
      this.items.push(line)
      line.at = this.items.length - 1
      this.up(line.at)
    } else {
      this.up(line.at)
      this.down(line.at)
    }
  }
  remove(line: EntityLine): void {
    if (line.at < 0) return
    const i = line.at
    const last = this.items.pop()!
    line.at = -1
    if (last !== line) {
      this.place(last, i)
      this.up(i)
      this.down(last.at)
    }
  }
}

/** One entity's waiting jobs in one pool: a FIFO per label group (back-off is per group). */
interface EntityLine {
  readonly entity: number
  /** per group of the entity in this pool: its job indices, oldest first, and how many are taken */
  readonly groups: Array<{ readonly group: number; readonly jobs: Array<number>; next: number }>
  left: number
  /** the heap's key: the entity's workers for its weight, and the line's head (a job index) */
  share: number
  head: number
  /** the line's place in its pool's heap; -1 when it is not there (no eligible job now) */
  at: number
}

/** How many jobs of a pool wait, for each reason (`REASONS` order). */
export type ReasonCounts = Readonly<Record<WaitReason, number>>

/** One decided position of a pool. */
export interface ForecastPosition {
  readonly jobId: number
  readonly reason: WaitReason
  /** ms since the epoch; null when no estimate can be made */
  readonly start: number | null
}

export interface Forecast {
  /** runs at most `steps` more steps (a job loaded or a board handed out each); true when the forecast is complete */
  readonly advance: (steps: number) => boolean
  readonly done: () => boolean
  /** the pools with pending jobs, by name as people sort them (`localeCompare`) */
  readonly pools: ReadonlyArray<string>
  /** how many jobs of the pool wait */
  readonly sizeOf: (pool: string) => number
  /** how many jobs of the pool wait for each reason; once `done` */
  readonly totalsOf: (pool: string) => ReasonCounts
  /**
   * positions [from, to) of a pool (0-based), as far as decided: all of them once `done` without `need`, else at
   * least the positions `need` asked for
   */
  readonly positions: (pool: string, from: number, to: number) => ReadonlyArray<ForecastPosition>
}

/**
 * `need`: stop as soon as each pool named there has that many positions decided (a page near the top of the queue
 * needs only the first few moves); without it, the forecast runs to its end.
 */
export const forecastQueue = (groups: ReadonlyArray<QueueGroup>, ctx: ForecastContext, need?: ReadonlyMap<string, number>): Forecast => {
  const now = ctx.now.getTime()
  // in the planner's order (`planProvisioning` plans pools by code unit order), which also breaks ties in time
  const pools = [...new Set(groups.map((g) => g.pool))].sort()
  const poolIndex = new Map(pools.map((p, i) => [p, i]))
  const entityIds: Array<number> = []
  const entityIndex = new Map<number, number>()
  const entityOf = (id: number) => {
    let e = entityIndex.get(id)
    if (e === undefined) {
      e = entityIds.length
      entityIds.push(id)
      entityIndex.set(id, e)
    }
    return e
  }

  // jobs as parallel arrays, filled by `load` a slice at a time (a 50,000-job queue is several milliseconds of
  // work, which would otherwise run in one go before the first slice)
  let n = 0
  for (const g of groups) n += g.jobIds.length
  const jobId = new Float64Array(n)
  const created = new Float64Array(n)
  const jobGroup = new Int32Array(n)
  const reason = new Uint8Array(n)
  const start = new Float64Array(n).fill(NaN)
  const untilOf = groups.map((g) => ctx.blocked.size > 0 ? ctx.blocked.get(groupKey(g.entityId, g.labels, g.repo))?.getTime() ?? -Infinity : -Infinity)
  const order: Array<Array<number>> = pools.map(() => [])
  const lines: Array<Array<EntityLine>> = pools.map(() => [])
  const lineOf = pools.map(() => new Map<number, EntityLine>())
  const workers: Array<number> = []
  const durationOf = (pool: string) => ctx.durations.get(pool) ?? ctx.fallbackDurationMs
  const spanOf = (pool: string) => durationOf(pool) ?? NOMINAL_DURATION_MS
  const duration = pools.map(durationOf)
  const span = pools.map(spanOf)
  const groupPool = groups.map((g) => poolIndex.get(g.pool)!)

  const provisioned: Array<Array<number>> = pools.map(() => [])
  // the load's cursor: the group, the job within it, the next job index
  let loadGroup = 0
  let loadJob = 0
  let j = 0
  let waiting: Array<number> = []
  /** loads at most `budget` jobs; returns how many it loaded */
  const load = (budget: number): number => {
    let used = 0
    while (loadGroup < groups.length && used < budget) {
      const gi = loadGroup
      const g = groups[gi]!
      const p = groupPool[gi]!
      if (loadJob === 0) {
        workers[entityOf(g.entityId)] = g.entityActiveWorkers
        waiting = []
      }
      for (; loadJob < g.jobIds.length && used < budget; loadJob++, j++, used++) {
        jobId[j] = g.jobIds[loadJob]!
        created[j] = g.createdMs[loadJob]!
        jobGroup[j] = gi
        if (g.lacking[loadJob]) waiting.push(j)
        else {
          reason[j] = PROVISIONING
          start[j] = now
          provisioned[p]!.push(j)
        }
      }
      if (loadJob < g.jobIds.length) break
      loadGroup++
      loadJob = 0
      if (waiting.length === 0) continue
      const e = entityOf(g.entityId)
      let line = lineOf[p]!.get(e)
      if (line === undefined) {
        line = { entity: e, groups: [], left: 0, share: 0, head: -1, at: -1 }
        lineOf[p]!.set(e, line)
        lines[p]!.push(line)
      }
      line.groups.push({ group: gi, jobs: waiting, next: 0 })
      line.left += waiting.length
    }
    return used
  }
  const sizes = pools.map(() => 0)
  groups.forEach((g, gi) => {
    sizes[groupPool[gi]!]! += g.jobIds.length
  })
  // register the entities in the groups' order up front, so their indices do not depend on the slices
  for (const g of groups) entityOf(g.entityId)
  // Everything from here on needs every job loaded: sorting the lines, this cycle's decisions, the future's slots.
  let finished = false
  const counts = pools.map(() => [0, 0, 0, 0])
  const prepare = (): ((steps: number) => boolean) => {
    const older = (a: number, b: number) => created[a]! < created[b]! || (created[a] === created[b] && jobId[a]! < jobId[b]!)
    // the jobs that have their runner come first in their pool, oldest first
    provisioned.forEach((list, p) => {
      list.sort((a, b) => (older(a, b) ? -1 : 1))
      order[p]!.push(...list)
    })
    for (const list of lines) for (const line of list) for (const g of line.groups) g.jobs.sort((a, b) => (older(a, b) ? -1 : 1))
    const capOf = entityIds.map((id) => ctx.capFor(id))
    const weightOf = entityIds.map((id) => ctx.weightFor(id))

    // The head of an entity's line at time t: the oldest job of its groups not backing off at t.
    const headAt = (line: EntityLine, t: number): number => {
      let best = -1
      for (const g of line.groups) {
        if (g.next >= g.jobs.length || untilOf[g.group]! > t) continue
        const candidate = g.jobs[g.next]!
        if (best < 0 || older(candidate, best)) best = candidate
      }
      return best
    }
    const underCap = (e: number) => {
      const cap = capOf[e]
      return cap === null || cap === undefined || workers[e]! < cap
    }
    // Each pool keeps its entities' eligible lines in a heap by the policy's order: fair, fewest workers for the
    // weight, then the older head; fifo, the older head. Any change to an entity (a worker taken or ended, a
    // back-off ended) refreshes its lines in place; a line whose entity is at its cap, or whose groups all back
    // off, leaves the heap until such a change. So a pick costs O(log entities), not a scan of them.
    const linesOf: Array<Array<{ readonly p: number; readonly line: EntityLine }>> = entityIds.map(() => [])
    lines.forEach((list, p) => {
      for (const line of list) linesOf[line.entity]!.push({ p, line })
    })
    const fair = ctx.policy !== "fifo"
    const before = (x: EntityLine, y: EntityLine) => (fair && x.share !== y.share ? x.share < y.share : older(x.head, y.head))
    const heaps = pools.map(() => new LineHeap(before))
    let clock = now
    const changed = (e: number) => {
      const eligible = underCap(e)
      for (const { p, line } of linesOf[e]!) {
        const head = eligible && line.left > 0 ? headAt(line, clock) : -1
        if (head < 0) heaps[p]!.remove(line)
        else {
          line.head = head
          line.share = workers[e]! / weightOf[e]!
          heaps[p]!.upsert(line)
        }
      }
    }
    for (let e = 0; e < entityIds.length; e++) changed(e)

    /** the job the planner gives a free slot of pool p at the clock's time, or -1 */
    const choose = (p: number): number => heaps[p]!.top()?.head ?? -1

    const slots = new EventHeap() // tag: pool index
    const ends = new EventHeap() // tag: entity index
    const take = (p: number, i: number, t: number) => {
      const g = groups[jobGroup[i]!]!
      const line = lineOf[p]!.get(entityIndex.get(g.entityId)!)!
      for (const q of line.groups) if (q.group === jobGroup[i]) q.next++
      line.left--
      const e = line.entity
      workers[e] = workers[e]! + 1
      start[i] = t
      order[p]!.push(i)
      ends.push(t + span[p]!, e)
      slots.push(t + span[p]!, p)
      changed(e)
    }

    // This cycle: the planner's own decisions, pool by pool in name order.
    pools.forEach((pool, p) => {
      let free = Math.max(0, ctx.available.get(pool) ?? 0)
      while (free > 0) {
        const i = choose(p)
        if (i < 0) break
        reason[i] = PROVISIONING
        take(p, i, now)
        free--
      }
      // what the planner says of the rest of this pool, with the workers planned so far
      for (const line of lines[p]!) {
        for (const g of line.groups) {
          for (let k = g.next; k < g.jobs.length; k++) {
            reason[g.jobs[k]!] = untilOf[g.group]! > now ? BACKOFF : underCap(line.entity) ? NO_FREE_BOARD : CAP_REACHED
          }
        }
      }
      // The future's slots: the free ones left now, then the busy ones as their workers end. When more workers run
      // than the pool has slots (a drained board; `available` below 0), the first ends free nothing. A pool has at
      // most its `total` slots, counting those this cycle took, which are already in.
      const busyEnds: Array<number> = []
      for (const b of ctx.busy) if (b.pool === pool) busyEnds.push(Math.max(now, (b.runningSince?.getTime() ?? now) + span[p]!))
      busyEnds.sort((a, b) => a - b)
      const times: Array<number> = []
      for (let k = 0; k < free; k++) times.push(now)
      for (let k = Math.max(0, -(ctx.available.get(pool) ?? 0)); k < busyEnds.length; k++) times.push(busyEnds[k]!)
      const total = ctx.total.get(pool) ?? 0
      const taken = order[p]!.length - provisioned[p]!.length
      const keep = total > 0 ? Math.max(0, total - taken) : times.length
      for (let k = 0; k < Math.min(keep, times.length); k++) slots.push(times[k]!, p)
    })
    for (const b of ctx.busy) {
      const e = entityIndex.get(b.entityId)
      if (e === undefined) continue
      ends.push(Math.max(now, (b.runningSince?.getTime() ?? now) + spanOf(b.pool)), e)
    }
    const left = lines.map((list) => list.reduce((s, l) => s + l.left, 0))
    // the reasons are this cycle's and do not change as the forecast runs on: count them once
    for (let i = 0; i < n; i++) counts[groupPool[jobGroup[i]!]!]![reason[i]!]!++

    // back-offs that end later: each is a change to its entity
    const unblocks = new EventHeap() // tag: entity index
    groups.forEach((g, gi) => {
      if (untilOf[gi]! > now) unblocks.push(untilOf[gi]!, entityIndex.get(g.entityId)!)
    })
    // The next moment after t at which waiting jobs could become eligible: a worker ends or a back-off ends.
    const nextChange = (): number => Math.min(ends.size > 0 ? ends.peekTime() : Infinity, unblocks.size > 0 ? unblocks.peekTime() : Infinity)

    const wanted = need === undefined ? [] : [...need].flatMap(([pool, k]) => {
      const p = poolIndex.get(pool)
      return p === undefined ? [] : [{ p, k: Math.min(k, sizes[p]!) }]
    })
    const satisfied = () => need !== undefined && wanted.every(({ p, k }) => order[p]!.length >= k)

    finished = satisfied()
    const finish = () => {
      // jobs the forecast never serves go last in their pool, oldest first, without an estimate
      lines.forEach((list, p) => {
        const rest: Array<number> = []
        for (const line of list) for (const g of line.groups) for (let k = g.next; k < g.jobs.length; k++) rest.push(g.jobs[k]!)
        rest.sort((a, b) => (older(a, b) ? -1 : 1))
        order[p]!.push(...rest)
      })
      finished = true
    }
    const step = (steps: number): boolean => {
      for (let s = 0; s < steps && !finished; s++) {
        if (slots.size === 0) {
          finish()
          break
        }
        const t = slots.peekTime()
        const p = slots.peekTag()
        slots.pop()
        if (left[p] === 0) continue
        clock = t
        while (ends.size > 0 && ends.peekTime() <= t) {
          const e = ends.peekTag()
          ends.pop()
          workers[e] = workers[e]! - 1
          changed(e)
        }
        while (unblocks.size > 0 && unblocks.peekTime() <= t) {
          const e = unblocks.peekTag()
          unblocks.pop()
          changed(e)
        }
        const i = choose(p)
        if (i >= 0) {
          take(p, i, t)
          left[p]!--
          if (satisfied()) finished = true
          continue
        }
        const next = nextChange()
        if (next !== Infinity) slots.push(next, p)
      }
      if (!finished && slots.size === 0) finish()
      return finished
    }
    return step
  }
  let run: ((steps: number) => boolean) | undefined
  const advance = (steps: number): boolean => {
    let budget = steps
    if (loadGroup < groups.length) {
      budget -= load(budget)
      if (loadGroup < groups.length) return false
    }
    run ??= prepare()
    return budget > 0 ? run(budget) : finished
  }

  const estimable = (i: number) => start[i] === now || duration[groupPool[jobGroup[i]!]!] !== null
  return {
    advance,
    done: () => finished,
    pools: [...pools].sort((a, b) => a.localeCompare(b)),
    sizeOf: (pool) => {
      const p = poolIndex.get(pool)
      return p === undefined ? 0 : sizes[p]!
    },
    totalsOf: (pool) => {
      const c = counts[poolIndex.get(pool) ?? -1] ?? [0, 0, 0, 0]
      return { provisioning: c[PROVISIONING]!, no_free_board: c[NO_FREE_BOARD]!, cap_reached: c[CAP_REACHED]!, backoff_after_failure: c[BACKOFF]! }
    },
    positions: (pool, from, to) => {
      const p = poolIndex.get(pool)
      if (p === undefined) return []
      return order[p]!.slice(from, to).map((i): ForecastPosition => ({
        jobId: jobId[i]!,
        reason: REASONS[reason[i]!]!,
        start: Number.isNaN(start[i]!) || !estimable(i) ? null : start[i]!
      }))
    }
  }
}
