import { Clock, Effect } from "effect"
import type { BoardState } from "../domain/BoardQuarantine.ts"
import { recordQuarantine } from "../observability/collect.ts"
import { Db } from "../services/Db.ts"
import { applyTransitions, decideQuarantine } from "./quarantine.ts"
import { SchedulerSettings } from "./settings.ts"

/**
 * The board review of a cycle, before demand matching: reads the boards' standings and the recent ends of
 * workers on nodes, lets the quarantine rule decide, and writes each transition (its standing and its event) as
 * a step of its own. Returns the standings demand matching must respect. With quarantine off in the runner
 * config nothing is judged and no board is held back.
 */
export const reviewBoards = Effect.fn("Scheduler.reviewBoards")(function*() {
  const db = yield* Db
  const settings = yield* SchedulerSettings
  const policy = settings.runnerConfig.quarantine
  if (policy === null) return [] as ReadonlyArray<BoardState>
  const now = yield* Clock.currentTimeMillis
  const states = yield* db.getBoardStates
  const windowMs = policy.withinMinutes * 60_000
  // A trial is judged on everything since it began, however long ago that was.
  const trialsSince = states.filter((s) => s.state === "trial").map((s) => s.since.getTime())
  const outcomes = yield* db.getNodeOutcomes(new Date(Math.min(now - windowMs, ...trialsSince)))
  const transitions = decideQuarantine({
    now,
    states,
    outcomes,
    policy: { after: policy.after, windowMs, probationMs: policy.probationMinutes * 60_000 }
  })
  for (const t of transitions) {
    yield* db.step(db.recordBoardTransition(t.state, t.event))
    yield* Effect.logWarning(`board ${t.event.kind}`).pipe(
      Effect.annotateLogs({
        node: t.state.node,
        pool: t.state.pool,
        until: t.state.until?.toISOString() ?? "",
        evidence: t.event.evidence.map((e) => `${e.pod_name}:${e.reason}`).join(",")
      })
    )
  }
  const after = applyTransitions(states, transitions)
  yield* recordQuarantine(after)
  return after
})
