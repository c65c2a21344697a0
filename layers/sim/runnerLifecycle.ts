import { Duration, Effect, Option } from "effect"
import type { MemoryJob } from "../github/memory.ts"
import type { MemoryPod, PodChange } from "../kube/memory.ts"
import type { Deliveries } from "./deliveries.ts"
import type { SimJob } from "./worldApi.ts"
import type { RunnerProcess, WorldCore } from "./worldCore.ts"

/*
 * A runner pod's life as the world plays it: created (where pod faults strike: held Pending, failing image pulls,
 * a runner that will never register), started (its runner boots and registers from the JIT config), handed the
 * oldest queued job of its scope and labels, running it for its duration, completing it (or sticking busy), and
 * exiting; or the pod ends under it, and GitHub fails the job it was running.
 */

export interface RunnerLifecycle {
  /** GitHub hands every idle runner the oldest queued job of its scope and labels, if there is one. */
  readonly dispatch: Effect.Effect<void>
  /** For `Kube.onPhaseChange`. */
  readonly onPhaseChange: (change: PodChange) => Effect.Effect<void>
}

export const makeRunnerLifecycle = (core: WorldCore, deliveries: Deliveries): RunnerLifecycle => {
  const { github, kube, jobs, runners, timings, locked, publish, spawn, simSleep, now, chance, upTo } = core
  const { deliverJob } = deliveries
  const neverRegisters = new Set<string>()

  const dispatch: Effect.Effect<void> = locked(Effect.gen(function*() {
    for (const r of runners.values()) {
      if (r.phase !== "idle") continue
      const assigned = yield* github.assignQueuedJob(r.pod)
      if (Option.isSome(assigned)) yield* startJob(r, assigned.value)
    }
  }))

  const startJob = (r: RunnerProcess, assigned: MemoryJob) =>
    Effect.gen(function*() {
      const at = yield* now
      const job = jobs.get(assigned.id)
      if (job === undefined) return
      job.status = "in_progress"
      job.runner = r.pod
      job.startedAt = at
      r.phase = "busy"
      r.jobId = job.id
      yield* publish({ _tag: "JobStarted", at, jobId: job.id, pod: r.pod, owner: job.owner, waitedMs: at - job.queuedAt })
      yield* deliverJob(job, "in_progress", r.runnerId)
      yield* spawn(Effect.zipRight(simSleep(Duration.millis(job.durationMs)), finishJob(r, job.id)))
    })

  /** Ends the job (GitHub side) and the runner's part in it; returns the effects to run once unlocked. */
  const endJob = (job: SimJob, conclusion: string) =>
    Effect.gen(function*() {
      const at = yield* now
      job.status = "completed"
      job.conclusion = conclusion
      job.completedAt = at
      yield* github.completeJob(job.id, conclusion)
      yield* github.setRunStatus(job.runId, { status: "completed", conclusion })
      yield* publish({
        _tag: "JobDone",
        at,
        jobId: job.id,
        pod: job.runner,
        owner: job.owner,
        conclusion,
        waitedMs: (job.startedAt ?? at) - job.queuedAt,
        ranMs: job.startedAt === null ? 0 : at - job.startedAt
      })
      yield* deliverJob(job, "completed", null)
    })

  const finishJob = (r: RunnerProcess, jobId: number) =>
    locked(Effect.gen(function*() {
      const job = jobs.get(jobId)
      if (job === undefined || r.phase !== "busy" || r.jobId !== jobId) return
      const stuck = yield* chance(core.faults.stuckBusy)
      if (stuck) {
        core.count("stuckBusy")
        yield* github.setRunnerStuckBusy(r.pod, true)
      }
      yield* endJob(job, "success")
      r.jobId = null
      if (stuck) {
        r.phase = "stuck"
        const stuckFor = yield* upTo(timings.stuckBusyForMs)
        yield* publish({ _tag: "Fault", at: yield* now, kind: "runner stuck busy", detail: `${r.pod} for ${Math.round(stuckFor / 1000)} s` })
        yield* spawn(Effect.zipRight(simSleep(Duration.millis(stuckFor)), releaseStuck(r)))
      } else {
        // The ephemeral runner unregistered itself when GitHub completed the job; its process exits.
        r.phase = "exiting"
        yield* kube.finishPod(r.pod, 0)
      }
    }))

  const releaseStuck = (r: RunnerProcess) =>
    locked(Effect.gen(function*() {
      yield* github.setRunnerStuckBusy(r.pod, false)
      if (r.phase !== "stuck") return
      yield* github.finishRunner(r.pod)
      r.phase = "exiting"
      yield* kube.finishPod(r.pod, 0)
    }))

  /** The pod started: after booting, its runner registers with GitHub from the JIT config the pod carries. */
  const boot = (r: RunnerProcess) =>
    Effect.zipRight(
      simSleep(timings.bootDelay),
      locked(Effect.gen(function*() {
        if (r.phase !== "booting") return
        if (r.node !== null && core.silentBoards.has(r.node)) {
          // A faulty board: the runner process is up but never reaches GitHub, whatever its JIT config says.
          r.phase = "silent"
          core.count("boardSilentRunners")
          yield* publish({ _tag: "Fault", at: yield* now, kind: "runner never registers", detail: `${r.pod} on faulty board ${r.node}` })
          return
        }
        const registered = yield* github.registerRunnerFromJit(r.jitConfig)
        if (Option.isSome(registered)) {
          r.phase = "idle"
          r.runnerId = registered.value.id
          yield* publish({ _tag: "RunnerOnline", at: yield* now, pod: r.pod, node: r.node })
        } else if (neverRegisters.has(r.pod)) {
          // The runner process is up but never reaches GitHub; the pod keeps running until someone kills it.
          r.phase = "silent"
        } else {
          // Its registration was deleted before it could connect: the runner process exits with an error.
          r.phase = "exiting"
          yield* kube.finishPod(r.pod, 1)
        }
      }))
    ).pipe(Effect.zipRight(dispatch))

  /** Pod creation: what the world decides for the new pod happens before the cluster's next pass. */
  const onPodCreated = (pod: MemoryPod) =>
    Effect.gen(function*() {
      const at = yield* now
      const entity = pod.request.entity
      const r: RunnerProcess = {
        pod: pod.name,
        owner: entity.name,
        entityId: entity.id,
        pool: pod.request.pool,
        jitConfig: pod.request.jitConfig,
        phase: "pending",
        runnerId: null,
        jobId: null,
        node: null,
        createdAt: at,
        runningAt: null,
        endedAt: null
      }
      runners.set(pod.name, r)
      yield* publish({ _tag: "RunnerProvisioned", at, pod: pod.name, owner: entity.name, entityId: entity.id, pool: pod.request.pool })
      if (yield* chance(core.faults.stuckPending)) {
        core.count("stuckPending")
        yield* kube.holdPending({ pod: pod.name }, true)
        yield* publish({ _tag: "Fault", at, kind: "pod stuck pending", detail: pod.name })
        if (timings.stuckPendingForMs !== undefined) {
          const heldFor = yield* upTo(timings.stuckPendingForMs)
          yield* spawn(Effect.zipRight(simSleep(Duration.millis(heldFor)), kube.holdPending({ pod: pod.name }, false)))
        }
      } else if (yield* chance(core.faults.imagePullFailures)) {
        core.count("imagePullFailures")
        yield* kube.failImagePull({ pod: pod.name }, true)
        yield* publish({ _tag: "Fault", at, kind: "image pull failing", detail: pod.name })
      }
      if (yield* chance(core.faults.neverRegister)) {
        core.count("neverRegistered")
        neverRegisters.add(pod.name)
        yield* github.neverRegister(pod.name)
        yield* publish({ _tag: "Fault", at, kind: "runner never registers", detail: pod.name })
      }
    })

  /** The pod ended or vanished: a job it was running is lost (GitHub fails it), its runner goes offline. */
  const onPodEnded = (change: PodChange) =>
    locked(Effect.gen(function*() {
      const r = runners.get(change.name)
      const at = yield* now
      yield* publish({
        _tag: "PodEnded",
        at,
        pod: change.name,
        phase: change.to ?? "deleted",
        reason: change.pod.reason
      })
      if (r === undefined || r.phase === "gone") return
      const was = r.phase
      r.phase = "gone"
      r.endedAt = at
      if (was === "busy" && r.jobId !== null) {
        const job = jobs.get(r.jobId)
        r.jobId = null
        if (job !== undefined && job.status === "in_progress") yield* endJob(job, "failure")
      }
      if (r.runnerId !== null) {
        // Nobody is left to run the runner: GitHub shows it offline (and no longer busy) until it is deleted.
        yield* github.setRunnerStuckBusy(r.pod, false)
        yield* github.setRunnerBusy(r.pod, false)
        yield* github.setRunnerStatus(r.pod, "offline")
      }
    }))

  const onPodRunning = (change: PodChange) =>
    locked(Effect.gen(function*() {
      const r = runners.get(change.name)
      if (r === undefined || r.phase !== "pending") return
      r.phase = "booting"
      r.node = change.pod.nodeName
      r.runningAt = yield* now
      yield* spawn(boot(r))
    }))

  /** What the cluster tells the world: a pod was created, started, or ended (or vanished). */
  const onPhaseChange = (change: PodChange): Effect.Effect<void> => {
    if (change.from === null) return onPodCreated(change.pod)
    if (change.to === "Running") return spawn(onPodRunning(change))
    if (change.to === "Pending") return Effect.void
    return spawn(onPodEnded(change))
  }

  return { dispatch, onPhaseChange }
}
