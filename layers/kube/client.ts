import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type CoreV1Event,
  type V1ContainerStatus,
  type V1Node,
  type V1Pod
} from "@kubernetes/client-node"
import { Duration, Effect, Layer, Redacted, Stream } from "effect"
import type { BoardNode, NodeReadiness } from "../../src/domain/Board.ts"
import { type ContainerStatus, isTerminal, type Pod, type PodEvent, type PodPhase } from "../../src/domain/Pod.ts"
import {
  Kube,
  KubeError,
  kubeOperations,
  PodAlreadyExists,
  type KubeOperation,
  type DeleteOptions,
  type RunnerPodChange,
  type RunnerPodRequest
} from "../../src/services/Kube.ts"
import { leanSpan } from "../../src/services/leanSpan.ts"
import { assembleKube } from "./assembleKube.ts"
import { nodeUnusable, parseQuantity, type PodSlot, poolCapacities } from "./capacity.ts"
import { type InformerSource, makeInformer, type WatchEnd } from "./informer.ts"
import { BOARD_LABEL, RUNNER_RESOURCE, RUNNER_SELECTOR, RUNNER_TOLERATIONS, runnerPodManifest } from "./podSpec.ts"

export interface KubeLiveOptions {
  /** YAML text of a kubeconfig (`K8S_KUBECONFIG`). Wins over `kubeconfigPath`: setting it is always deliberate. */
  readonly kubeconfigYaml?: Redacted.Redacted<string> | undefined
  /** Path of a kubeconfig file (`KUBECONFIG`). Without either, the pod's service account is used. */
  readonly kubeconfigPath?: string | undefined
  /** The kubeconfig context to use; absent: its current context. */
  readonly context?: string | undefined
  /** where runner pods live; `default` as in the original */
  readonly namespace?: string | undefined
  /** Per-request limit. The original had none, and one hung call would stall the whole scheduler cycle. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Read only the last lines of container logs for failure_info; unset reads the full log, as the original. */
  readonly logTailLines?: number | undefined
  /**
   * How long the API server keeps one pod watch open before ending it (its `timeoutSeconds`); the watch is then
   * opened again from where it was. Default 5 minutes. A watch silent for this long plus the request timeout is
   * taken for a dead connection and opened again as well.
   */
  readonly watchTimeout?: Duration.DurationInput | undefined
}

const PHASES: ReadonlySet<string> = new Set(["Pending", "Running", "Succeeded", "Failed", "Unknown"])

// Some timestamps (an event's `eventTime`, a MicroTime) are left as strings by the client's deserialiser.
const toDate = (value: unknown): Date | null => {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value
  if (typeof value === "string" && value !== "") {
    const d = new Date(value)
    return Number.isNaN(d.getTime()) ? null : d
  }
  return null
}

const toContainerStatus = (s: V1ContainerStatus): ContainerStatus => {
  const st = s.state
  if (st?.terminated !== undefined) {
    return {
      name: s.name,
      state: {
        _tag: "Terminated",
        exitCode: st.terminated.exitCode,
        reason: st.terminated.reason ?? "",
        message: st.terminated.message ?? "",
        startedAt: toDate(st.terminated.startedAt),
        finishedAt: toDate(st.terminated.finishedAt)
      }
    }
  }
  if (st?.running !== undefined) return { name: s.name, state: { _tag: "Running", startedAt: toDate(st.running.startedAt) } }
  // No state at all is what a container looks like before the kubelet reports; call it waiting.
  return {
    name: s.name,
    state: { _tag: "Waiting", reason: st?.waiting?.reason ?? "", message: st?.waiting?.message ?? "" }
  }
}

/** Our view of a pod; `now` stands in for a missing creation time, which the API server always sets. */
export const toPod = (p: V1Pod, now: Date): Pod => {
  const ready = p.status?.conditions?.find((c) => c.type === "Ready" && c.status === "True")
  const phase = p.status?.phase
  return {
    name: p.metadata?.name ?? "",
    // A pod the API server accepted but no controller touched yet has no phase; Kubernetes calls that Pending.
    phase: phase !== undefined && PHASES.has(phase) ? (phase as PodPhase) : phase === undefined ? "Pending" : "Unknown",
    nodeName: p.spec?.nodeName ?? null,
    reason: p.status?.reason ?? "",
    message: p.status?.message ?? "",
    creationTime: toDate(p.metadata?.creationTimestamp) ?? now,
    labels: { ...p.metadata?.labels },
    containers: (p.status?.containerStatuses ?? []).map(toContainerStatus),
    initContainers: (p.status?.initContainerStatuses ?? []).map(toContainerStatus),
    readyTransition: ready === undefined ? null : toDate(ready.lastTransitionTime)
  }
}

/**
 * A node as the node watch reports it: a node that lost its board label has left the watch's selection, and is
 * told as a deletion of an object without it, so it keeps its name with an empty pool (which the cache drops).
 */
const toWatchedNode = (n: V1Node): BoardNode =>
  toBoardNode(n) ?? { name: n.metadata?.name ?? "", pool: "", slots: 0, ready: "Unknown", readySince: null, unusable: "no board label", conditions: [] }

/** What capacity reads of a runner pod: its pool (pods without the label hold no pool's slot), phase and node. */
const podSlots = (pods: ReadonlyArray<Pod>): ReadonlyArray<PodSlot> =>
  pods.flatMap((pod) => {
    const pool = pod.labels[BOARD_LABEL]
    return pool === undefined ? [] : [{ pool, phase: pod.phase, nodeName: pod.nodeName }]
  })

/** Our view of a board node; undefined for a node without the board label. */
export const toBoardNode = (n: V1Node): BoardNode | undefined => {
  const pool = n.metadata?.labels?.[BOARD_LABEL]
  if (pool === undefined) return undefined
  const conditions = (n.status?.conditions ?? []).map((c) => ({
    type: c.type,
    status: c.status,
    reason: c.reason ?? "",
    message: c.message ?? "",
    lastTransitionTime: toDate(c.lastTransitionTime)
  }))
  const readyCondition = conditions.find((c) => c.type === "Ready")
  const ready: NodeReadiness = readyCondition?.status === "True" || readyCondition?.status === "False"
    ? readyCondition.status
    : "Unknown"
  const taints = (n.spec?.taints ?? []).map((t) => ({ key: t.key, value: t.value, effect: t.effect }))
  return {
    name: n.metadata?.name ?? "",
    pool,
    slots: parseQuantity(n.status?.allocatable?.[RUNNER_RESOURCE]),
    ready,
    readySince: readyCondition?.lastTransitionTime ?? null,
    unusable: nodeUnusable({ ready, unschedulable: n.spec?.unschedulable === true, taints }, RUNNER_TOLERATIONS),
    conditions
  }
}

export const toPodEvent = (e: CoreV1Event): PodEvent => {
  // New-style events carry `eventTime` (and a series) instead of the legacy first/last timestamps.
  const eventTime = toDate(e.eventTime)
  return {
    type: e.type ?? "",
    reason: e.reason ?? "",
    message: e.message ?? "",
    count: e.count ?? e.series?.count ?? 1,
    firstSeen: toDate(e.firstTimestamp) ?? eventTime,
    lastSeen: toDate(e.lastTimestamp) ?? toDate(e.series?.lastObservedTime) ?? eventTime
  }
}

/** The `Status` object the API server sends with an error, when it is one. */
const statusOf = (body: unknown): { readonly reason: string; readonly message: string } | undefined => {
  let parsed: unknown = body
  if (typeof body === "string") {
    try {
      parsed = JSON.parse(body)
    } catch {
      return undefined
    }
  }
  if (typeof parsed !== "object" || parsed === null) return undefined
  const o = parsed as { reason?: unknown; message?: unknown }
  return {
    reason: typeof o.reason === "string" ? o.reason : "",
    message: typeof o.message === "string" ? o.message : ""
  }
}

const scrub = (text: string, secret: string | undefined): string =>
  secret === undefined || secret === "" ? text : text.split(secret).join("<redacted>")

/**
 * Our own error text, built from the status code and the API server's Status, never from the client's
 * exception text (which embeds the whole response body and headers). The API server may quote the object it
 * refused, so the text is scrubbed of the request's secret too.
 */
const toKubeError = (operation: KubeOperation, e: unknown, secret?: string): KubeError => {
  if (e instanceof ApiException) {
    const status = statusOf(e.body)
    const detail = status === undefined ? "" : [status.reason, status.message].filter((s) => s !== "").join(": ")
    return new KubeError({
      operation,
      status: e.code,
      message: scrub(`${operation} failed with HTTP ${e.code}${detail === "" ? "" : `: ${detail}`}`, secret)
    })
  }
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
  return new KubeError({ operation, status: null, message: scrub(`${operation} failed: ${text}`, secret) })
}

const loadConfig = (options: KubeLiveOptions): Effect.Effect<KubeConfig, KubeError> =>
  Effect.try({
    try: () => {
      const kc = new KubeConfig()
      if (options.kubeconfigYaml !== undefined) kc.loadFromString(Redacted.value(options.kubeconfigYaml))
      else if (options.kubeconfigPath !== undefined) kc.loadFromFile(options.kubeconfigPath)
      else kc.loadFromCluster()
      if (options.context !== undefined) {
        if (kc.getContextObject(options.context) === null) throw new Error(`the kubeconfig has no context "${options.context}"`)
        kc.setCurrentContext(options.context)
      }
      if (kc.getCurrentCluster() === null) throw new Error("the kubeconfig names no current cluster")
      return kc
    },
    catch: (e) =>
      new KubeError({
        operation: "config",
        status: null,
        message: `cannot load the Kubernetes config from ${
          options.kubeconfigYaml !== undefined ? "K8S_KUBECONFIG" : options.kubeconfigPath ?? "the service account"
        }${configProblem(e)}`
      })
  })

/**
 * What went wrong loading a kubeconfig, in words that hold none of its content. A YAML parser's message quotes the
 * lines around the fault, and a kubeconfig's lines hold tokens and keys, so a parse error is told by line and column
 * only; the file system's errors (a path, a code) and client-node's shape checks (`users[0].name is missing`) name
 * no value and are quoted as they are.
 */
const configProblem = (e: unknown): string => {
  if (!(e instanceof Error)) return ""
  const mark = (e as { readonly mark?: { readonly line?: unknown; readonly column?: unknown } }).mark
  if (e.name === "YAMLException" || mark !== undefined) {
    const where = typeof mark?.line === "number" && typeof mark.column === "number" ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : ""
    return `: not valid YAML${where}`
  }
  const code = (e as { readonly code?: unknown }).code
  if (typeof code === "string" || /^(clusters|users|contexts)\[\d+\]\.[a-z.]+ is missing$/.test(e.message) || e.message.startsWith("the kubeconfig ")) {
    return `: ${e.message}`
  }
  // anything else may carry a value from the file: its kind only
  return `: ${e.name}`
}

/** Kube on a real API server through @kubernetes/client-node. */
export const KubeLive = (options: KubeLiveOptions = {}): Layer.Layer<Kube, KubeError> =>
  Layer.scoped(
    Kube,
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const runtime = yield* Effect.runtime<never>()
      const kc = yield* loadConfig(options)
      const core = kc.makeApiClient(CoreV1Api)
      const namespace = options.namespace ?? "default"
      const timeout = Duration.decode(options.requestTimeout ?? "30 seconds")
      const counts = Object.fromEntries(kubeOperations.map((op) => [op, 0])) as Record<KubeOperation, number>

      const call = <A>(operation: KubeOperation, request: () => Promise<A>, secret?: string) =>
        Effect.suspend(() => {
          counts[operation] += 1
          return Effect.tryPromise({ try: request, catch: (e) => toKubeError(operation, e, secret) })
        }).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new KubeError({ operation, status: null, message: `${operation} timed out after ${Duration.format(timeout)}` })
          })
        )

      const ignoreNotFound = <A>(effect: Effect.Effect<A, KubeError>) =>
        effect.pipe(
          Effect.asVoid,
          Effect.catchIf((e) => e.status === 404, () => Effect.void)
        )

      // The unfinished runner pods and the board nodes, each listed once and then followed by a watch (see
      // informer.ts); both informers are declared below, with the watches they run on.
      const listUnfinishedPods = Effect.gen(function*() {
        // The field selector keeps the finished pods (kept 6 h for diagnosis) out of the payload.
        const list = yield* call("listPods", () =>
          core.listNamespacedPod({
            namespace,
            labelSelector: RUNNER_SELECTOR,
            fieldSelector: "status.phase!=Succeeded,status.phase!=Failed"
          }))
        const now = new Date(yield* Effect.clockWith((c) => c.currentTimeMillis))
        return { items: list.items.map((p) => toPod(p, now)), version: list.metadata?.resourceVersion ?? "" }
      })
      const listBoardNodes = Effect.map(
        call("listNodes", () => core.listNode({ labelSelector: BOARD_LABEL })),
        (nodes) => ({ items: nodes.items.flatMap((n: V1Node) => toBoardNode(n) ?? []), version: nodes.metadata?.resourceVersion ?? "" })
      )

      // once per runner in a burst: untraced (Effect.fn takes two stack traces a call), its span without a trace
      const createRunnerPod = Effect.fnUntraced(function*(request: RunnerPodRequest) {
        const secret = Redacted.value(request.jitConfig)
        // the pod cache counts the new pod from the API server's answer on, before its watch event (informer.ts)
        pods.creating(request.name)
        const created = yield* call(
          "createPod",
          () => core.createNamespacedPod({ namespace, body: runnerPodManifest(request, namespace) }),
          secret
        ).pipe(
          Effect.onError(() => Effect.sync(() => pods.created(request.name, undefined))),
          Effect.catchIf(
            (e) => e.status === 409,
            () => Effect.fail(new PodAlreadyExists({ podName: request.name }))
          )
        )
        pods.created(request.name, toPod(created, new Date(yield* Effect.clockWith((c) => c.currentTimeMillis))))
        yield* Effect.logDebug("runner pod created").pipe(
          Effect.annotateLogs({ pod: request.name, pool: request.pool, image: request.image })
        )
      }, leanSpan("Kube.createRunnerPod"))

      const listRunnerPods = Effect.gen(function*() {
        const list = yield* call("listPods", () => core.listNamespacedPod({ namespace, labelSelector: RUNNER_SELECTOR }))
        const now = new Date(yield* Effect.clockWith((c) => c.currentTimeMillis))
        return list.items.map((p) => toPod(p, now))
      }).pipe(Effect.withSpan("Kube.listRunnerPods"))

      const killPod = Effect.fn("Kube.killPod")(function*(podName: string) {
        // A strategic merge patch touches only this field; the kubelet then ends the pod with DeadlineExceeded.
        yield* ignoreNotFound(call("patchPod", () =>
          core.patchNamespacedPod(
            { name: podName, namespace, body: { spec: { activeDeadlineSeconds: 1 } } },
            setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch)
          )))
      })

      const deletePod = Effect.fn("Kube.deletePod")(function*(podName: string, deleteOptions?: DeleteOptions) {
        const grace = deleteOptions?.gracePeriodSeconds
        yield* ignoreNotFound(call("deletePod", () =>
          core.deleteNamespacedPod({
            name: podName,
            namespace,
            ...(grace === undefined ? {} : { gracePeriodSeconds: grace })
          })))
      })

      const podEvents = Effect.fn("Kube.podEvents")(function*(podName: string) {
        const list = yield* call("listEvents", () =>
          core.listNamespacedEvent({
            namespace,
            fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${podName}`
          }))
        return list.items.map(toPodEvent)
      })

      const containerLogs = Effect.fn("Kube.containerLogs")(function*(podName: string, container: string) {
        const text = yield* call("readLog", () =>
          core.readNamespacedPodLog({
            name: podName,
            namespace,
            container,
            ...(options.logTailLines === undefined ? {} : { tailLines: options.logTailLines })
          }))
        return typeof text === "string" ? text : String(text)
      })

      const watcher = new Watch(kc)
      const watchSeconds = Math.max(1, Math.round(Duration.toSeconds(Duration.decode(options.watchTimeout ?? "5 minutes"))))
      const WATCH_TYPES: Record<string, "Added" | "Modified" | "Deleted"> = { ADDED: "Added", MODIFIED: "Modified", DELETED: "Deleted" }
      const watchQuery = (version: string, labelSelector: string) =>
        ({ labelSelector, resourceVersion: version, allowWatchBookmarks: true, timeoutSeconds: watchSeconds })

      /**
       * One watch request, opened by `open` (which calls `watcher.watch` on its path), until the API server ends it,
       * it fails, or the scope closes. Every event moves the version on (bookmarks included).
       */
      const watchSession = <A>(
        operation: "watchPods" | "watchNodes",
        open: (onEvent: (type: string, object: any) => void, onDone: (err: any) => void) => Promise<AbortController>,
        toItem: (object: any, now: Date) => A,
        handlers: Parameters<InformerSource<A>["watch"]>[1]
      ) =>
        Effect.async<WatchEnd>((resume) => {
          counts[operation] += 1
          let controller: AbortController | undefined
          let stopped = false
          let gone = false
          let refused: KubeError | undefined
          open(
            (type, object) => {
              if (type === "ERROR") {
                // The API server ends a watch whose version it no longer holds with a Status of code 410 (Expired).
                if (object?.code === 410) gone = true
                else refused = toKubeError(operation, new Error(`the watch was ended with ${object?.code ?? "an error"}: ${object?.reason ?? ""}`))
                return
              }
              const version = object?.metadata?.resourceVersion
              if (typeof version === "string" && version !== "") handlers.onVersion(version)
              const change = WATCH_TYPES[type]
              if (change !== undefined) handlers.onEvent(change, toItem(object, new Date()))
            },
            (err) => {
              if (stopped) return
              stopped = true
              if (gone || err?.statusCode === 410) resume(Effect.succeed({ _tag: "Gone" }))
              else if (refused !== undefined) resume(Effect.succeed({ _tag: "Failed", error: refused }))
              else if (err === null || err === undefined) resume(Effect.succeed({ _tag: "Ended" }))
              else {
                const status = typeof err.statusCode === "number" ? err.statusCode : null
                resume(Effect.succeed({
                  _tag: "Failed",
                  error: new KubeError({
                    operation,
                    status,
                    message: status === null ? `${operation} failed: ${err instanceof Error ? err.message : String(err)}` : `${operation} failed with HTTP ${status}`
                  })
                }))
              }
            }
          ).then(
            (c) => {
              controller = c
              if (stopped) c.abort()
              // client-node resolves once the server has answered: from here on the watch follows the cluster
              else handlers.opened()
            },
            (e) => {
              if (stopped) return
              stopped = true
              resume(Effect.succeed({ _tag: "Failed", error: toKubeError(operation, e) }))
            }
          )
          return Effect.sync(() => {
            stopped = true
            controller?.abort()
          })
        }).pipe(
          // The server ends the watch after `timeoutSeconds`; one still open well after that is a dead connection.
          Effect.timeoutTo({
            duration: Duration.sum(Duration.seconds(watchSeconds), timeout),
            onSuccess: (end): WatchEnd => end,
            onTimeout: (): WatchEnd => ({ _tag: "Ended" })
          })
        )

      // watchPods: `GET /api/v1/namespaces/<ns>/pods?watch=true`; watchNodes: `GET /api/v1/nodes?watch=true`
      const pods = makeInformer<Pod>({
        kind: "pod",
        operation: "watchPods",
        keyOf: (pod) => pod.name,
        keep: (pod) => !isTerminal(pod.phase),
        list: listUnfinishedPods,
        watch: (version, handlers) =>
          watchSession(
            "watchPods",
            (onEvent, onDone) =>
              watcher.watch(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, watchQuery(version, RUNNER_SELECTOR), onEvent, onDone),
            (object: V1Pod, now) => toPod(object, now),
            handlers
          )
      }, scope, runtime)
      const nodes = makeInformer<BoardNode>({
        kind: "node",
        operation: "watchNodes",
        keyOf: (node) => node.name,
        keep: (node) => node.pool !== "",
        list: listBoardNodes,
        watch: (version, handlers) =>
          watchSession(
            "watchNodes",
            (onEvent, onDone) => watcher.watch(`/api/v1/nodes`, watchQuery(version, BOARD_LABEL), onEvent, onDone),
            (object: V1Node) => toWatchedNode(object),
            handlers
          )
      }, scope, runtime)

      /**
       * Capacity from the informers' caches once they follow the cluster: no request at all on the scheduler's
       * path. A cache that does not (not started yet, or its watch broken) is read by a listing instead (`read`).
       */
      const capacity = Effect.map(
        Effect.all([nodes.read, pods.read], { concurrency: 2 }),
        ([boardNodes, runnerPods]) => poolCapacities(boardNodes, podSlots(runnerPods))
      ).pipe(Effect.withSpan("Kube.capacity", { captureStackTrace: false }))

      /** The board nodes, by name as a listing gives them (from the node informer's cache while it follows the cluster). */
      const listBoards = Effect.map(nodes.read, (boards) => [...boards].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))).pipe(
        Effect.withSpan("Kube.listBoards", { captureStackTrace: false })
      )

      const watchRunnerPods = Stream.asyncPush<RunnerPodChange, KubeError>((emit) =>
        Effect.acquireRelease(
          pods.subscribe(
            (change) => void emit.single(change._tag === "Listed" ? change : { _tag: change._tag, pod: change.item }),
            (error) => void emit.fail(error)
          ),
          (unsubscribe) => Effect.sync(unsubscribe)
        ), { bufferSize: "unbounded" })

      return assembleKube({
        capacity,
        createRunnerPod,
        listRunnerPods,
        killPod,
        deletePod,
        listBoards,
        podEvents,
        containerLogs,
        watchRunnerPods
      }, counts)
    })
  )
