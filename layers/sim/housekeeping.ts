import { Effect, type Option } from "effect"
import { makeReadinessSchedule } from "./boardFaults.ts"
import type { Deliveries } from "./deliveries.ts"
import type { WorldCore } from "./worldCore.ts"

/*
 * The world's periodic pass (`SimOptions.housekeeping`): what GitHub and the runners do on their own time rather
 * than in answer to an event.
 */

export const makeHousekeeping = (
  core: WorldCore,
  deliveries: Deliveries,
  dispatch: Effect.Effect<void>,
  loseNode: () => Effect.Effect<Option.Option<string>>
): Effect.Effect<void> => {
  const { github, kube, jobs, runners, timings, speed, locked, publish, now, chance } = core
  const { deliverJob } = deliveries
  let lastHousekeeping = core.startedAt
  const readiness = makeReadinessSchedule(core.options.boardFaults ?? [], kube)

  /**
   * Every period: runners notice a deleted registration and exit; GitHub cancels jobs queued too long; nodes get
   * lost at the configured rate; faulty boards go NotReady and come back on their schedule; idle runners are
   * offered queued jobs again.
   */
  const housekeep = Effect.gen(function*() {
    const at = yield* now
    const sinceLast = at - lastHousekeeping
    lastHousekeeping = at
    for (const change of yield* readiness.apply((at - core.startedAt) * speed)) {
      if (change.down) core.count("boardsNotReady")
      yield* publish({
        _tag: "Fault",
        at,
        kind: change.down ? "board not ready" : "board ready again",
        detail: change.down ? `${change.node} (Ready ${change.ready})` : change.node
      })
    }
    yield* locked(Effect.gen(function*() {
      const registered = new Set((yield* github.snapshot).runners.map((r) => r.name))
      for (const r of runners.values()) {
        if ((r.phase === "idle" || r.phase === "silent") && r.runnerId !== null && !registered.has(r.pod)) {
          r.phase = "exiting"
          yield* kube.finishPod(r.pod, 1)
        }
      }
      for (const job of jobs.values()) {
        if (job.status === "queued" && at - job.queuedAt >= timings.queuedJobTimeoutMs / speed) {
          yield* github.setJobStatus(job.id, { status: "completed", conclusion: "cancelled" })
          job.status = "completed"
          job.conclusion = "cancelled"
          job.completedAt = at
          yield* github.setRunStatus(job.runId, { status: "completed", conclusion: "cancelled" })
          yield* publish({ _tag: "JobDone", at, jobId: job.id, pod: null, owner: job.owner, conclusion: "cancelled", waitedMs: at - job.queuedAt, ranMs: 0 })
          yield* deliverJob(job, "completed", null)
        }
      }
    }))
    // the chance of a loss in this interval, at the configured rate per simulated hour
    if (yield* chance(core.faults.nodeLossPerHour * sinceLast * speed / 3_600_000)) yield* loseNode()
    yield* dispatch
  })
  return housekeep
}
