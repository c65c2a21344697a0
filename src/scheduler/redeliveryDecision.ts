import type { HookDelivery } from "../services/Github.ts"

/*
 * The redelivery pass's decisions, as plain functions of what the delivery log and the database said: which
 * events to ask GitHub to send again, and how far the pass may say it got. Tested by tables.
 */

export interface RedeliveryInput {
  /** the attempts the listing read, newest first (the listing may read a little past the cursor) */
  readonly attempts: ReadonlyArray<HookDelivery>
  /** the newest attempt id an earlier pass examined; none on the first pass */
  readonly cursor: number | null
  /** attempts delivered before this (epoch ms) are too old for GitHub to redeliver */
  readonly oldestAllowed: number
  /** the guids that have an `installation_events` row: our endpoint took them, whatever GitHub recorded */
  readonly recorded: ReadonlySet<string>
  readonly max: number
}

/** One event to send again: its guid, and the attempt to name in the request (its newest). */
export interface RedeliveryCandidate {
  readonly guid: string
  readonly attemptId: number
  /** its first attempt in the examined window, which orders the candidates (oldest first) */
  readonly firstAttemptId: number
  readonly installationId: number | null
  readonly event: string
  readonly action: string | null
}

export interface RedeliveryPlan {
  /** at most `max`, oldest first */
  readonly redeliver: ReadonlyArray<RedeliveryCandidate>
  /** candidates beyond `max`: the next pass takes them */
  readonly deferred: ReadonlyArray<RedeliveryCandidate>
  /** the attempts examined (newer than the cursor, young enough) */
  readonly examined: number
  /** the newest attempt id examined, else the old cursor */
  readonly newest: number | null
}

const delivered = (status: number) => status >= 200 && status < 300
/**
 * Our endpoint refused the event on purpose (a bad signature, a payload it cannot read): sending the same bytes
 * again gets the same answer. 408 and 429 are "not now", so they are tried again.
 */
const refused = (status: number) => status >= 400 && status < 500 && status !== 408 && status !== 429

/** The guids worth asking the database about: the examined ones with no 2xx attempt. */
export const undeliveredGuids = (attempts: ReadonlyArray<HookDelivery>): ReadonlyArray<string> => {
  const ok = new Set(attempts.filter((a) => delivered(a.status_code)).map((a) => a.guid))
  return [...new Set(attempts.map((a) => a.guid))].filter((g) => !ok.has(g))
}

/** The attempts a pass examines: newer than the cursor and young enough to be redelivered. */
export const examinedAttempts = (
  attempts: ReadonlyArray<HookDelivery>,
  cursor: number | null,
  oldestAllowed: number
): ReadonlyArray<HookDelivery> =>
  attempts.filter((a) => (cursor === null || a.id > cursor) && Date.parse(a.delivered_at) >= oldestAllowed)

export const planRedeliveries = (input: RedeliveryInput): RedeliveryPlan => {
  const examined = examinedAttempts(input.attempts, input.cursor, input.oldestAllowed)
  const byGuid = new Map<string, Array<HookDelivery>>()
  for (const a of examined) byGuid.set(a.guid, [...(byGuid.get(a.guid) ?? []), a])
  const candidates: Array<RedeliveryCandidate> = []
  for (const [guid, tries] of byGuid) {
    if (tries.some((t) => delivered(t.status_code)) || input.recorded.has(guid)) continue
    const newest = tries.reduce((a, b) => (b.id > a.id ? b : a))
    if (refused(newest.status_code)) continue
    candidates.push({
      guid,
      attemptId: newest.id,
      firstAttemptId: Math.min(...tries.map((t) => t.id)),
      installationId: newest.installation_id,
      event: newest.event,
      action: newest.action
    })
  }
  candidates.sort((a, b) => a.firstAttemptId - b.firstAttemptId)
  const newest = examined.length === 0 ? input.cursor : Math.max(input.cursor ?? 0, ...examined.map((a) => a.id))
  return {
    redeliver: candidates.slice(0, input.max),
    deferred: candidates.slice(input.max),
    examined: examined.length,
    newest
  }
}

/**
 * Where the pass got to: the newest attempt examined, unless an event is still owed (deferred past the cap, or
 * its redelivery request failed). Then the cursor stops just below that event's first attempt, so the next pass
 * examines it again; never below the old cursor.
 */
export const nextCursor = (plan: RedeliveryPlan, owed: ReadonlyArray<RedeliveryCandidate>, cursor: number | null): number | null => {
  if (owed.length === 0) return plan.newest
  const below = Math.min(...owed.map((c) => c.firstAttemptId)) - 1
  return cursor === null ? below : Math.max(cursor, below)
}
