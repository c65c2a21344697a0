import type { BoardEvidence, BoardState, NewBoardEvent, NodeOutcome } from "../domain/BoardQuarantine.ts"
import type { PoolCapacity } from "../services/Kube.ts"

/**
 * Board quarantine, as pure decisions: which failures point at a board rather than at a job, when a board is
 * quarantined, released on trial, trusted again or quarantined anew, and what capacity is left once the
 * quarantined boards are taken out. The program (`boardReview.ts`) reads the inputs and writes the transitions.
 */

/** Failures that say the board is broken, whatever the job: the runner never came up, or the node vanished. */
const ALWAYS_BOARD = new Set(["runner_never_registered", "pod_stuck_pending", "node_unreachable"])
/** A failed image pull points at the board only when other boards of the pool pull the same image. */
const IMAGE_PULL = "image_pull_failed"
/** Probation never grows past a week, however many trials fail. */
const MAX_PROBATION_SECONDS = 7 * 24 * 3600

export interface QuarantinePolicy {
  /** this many board failures within the window quarantine the board */
  readonly after: number
  readonly windowMs: number
  /** the first probation; each failed trial doubles it */
  readonly probationMs: number
}

export interface Transition {
  readonly state: BoardState
  readonly event: NewBoardEvent
}

const evidenceOf = (o: NodeOutcome): BoardEvidence => ({
  pod_name: o.pod_name,
  reason: o.reason ?? o.status,
  at: o.at.toISOString()
})

/**
 * The board failures among `outcomes`. A `pod_stuck_pending` counts only once the pod was placed, which the
 * outcome's node says (a pod that never left the queue names none, and is not read at all). An
 * `image_pull_failed` counts when another board of the same pool completed a runner of the same image: the
 * image is fine, so this board's pull is what failed.
 */
export const boardFailures = (outcomes: ReadonlyArray<NodeOutcome>): ReadonlyArray<NodeOutcome> => {
  const pulledElsewhere = (o: NodeOutcome) =>
    outcomes.some((x) => x.status === "completed" && x.pool === o.pool && x.image === o.image && x.node !== o.node)
  return outcomes.filter((o) =>
    o.status === "failed" && o.reason !== null && (ALWAYS_BOARD.has(o.reason) || (o.reason === IMAGE_PULL && pulledElsewhere(o)))
  )
}

/**
 * The transitions due at `now`, at most one per board. `outcomes` must cover the window and every trial since
 * it began (the caller reads from the earlier of the two).
 */
export const decideQuarantine = (input: {
  readonly now: number
  readonly states: ReadonlyArray<BoardState>
  readonly outcomes: ReadonlyArray<NodeOutcome>
  readonly policy: QuarantinePolicy
}): ReadonlyArray<Transition> => {
  const { now, policy } = input
  const at = new Date(now)
  const failures = boardFailures(input.outcomes)
  const byNode = new Map(input.states.map((s) => [s.node, s]))
  const transitions: Array<Transition> = []
  const quarantine = (node: string, pool: string, probationSeconds: number, evidence: ReadonlyArray<NodeOutcome>) =>
    transitions.push({
      state: { node, pool, state: "quarantined", since: at, until: new Date(now + probationSeconds * 1000), probation_seconds: probationSeconds },
      event: { node, pool, kind: "quarantined", at, probation_seconds: probationSeconds, evidence: evidence.map(evidenceOf) }
    })

  for (const s of input.states) {
    if (s.state === "quarantined" && s.until !== null && now >= s.until.getTime()) {
      transitions.push({
        state: { ...s, state: "trial", since: at, until: null },
        event: { node: s.node, pool: s.pool, kind: "released", at, probation_seconds: null, evidence: [] }
      })
    } else if (s.state === "trial") {
      const since = s.since.getTime()
      const failed = failures.filter((o) => o.node === s.node && o.at.getTime() >= since)
      if (failed.length > 0) {
        quarantine(s.node, s.pool, Math.min(s.probation_seconds * 2, MAX_PROBATION_SECONDS), failed)
      } else if (input.outcomes.some((o) => o.node === s.node && o.status === "completed" && o.at.getTime() >= since)) {
        transitions.push({
          state: { ...s, state: "healthy", since: at, until: null },
          event: { node: s.node, pool: s.pool, kind: "trial_passed", at, probation_seconds: null, evidence: [] }
        })
      }
    }
  }

  const windowStart = now - policy.windowMs
  const counted = new Map<string, Array<NodeOutcome>>()
  for (const o of failures) {
    const s = byNode.get(o.node)
    if (s !== undefined && s.state !== "healthy") continue
    if (o.at.getTime() < windowStart || (s !== undefined && o.at.getTime() < s.since.getTime())) continue
    counted.set(o.node, [...(counted.get(o.node) ?? []), o])
  }
  for (const [node, list] of [...counted].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (list.length >= policy.after) quarantine(node, list[0]!.pool, Math.round(policy.probationMs / 1000), list)
  }
  return transitions
}

/** The standings after the transitions. */
export const applyTransitions = (states: ReadonlyArray<BoardState>, transitions: ReadonlyArray<Transition>) => {
  const byNode = new Map(states.map((s) => [s.node, s]))
  for (const t of transitions) byNode.set(t.state.node, t.state)
  return [...byNode.values()]
}

/**
 * Capacity once the boards are judged: a quarantined board is no capacity (shown unusable, with the end of its
 * probation), and a board on trial offers one slot at most, so it gets one runner as its trial.
 */
export const trustedCapacity = (
  capacity: ReadonlyMap<string, PoolCapacity>,
  states: ReadonlyArray<BoardState>
): ReadonlyMap<string, PoolCapacity> => {
  const byNode = new Map(states.map((s) => [s.node, s]))
  const result = new Map<string, PoolCapacity>()
  for (const [pool, cap] of capacity) {
    const usableBusy = cap.boards.reduce((sum, b) => sum + (b.unusable === null ? b.busy : 0), 0)
    const waiting = cap.usable - usableBusy - cap.available
    const boards = cap.boards.map((b) => {
      const s = byNode.get(b.name)
      if (b.unusable !== null || s?.state !== "quarantined") return b
      return { ...b, unusable: `quarantined until ${s.until?.toISOString() ?? "released"}` }
    })
    let usable = 0
    let free = 0
    for (const b of boards) {
      if (b.unusable !== null) continue
      const slots = byNode.get(b.name)?.state === "trial" ? Math.min(b.slots, 1) : b.slots
      usable += slots
      free += slots - b.busy
    }
    result.set(pool, { ...cap, boards, usable, available: free - waiting })
  }
  return result
}

/** The boards runner pods must avoid: the quarantined ones. */
export const quarantinedNodes = (states: ReadonlyArray<BoardState>, pool?: string): ReadonlyArray<string> =>
  states.filter((s) => s.state === "quarantined" && (pool === undefined || s.pool === pool)).map((s) => s.node).sort()
