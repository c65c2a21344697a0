import { Cause, Clock, Context, Duration, Effect, Layer, PubSub, type Queue, type Scope, Stream } from "effect"
import { holdsSlot, RUNNER_CONTAINER, type ContainerState, type Pod, type PodEvent, type PodPhase } from "../../src/domain/Pod.ts"
import {
  Kube,
  KubeError,
  kubeOperations,
  PodAlreadyExists,
  type KubeOperation,
  type RunnerPodRequest
} from "../../src/services/Kube.ts"
import { poolCapacities } from "./capacity.ts"
import { collectFailureInfoWith } from "./failureInfo.ts"
import { BOARD_LABEL, isValidLabelValue, RUNNER_RESOURCE, runnerPodManifest } from "./podSpec.ts"

/**
 * An in-memory cluster: labelled nodes with device-plugin slots, and a simulated scheduler plus kubelet that
 * move runner pods through their phases on Effect's Clock, recording the events a real cluster records. It is
 * the `Kube` of tests and of `--simulate`, so it must behave like the real thing where the scheduler can tell:
 * capacity, phases, reasons, events, and the ways a cluster goes wrong.
 */

/** A runner pod as the memory cluster holds it: what the API shows, plus what the simulation may need. */
export interface MemoryPod extends Pod {
  /** The request it was created from. The closed-loop simulation reads the JIT config here to register a runner. */
  readonly request: RunnerPodRequest
  readonly activeDeadlineSeconds: number
}

/** One phase move. `from` is null for a new pod, `to` is null for a deleted one. */
export interface PodChange {
  readonly name: string
  readonly from: PodPhase | null
  readonly to: PodPhase | null
  readonly at: Date
  /** the pod after the change (for a deletion, as it was when deleted) */
  readonly pod: MemoryPod
}

export interface MemoryNode {
  readonly name: string
  /** the `riseproject.dev/board` label; null for a node outside every pool (a control-plane node, say) */
  readonly pool: string | null
  readonly slots: number
}

/** Which pods a switch applies to: one pod, or every pod (present and future) of a pool. */
export type PodTarget = { readonly pod: string } | { readonly pool: string }

export interface Fault {
  readonly operation: KubeOperation
  /** HTTP status of the injected error; default 500 */
  readonly status?: number
  readonly message?: string
  /** how many calls fail; default 1, `Infinity` until `clearFaults` */
  readonly times?: number
}

/** What happens to a lost node's pods: PodGC fails them, an old cluster shows Unknown, eviction deletes them. */
export type NodeLoss = "Failed" | "Unknown" | "Deleted"

export interface KubeMemoryControlShape {
  /** Adds a node (or replaces the one with that name). */
  readonly addNode: (name: string, pool: string | null, slots: number) => Effect.Effect<void>
  /** The node disappears; its pods end as `podsBecome` says (default Failed, reason NodeLost). */
  readonly removeNode: (name: string, podsBecome?: NodeLoss) => Effect.Effect<void>
  readonly nodes: Effect.Effect<ReadonlyArray<MemoryNode>>
  /** One pass of the scheduler and kubelet at the current Clock time. The layer also runs one every `tick`. */
  readonly reconcile: Effect.Effect<void>
  /** The runner process exits: Running -> Succeeded (0) or Failed. False when the pod is not Running. */
  readonly finishPod: (name: string, exitCode: number) => Effect.Effect<boolean>
  /** Appends to a container's log. */
  readonly writeLog: (podName: string, container: string, text: string) => Effect.Effect<void>
  /** Image pulls of the target fail (ErrImagePull, then ImagePullBackOff) until switched off again. */
  readonly failImagePull: (target: PodTarget, failing?: boolean) => Effect.Effect<void>
  /** The scheduler never places the target: it stays Pending with FailedScheduling events until released. */
  readonly holdPending: (target: PodTarget, held?: boolean) => Effect.Effect<void>
  /** The next `times` calls of an operation fail with the given HTTP status. */
  readonly injectFault: (fault: Fault) => Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  /** Every pod, sorted by name, with its request (and so its JIT config). */
  readonly pods: Effect.Effect<ReadonlyArray<MemoryPod>>
  readonly callCounts: Effect.Effect<Readonly<Record<KubeOperation, number>>>
  /** Phase changes from the moment the stream is run. */
  readonly changes: Stream.Stream<PodChange>
  /** Phase changes from the moment of subscription, for consumers that must not miss the first one. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<PodChange>, never, Scope.Scope>
  /**
   * Runs `handler` for every phase change, inline, before the call that caused it returns; so a simulated runner
   * can register with GitHub exactly when its pod starts. Removed when the scope closes. Handler failures are logged.
   */
  readonly onPhaseChange: (handler: (change: PodChange) => Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
}

export class KubeMemoryControl extends Context.Tag("riscv-runner/KubeMemoryControl")<
  KubeMemoryControl,
  KubeMemoryControlShape
>() {}

export interface KubeMemoryOptions {
  readonly namespace?: string
  /** Period of the automatic scheduler/kubelet pass, on Effect's Clock; null leaves it to `reconcile`. Default 1 s. */
  readonly tick?: Duration.DurationInput | null
  /** From binding to the container start (the image pull). Default 0: a placed pod runs in the same pass. */
  readonly pullDuration?: Duration.DurationInput
  readonly nodes?: ReadonlyArray<MemoryNode>
}

// --- internal state ----------------------------------------------------------------------------------------

interface EventRecord {
  type: string
  reason: string
  message: string
  count: number
  first: number
  last: number
}

interface PodRecord {
  readonly request: RunnerPodRequest
  readonly labels: Readonly<Record<string, string>>
  /** the node selector's board */
  readonly pool: string
  readonly created: number
  /** creation order; pods created in the same instant still queue first come, first served */
  readonly seq: number
  phase: PodPhase
  nodeName: string | null
  reason: string
  message: string
  /** when the kubelet admitted the pod (its binding); the active deadline counts from here */
  startTime: number | null
  deadlineSeconds: number
  runner: ContainerState
  readyAt: number | null
  pullStartedAt: number | null
  pullRetryAt: number | null
  pullBackoffMs: number
  logs: Map<string, string>
}

const DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
const FIRST_PULL_BACKOFF_MS = 10_000
const MAX_PULL_BACKOFF_MS = 300_000
/** 128 + SIGKILL: what a container killed at its deadline exits with. */
const KILLED_EXIT_CODE = 137

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

const targets = (set: ReadonlySet<string>, kind: "pod" | "pool", key: string) => set.has(`${kind}:${key}`)
const targetKey = (t: PodTarget) => ("pod" in t ? `pod:${t.pod}` : `pool:${t.pool}`)

export const KubeMemory = (options: KubeMemoryOptions = {}): Layer.Layer<Kube | KubeMemoryControl> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const namespace = options.namespace ?? "default"
      const pullMs = Duration.toMillis(Duration.decode(options.pullDuration ?? 0))
      const nodes = new Map<string, MemoryNode>()
      for (const n of options.nodes ?? []) nodes.set(n.name, n)
      const pods = new Map<string, PodRecord>()
      const events = new Map<string, Array<EventRecord>>()
      const failingPulls = new Set<string>()
      const held = new Set<string>()
      const faults: Array<{ operation: KubeOperation; status: number; message: string; remaining: number }> = []
      const counts = Object.fromEntries(kubeOperations.map((op) => [op, 0])) as Record<KubeOperation, number>
      const handlers = new Set<(change: PodChange) => Effect.Effect<void>>()
      const pubsub = yield* PubSub.unbounded<PodChange>()
      let nextSeq = 0

      // --- views ---------------------------------------------------------------------------------------------

      const toPod = (name: string, r: PodRecord): MemoryPod => ({
        name,
        phase: r.phase,
        nodeName: r.nodeName,
        reason: r.reason,
        message: r.message,
        creationTime: new Date(r.created),
        labels: r.labels,
        containers: r.nodeName === null ? [] : [{ name: RUNNER_CONTAINER, state: r.runner }],
        initContainers: [],
        readyTransition: r.readyAt === null ? null : new Date(r.readyAt),
        request: r.request,
        activeDeadlineSeconds: r.deadlineSeconds
      })

      const sortedPods = () => [...pods.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

      // --- recording ------------------------------------------------------------------------------------------

      /** Like the kubelet's event recorder, a repeat of the same event bumps its count instead of adding one. */
      const record = (pod: string, now: number, type: "Normal" | "Warning", reason: string, message: string) => {
        const list = events.get(pod) ?? []
        const same = list.find((e) => e.type === type && e.reason === reason && e.message === message)
        if (same !== undefined) {
          same.count += 1
          same.last = now
        } else list.push({ type, reason, message, count: 1, first: now, last: now })
        events.set(pod, list)
      }

      type Changes = Array<PodChange>
      const setPhase = (changes: Changes, name: string, r: PodRecord, now: number, to: PodPhase) => {
        const from = r.phase
        if (from === to) return
        r.phase = to
        changes.push({ name, from, to, at: new Date(now), pod: toPod(name, r) })
      }

      /** Publishes after the state is consistent, so handlers may call back into the cluster. */
      const publish = (changes: Changes) =>
        Effect.gen(function*() {
          if (changes.length === 0) return
          yield* PubSub.publishAll(pubsub, changes)
          for (const change of changes) {
            for (const handler of [...handlers]) {
              yield* handler(change).pipe(
                Effect.catchAllCause((cause) =>
                  Effect.logWarning("pod change handler failed", Cause.pretty(cause)).pipe(
                    Effect.annotateLogs({ pod: change.name })
                  )
                )
              )
            }
          }
        })

      /** Runs a state change at the current Clock time, then announces its phase moves. */
      const mutate = <A>(f: (now: number, changes: Changes) => A) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const changes: Changes = []
          const result = f(now, changes)
          yield* publish(changes)
          return result
        })

      // --- API surface ------------------------------------------------------------------------------------------

      /** Counts the call, then fails it when a fault is armed for the operation. */
      const guard = (operation: KubeOperation) =>
        Effect.suspend(() => {
          counts[operation] += 1
          const fault = faults.find((f) => f.operation === operation && f.remaining > 0)
          if (fault === undefined) return Effect.void
          fault.remaining -= 1
          return Effect.fail(new KubeError({ operation, status: fault.status, message: fault.message }))
        })

      const notFound = (operation: KubeOperation, name: string) =>
        new KubeError({ operation, status: 404, message: `${operation} failed with HTTP 404: NotFound: pods "${name}" not found` })

      const capacity = Effect.gen(function*() {
        yield* guard("listNodes")
        yield* guard("listPods")
        return poolCapacities(
          [...nodes.values()].flatMap((n) => (n.pool === null ? [] : [{ pool: n.pool, slots: n.slots }])),
          [...pods.values()].map((p) => ({ pool: p.labels[BOARD_LABEL] ?? "", phase: p.phase }))
        )
      }).pipe(Effect.withSpan("Kube.capacity"))

      const createRunnerPod = Effect.fn("Kube.createRunnerPod")(function*(request: RunnerPodRequest) {
        yield* guard("createPod")
        // Built from the same manifest as the live layer, so labels and selector cannot drift apart; the env (and
        // with it the JIT config) is not kept, the request is.
        const manifest = runnerPodManifest(request, namespace)
        const labels = manifest.metadata?.labels ?? {}
        const invalid = !DNS_SUBDOMAIN.test(request.name) || request.name.length > 253 ||
          Object.values(labels).some((v) => !isValidLabelValue(v))
        if (invalid) {
          return yield* new KubeError({
            operation: "createPod",
            status: 422,
            message: `createPod failed with HTTP 422: Invalid: Pod "${request.name}" is invalid (name or labels)`
          })
        }
        if (pods.has(request.name)) return yield* new PodAlreadyExists({ podName: request.name })
        yield* mutate((now, changes) => {
          const r: PodRecord = {
            request,
            labels,
            pool: manifest.spec?.nodeSelector?.[BOARD_LABEL] ?? request.pool,
            created: now,
            seq: nextSeq++,
            phase: "Pending",
            nodeName: null,
            reason: "",
            message: "",
            startTime: null,
            deadlineSeconds: manifest.spec?.activeDeadlineSeconds ?? 0,
            runner: { _tag: "Waiting", reason: "ContainerCreating", message: "" },
            readyAt: null,
            pullStartedAt: null,
            pullRetryAt: null,
            pullBackoffMs: FIRST_PULL_BACKOFF_MS,
            logs: new Map()
          }
          pods.set(request.name, r)
          changes.push({ name: request.name, from: null, to: "Pending", at: new Date(now), pod: toPod(request.name, r) })
        })
      })

      const listRunnerPods = guard("listPods").pipe(
        Effect.map((): ReadonlyArray<Pod> => sortedPods().map(([name, r]) => toPod(name, r))),
        Effect.withSpan("Kube.listRunnerPods")
      )

      const killPod = Effect.fn("Kube.killPod")(function*(podName: string) {
        yield* guard("patchPod")
        const r = pods.get(podName)
        // The API only lets the deadline shrink; the kubelet acts on it in its next pass.
        if (r !== undefined) r.deadlineSeconds = Math.min(r.deadlineSeconds, 1)
      })

      const deletePod = Effect.fn("Kube.deletePod")(function*(podName: string) {
        yield* guard("deletePod")
        yield* mutate((now, changes) => {
          const r = pods.get(podName)
          if (r === undefined) return
          pods.delete(podName)
          events.delete(podName)
          changes.push({ name: podName, from: r.phase, to: null, at: new Date(now), pod: toPod(podName, r) })
        })
      })

      const podEvents = Effect.fn("Kube.podEvents")(function*(podName: string) {
        yield* guard("listEvents")
        return (events.get(podName) ?? []).map((e): PodEvent => ({
          type: e.type,
          reason: e.reason,
          message: e.message,
          count: e.count,
          firstSeen: new Date(e.first),
          lastSeen: new Date(e.last)
        }))
      })

      const containerLogs = Effect.fn("Kube.containerLogs")(function*(podName: string, container: string) {
        yield* guard("readLog")
        const r = pods.get(podName)
        if (r === undefined) return yield* notFound("readLog", podName)
        if (container !== RUNNER_CONTAINER) {
          return yield* new KubeError({
            operation: "readLog",
            status: 400,
            message: `readLog failed with HTTP 400: BadRequest: container ${container} is not valid for pod ${podName}`
          })
        }
        if (r.runner._tag === "Waiting") {
          return yield* new KubeError({
            operation: "readLog",
            status: 400,
            message:
              `readLog failed with HTTP 400: BadRequest: container "${container}" in pod "${podName}" is waiting to start: ${r.runner.reason}`
          })
        }
        return r.logs.get(container) ?? ""
      })

      // --- the simulated scheduler and kubelet ------------------------------------------------------------------

      const usedSlots = (node: string) => {
        let used = 0
        for (const p of pods.values()) if (p.nodeName === node && holdsSlot(p.phase)) used += 1
        return used
      }

      const isHeld = (name: string, r: PodRecord) => targets(held, "pod", name) || targets(held, "pool", r.pool)
      const pullFails = (name: string, r: PodRecord) =>
        targets(failingPulls, "pod", name) || targets(failingPulls, "pool", r.pool)

      const schedule = (name: string, r: PodRecord, now: number) => {
        const all = [...nodes.values()]
        const matching = all.filter((n) => n.pool === r.pool)
        const free = isHeld(name, r) ? undefined : matching.find((n) => n.slots - usedSlots(n.name) > 0)
        if (free === undefined) {
          const mismatch = all.length - matching.length
          const parts = [
            ...(isHeld(name, r) ? [`${matching.length} node(s) were unschedulable`] : []),
            ...(!isHeld(name, r) && matching.length > 0 ? [`${matching.length} Insufficient ${RUNNER_RESOURCE}`] : []),
            ...(mismatch > 0 ? [`${mismatch} node(s) didn't match Pod's node affinity/selector`] : [])
          ]
          record(name, now, "Warning", "FailedScheduling", `0/${all.length} nodes are available: ${parts.join(", ")}.`)
          return
        }
        r.nodeName = free.name
        r.startTime = now
        record(name, now, "Normal", "Scheduled", `Successfully assigned ${namespace}/${name} to ${free.name}`)
        startPull(name, r, now)
      }

      const startPull = (name: string, r: PodRecord, now: number) => {
        r.pullStartedAt = now
        r.pullRetryAt = null
        // A retry keeps showing the back-off reason until the pull settles, as `kubectl get pods` does.
        const shown = r.runner._tag === "Waiting" && r.runner.reason !== "" ? r.runner.reason : "ContainerCreating"
        r.runner = { _tag: "Waiting", reason: shown, message: "" }
        record(name, now, "Normal", "Pulling", `Pulling image "${r.request.image}"`)
      }

      const finishPull = (name: string, r: PodRecord, now: number, changes: Changes) => {
        const image = r.request.image
        r.pullStartedAt = null
        if (pullFails(name, r)) {
          const detail = `failed to pull and unpack image "${image}": failed to resolve reference "${image}": not found`
          record(name, now, "Warning", "Failed", `Failed to pull image "${image}": ${detail}`)
          record(name, now, "Warning", "Failed", "Error: ErrImagePull")
          r.runner = { _tag: "Waiting", reason: "ErrImagePull", message: detail }
          r.pullRetryAt = now + r.pullBackoffMs
          r.pullBackoffMs = Math.min(r.pullBackoffMs * 2, MAX_PULL_BACKOFF_MS)
          return
        }
        record(name, now, "Normal", "Pulled", `Successfully pulled image "${image}" in ${Math.round((pullMs) / 1000)}s`)
        record(name, now, "Normal", "Created", `Created container: ${RUNNER_CONTAINER}`)
        record(name, now, "Normal", "Started", `Started container ${RUNNER_CONTAINER}`)
        r.runner = { _tag: "Running", startedAt: new Date(now) }
        r.readyAt = now
        setPhase(changes, name, r, now, "Running")
      }

      const terminate = (r: PodRecord, now: number, exitCode: number, reason: string) => {
        if (r.runner._tag === "Running") {
          r.runner = {
            _tag: "Terminated",
            exitCode,
            reason,
            message: "",
            startedAt: r.runner.startedAt,
            finishedAt: new Date(now)
          }
        }
        r.readyAt = null
        r.pullStartedAt = null
        r.pullRetryAt = null
      }

      const step = (now: number, changes: Changes) => {
        // Oldest first, as the scheduler's queue orders pods of equal priority.
        const queue = [...pods.entries()].sort(([, a], [, b]) => a.seq - b.seq)
        for (const [name, r] of queue) {
          if (!holdsSlot(r.phase)) continue
          if (r.nodeName === null) {
            schedule(name, r, now)
            if (r.nodeName === null) continue
          }
          // The kubelet enforces the active deadline on every pod it admitted, started or not.
          if (r.startTime !== null && now - r.startTime >= r.deadlineSeconds * 1000) {
            if (r.runner._tag === "Running") record(name, now, "Normal", "Killing", `Stopping container ${RUNNER_CONTAINER}`)
            record(name, now, "Warning", "DeadlineExceeded", DEADLINE_MESSAGE)
            terminate(r, now, KILLED_EXIT_CODE, "Error")
            r.reason = "DeadlineExceeded"
            r.message = DEADLINE_MESSAGE
            setPhase(changes, name, r, now, "Failed")
            continue
          }
          if (r.phase !== "Pending") continue
          if (r.pullRetryAt !== null && now >= r.pullRetryAt) startPull(name, r, now)
          if (r.pullStartedAt !== null && now >= r.pullStartedAt + pullMs) finishPull(name, r, now, changes)
          else if (r.pullRetryAt !== null && r.runner._tag === "Waiting") {
            // Between attempts the kubelet reports the back-off, as `kubectl get pods` shows ImagePullBackOff.
            const image = r.request.image
            record(name, now, "Normal", "BackOff", `Back-off pulling image "${image}"`)
            if (r.runner.reason !== "ImagePullBackOff") record(name, now, "Warning", "Failed", "Error: ImagePullBackOff")
            r.runner = { _tag: "Waiting", reason: "ImagePullBackOff", message: `Back-off pulling image "${image}"` }
          }
        }
      }

      const reconcile = mutate(step).pipe(Effect.withSpan("KubeMemory.reconcile"))

      const finishPod = (name: string, exitCode: number) =>
        mutate((now, changes) => {
          const r = pods.get(name)
          if (r === undefined || r.phase !== "Running") return false
          terminate(r, now, exitCode, exitCode === 0 ? "Completed" : "Error")
          setPhase(changes, name, r, now, exitCode === 0 ? "Succeeded" : "Failed")
          return true
        })

      const removeNode = (nodeName: string, podsBecome: NodeLoss = "Failed") =>
        mutate((now, changes) => {
          if (!nodes.delete(nodeName)) return
          for (const [name, r] of [...pods.entries()]) {
            if (r.nodeName !== nodeName || !holdsSlot(r.phase)) continue
            if (podsBecome === "Deleted") {
              pods.delete(name)
              events.delete(name)
              changes.push({ name, from: r.phase, to: null, at: new Date(now), pod: toPod(name, r) })
              continue
            }
            // Nobody is left to report how the containers ended, so their last known state stays.
            record(name, now, "Warning", "NodeNotReady", "Node is not ready")
            r.reason = "NodeLost"
            r.message = `Node ${nodeName} which was running pod ${name} is unresponsive`
            r.readyAt = null
            r.pullStartedAt = null
            r.pullRetryAt = null
            setPhase(changes, name, r, now, podsBecome)
          }
        })

      const control = KubeMemoryControl.of({
        addNode: (name, pool, slots) => Effect.sync(() => void nodes.set(name, { name, pool, slots })),
        removeNode,
        nodes: Effect.sync(() => [...nodes.values()]),
        reconcile,
        finishPod,
        writeLog: (podName, container, text) =>
          Effect.sync(() => {
            const r = pods.get(podName)
            if (r !== undefined) r.logs.set(container, (r.logs.get(container) ?? "") + text)
          }),
        failImagePull: (target, failing = true) =>
          Effect.sync(() => void (failing ? failingPulls.add(targetKey(target)) : failingPulls.delete(targetKey(target)))),
        holdPending: (target, on = true) =>
          Effect.sync(() => void (on ? held.add(targetKey(target)) : held.delete(targetKey(target)))),
        injectFault: (fault) =>
          Effect.sync(() =>
            void faults.push({
              operation: fault.operation,
              status: fault.status ?? 500,
              message: fault.message ??
                `${fault.operation} failed with HTTP ${fault.status ?? 500}: injected fault`,
              remaining: fault.times ?? 1
            })
          ),
        clearFaults: Effect.sync(() => void faults.splice(0, faults.length)),
        pods: Effect.sync(() => sortedPods().map(([name, r]) => toPod(name, r))),
        callCounts: Effect.sync(() => ({ ...counts })),
        changes: Stream.fromPubSub(pubsub),
        subscribe: PubSub.subscribe(pubsub),
        onPhaseChange: (handler) =>
          Effect.acquireRelease(
            Effect.sync(() => void handlers.add(handler)),
            () => Effect.sync(() => void handlers.delete(handler))
          )
      })

      const tick = options.tick === undefined ? Duration.seconds(1) : options.tick
      if (tick !== null) {
        yield* Effect.forkScoped(Effect.forever(Effect.sleep(tick).pipe(Effect.zipRight(reconcile))))
      }

      const kube = Kube.of({
        capacity,
        createRunnerPod,
        listRunnerPods,
        killPod,
        deletePod,
        podEvents,
        containerLogs,
        collectFailureInfo: collectFailureInfoWith({ podEvents, containerLogs }),
        callCounts: Effect.sync(() => ({ ...counts }))
      })
      return Context.make(Kube, kube).pipe(Context.add(KubeMemoryControl, control))
    })
  )
