import { Effect, Stream } from "effect"
import { isTerminal as isTerminalPhase, RUNNER_CONTAINER, type Pod, type PodEvent } from "../../src/domain/Pod.ts"
import {
  type DeleteOptions,
  KubeError,
  PodAlreadyExists,
  type KubeOperation,
  type RunnerPodChange,
  type RunnerPodRequest
} from "../../src/services/Kube.ts"
import { leanSpan } from "../../src/services/leanSpan.ts"
import type { KubeOperations } from "./assembleKube.ts"
import { poolCapacities } from "./capacity.ts"
import { FIRST_PULL_BACKOFF_MS } from "./memoryKubelet.ts"
import type { MemoryPod, PodChange } from "./memoryModel.ts"
import { type ClusterState, kubeletUp, mutate, type PodRecord, sortedPods, toBoardNode, toPod } from "./memoryState.ts"
import { BOARD_LABEL, isValidLabelValue, runnerPodManifest } from "./podSpec.ts"

/**
 * The memory cluster's API surface: the `Kube` operations as an API server answers them, with the call counts
 * and injected faults of its control handle.
 */

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

export const memoryOperations = (s: ClusterState): KubeOperations => {
  const { namespace, nodes, pods, events, faults, counts } = s

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
      [...nodes.values()].flatMap((n) => toBoardNode(n) ?? []),
      [...pods.values()].map((p) => ({ pool: p.labels[BOARD_LABEL] ?? "", phase: p.phase, nodeName: p.nodeName }))
    )
  }).pipe(Effect.withSpan("Kube.capacity"))

  const listBoards = guard("listNodes").pipe(
    Effect.map(() => [...nodes.values()].flatMap((n) => toBoardNode(n) ?? []).sort((a, b) => (a.name < b.name ? -1 : 1))),
    Effect.withSpan("Kube.listBoards")
  )

  // once per runner in a burst: untraced (Effect.fn takes two stack traces a call), its span without a trace
  const createRunnerPod = Effect.fnUntraced(function*(request: RunnerPodRequest) {
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
    yield* mutate(s, (now, changes) => {
      const r: PodRecord = {
        request,
        labels,
        pool: manifest.spec?.nodeSelector?.[BOARD_LABEL] ?? request.pool,
        created: now,
        seq: s.nextSeq++,
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
        logs: new Map(),
        avoid: new Set(request.avoidNodes ?? []),
        terminating: false
      }
      pods.set(request.name, r)
      changes.push({ name: request.name, from: null, to: "Pending", at: new Date(now), pod: toPod(request.name, r) })
    })
  }, leanSpan("Kube.createRunnerPod"))

  const listRunnerPods = guard("listPods").pipe(
    Effect.map((): ReadonlyArray<Pod> => sortedPods(s).map(([name, r]) => toPod(name, r))),
    Effect.withSpan("Kube.listRunnerPods")
  )

  const killPod = Effect.fn("Kube.killPod")(function*(podName: string) {
    yield* guard("patchPod")
    const r = pods.get(podName)
    // The API only lets the deadline shrink; the kubelet acts on it in its next pass.
    if (r !== undefined) r.deadlineSeconds = Math.min(r.deadlineSeconds, 1)
  })

  const deletePod = Effect.fn("Kube.deletePod")(function*(podName: string, options?: DeleteOptions) {
    yield* guard("deletePod")
    yield* mutate(s, (now, changes) => {
      const r = pods.get(podName)
      if (r === undefined) return
      // A graceful deletion waits for the kubelet to confirm; a lost one never does, so only grace 0 removes it. A
      // finished pod has nothing left to stop: the API server deletes it at once, whatever the grace asked.
      if (options?.gracePeriodSeconds !== 0 && !isTerminalPhase(r.phase) && r.nodeName !== null && !kubeletUp(s, r.nodeName)) {
        r.terminating = true
        return
      }
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

  // What the API shows of a pod: the memory cluster's extra fields (the request, and with it the JIT config) stay here.
  const apiPod = ({ activeDeadlineSeconds: _deadline, request: _request, ...pod }: MemoryPod): Pod => pod

  const toChange = (change: PodChange): RunnerPodChange => ({
    _tag: change.from === null ? "Added" : change.to === null ? "Deleted" : "Modified",
    pod: apiPod(change.pod)
  })

  // Like the live watch: a listing first (counted, and failing as a listing fails), then every phase move from the
  // subscription on; a memory cluster never drops its watchers, so it lists only once.
  const watchRunnerPods: Stream.Stream<RunnerPodChange, KubeError> = Stream.unwrapScoped(
    Effect.gen(function*() {
      yield* guard("listPods")
      yield* guard("watchPods")
      const changes = yield* s.feed.subscribe
      return Stream.concat(
        Stream.succeed<RunnerPodChange>({ _tag: "Listed" }),
        Stream.fromQueue(changes).pipe(Stream.map(toChange))
      )
    })
  )

  return { capacity, createRunnerPod, listRunnerPods, killPod, deletePod, listBoards, podEvents, containerLogs, watchRunnerPods }
}
