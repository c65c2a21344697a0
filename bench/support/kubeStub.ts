import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Context, Effect, Layer, Redacted } from "effect"
import { Pod as PodModel } from "kubernetes-models/v1/Pod"
import type { KubeOperation } from "../../src/services/Kube.ts"
import { KubeLive, type KubeLiveOptions } from "../../layers/kube/client.ts"
import { avoidedNodes, BOARD_LABEL, isValidLabelValue, RUNNER_RESOURCE } from "../../layers/kube/podSpec.ts"
import type { NodeHealthChange } from "../../layers/kube/memory.ts"

/**
 * A small stand-in for the Kubernetes API server on localhost, for testing KubeLive through the real client
 * library. It keeps nodes, pods, events and logs as JSON, answers the nine requests the layer makes with the
 * API server's shapes and Status errors (the pod and node watches too: resourceVersions, replay from one, 410 Expired),
 * validates created pods against the Kubernetes schema, records every request, and plays a minimal kubelet when
 * asked (`startStubPod`: bind and start; `finishStubPod`: the runner exits; and it honours a kill). The contract
 * tests drive it through `test/support/kubeStubHarness.ts`; `bench:latency` through its pod listeners.
 */

export const STUB_TOKEN = "stub-token"

export type Json = Record<string, any>

export interface RecordedRequest {
  readonly operation: KubeOperation | "unknown"
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly contentType: string
  readonly body: string
}

export interface StubFault {
  readonly operation: KubeOperation
  readonly status: number
  /** Answer with a Status message quoting the request body, like an API server quoting the object it refused. */
  readonly echoBody?: boolean
  /** Never answer (the connection is dropped when the stub stops). */
  readonly hang?: boolean
}

/** What the stub watches: runner pods (namespaced) and nodes (cluster-scoped, `namespace` ""). */
type WatchedKind = "pods" | "nodes"

/** A watch the stub serves: its response stays open and gets one JSON line per matching change. */
interface StubWatcher {
  readonly kind: WatchedKind
  readonly namespace: string
  readonly labelSelector: string | null
  readonly res: ServerResponse
}

/**
 * What the stub's pod watches need: the current resourceVersion (one counter for every change, as etcd's), the
 * changes since `oldest` (a watch from an older version gets 410 Expired, as after a compaction), the open watches.
 */
export interface StubWatchState {
  version: number
  oldest: number
  readonly history: Array<{
    readonly kind: WatchedKind
    readonly version: number
    readonly type: string
    readonly object: string
    readonly namespace: string
    readonly labels: Record<string, string>
    /** the labels before this change (null: the object is new), to tell a watch whose selection it left or entered */
    readonly previous: Record<string, string> | null
  }>
  /** every stored object's labels as of its last change, by kind/namespace/name */
  readonly labelsOf: Map<string, Record<string, string>>
  readonly watchers: Set<StubWatcher>
}

export interface KubeStubShape {
  readonly url: string
  readonly kubeconfig: string
  readonly nodes: Map<string, Json>
  readonly pods: Map<string, Json>
  readonly events: Array<Json>
  /** `pod/container` -> text */
  readonly logs: Map<string, string>
  readonly requests: Array<RecordedRequest>
  readonly faults: Array<StubFault>
  readonly watch: StubWatchState
  /** called after every change of a stored pod, as the watches get it (a benchmark's clock and kubelet) */
  readonly listeners: Set<(type: "ADDED" | "MODIFIED" | "DELETED", pod: Json) => void>
}

export class KubeStub extends Context.Tag("bench/KubeStub")<KubeStub, KubeStubShape>() {}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/

const isoSeconds = (d: Date = new Date()) => d.toISOString().replace(/\.\d{3}Z$/, "Z")

const statusBody = (code: number, reason: string, message: string): Json => ({
  kind: "Status",
  apiVersion: "v1",
  metadata: {},
  status: "Failure",
  message,
  reason,
  code
})

const REASONS: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  404: "NotFound",
  409: "AlreadyExists",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable"
}

const matchesLabels = (labels: Record<string, string>, selector: string | null): boolean => {
  if (selector === null || selector === "") return true
  return selector.split(",").every((term) => {
    const t = term.trim()
    let m: RegExpExecArray | null
    if ((m = /^([^!=]+)!=(.*)$/.exec(t)) !== null) return labels[m[1]!] !== m[2]
    if ((m = /^([^!=]+)==?(.*)$/.exec(t)) !== null) return labels[m[1]!] === m[2]
    if (t.startsWith("!")) return !(t.slice(1) in labels)
    return t in labels
  })
}

const fieldOf = (obj: Json, path: string): string => {
  let cur: any = obj
  for (const part of path.split(".")) cur = cur?.[part]
  return cur === undefined || cur === null ? "" : String(cur)
}

const matchesFields = (obj: Json, selector: string | null): boolean => {
  if (selector === null || selector === "") return true
  return selector.split(",").every((term) => {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term.trim())
    if (m === null) return false
    const value = fieldOf(obj, m[1]!)
    return m[2] === "!=" ? value !== m[3] : value === m[3]
  })
}

const listAt = (resourceVersion: string, kind: string, items: Array<Json>) => ({ kind, apiVersion: "v1", metadata: { resourceVersion }, items })
const list = (kind: string, items: Array<Json>) => listAt("1", kind, items)

const operationOf = (method: string, parts: ReadonlyArray<string>, query: URLSearchParams): KubeOperation | "unknown" => {
  // parts: ["api","v1","nodes"] or ["api","v1","namespaces",ns,"pods"|"events",name?,"log"?]
  if (method === "GET" && parts.length === 3 && parts[2] === "nodes") return query.get("watch") === "true" ? "watchNodes" : "listNodes"
  if (parts[2] !== "namespaces") return "unknown"
  const [, , , , kind, name, sub] = parts
  if (kind === "events" && method === "GET" && name === undefined) return "listEvents"
  if (kind !== "pods") return "unknown"
  if (name === undefined) {
    if (method === "GET") return query.get("watch") === "true" ? "watchPods" : "listPods"
    return method === "POST" ? "createPod" : "unknown"
  }
  if (sub === "log" && method === "GET") return "readLog"
  if (sub !== undefined) return "unknown"
  return method === "PATCH" ? "patchPod" : method === "DELETE" ? "deletePod" : "unknown"
}

const watchLine = (type: string, object: string) => `{"type":${JSON.stringify(type)},"object":${object}}\n`

/**
 * Records a change of a pod, the way the API server does for every write: a new resourceVersion on the object,
 * and the change sent to every open watch it matches. Everything that edits a stored pod calls this after.
 */
export const podChanged = (stub: KubeStubShape, type: "ADDED" | "MODIFIED" | "DELETED", pod: Json) => {
  objectChanged(stub, "pods", type, pod)
  for (const listener of stub.listeners) listener(type, pod)
}

/** The same for a node: every edit of a stored node (added, its health changed) is a change its watches get. */
export const nodeChanged = (stub: KubeStubShape, type: "ADDED" | "MODIFIED" | "DELETED", node: Json) =>
  objectChanged(stub, "nodes", type, node)

const objectChanged = (stub: KubeStubShape, kind: WatchedKind, type: string, obj: Json) => {
  const w = stub.watch
  w.version += 1
  obj.metadata.resourceVersion = String(w.version)
  const object = JSON.stringify(obj)
  const labels = { ...obj.metadata.labels }
  const namespace = obj.metadata.namespace ?? ""
  const key = `${kind}/${namespace}/${obj.metadata.name}`
  const previous = w.labelsOf.get(key) ?? null
  if (type === "DELETED") w.labelsOf.delete(key)
  else w.labelsOf.set(key, labels)
  const change = { kind, version: w.version, type, object, namespace, labels, previous }
  w.history.push(change)
  for (const watcher of w.watchers) {
    const seen = watcher.kind === kind && watcher.namespace === namespace ? seenAs(change, watcher.labelSelector) : undefined
    if (seen !== undefined) watcher.res.write(watchLine(seen, object))
  }
}

/**
 * How a watch with this label selector sees a change, as the API server tells it: an object that comes into the
 * selection is ADDED, one that leaves it DELETED (with its new labels), one outside it not at all.
 */
const seenAs = (
  change: { readonly type: string; readonly labels: Record<string, string>; readonly previous: Record<string, string> | null },
  selector: string | null
): string | undefined => {
  const now = matchesLabels(change.labels, selector)
  const before = change.previous !== null && matchesLabels(change.previous, selector)
  if (change.type !== "MODIFIED") return now ? change.type : undefined
  return now ? (before ? "MODIFIED" : "ADDED") : before ? "DELETED" : undefined
}

/** Ends every open watch, as the API server does at a watch's timeout or when it restarts. */
export const endWatches = (stub: KubeStubShape) => {
  for (const watcher of stub.watch.watchers) watcher.res.end()
  stub.watch.watchers.clear()
}

/**
 * Compacts the history and ends every open watch with 410 Expired, as an API server does to a watch that fell
 * behind a compaction: the watcher must list again.
 */
export const expireWatches = (stub: KubeStubShape) => {
  compactWatchHistory(stub)
  const expired = JSON.stringify(statusBody(410, "Expired", "The resourceVersion for the provided watch is too old."))
  for (const watcher of stub.watch.watchers) watcher.res.end(watchLine("ERROR", expired))
  stub.watch.watchers.clear()
}

/** Forgets the changes so far (a compaction): a watch from any version seen until now gets 410 Expired. */
export const compactWatchHistory = (stub: KubeStubShape) => {
  stub.watch.history.length = 0
  stub.watch.oldest = stub.watch.version + 1
}

/** Serves a watch from `resourceVersion`: the stored changes after it, then each new one, until closed. */
const serveWatch = (stub: KubeStubShape, kind: WatchedKind, namespace: string, url: URL, req: IncomingMessage, res: ServerResponse) => {
  const labelSelector = url.searchParams.get("labelSelector")
  const from = url.searchParams.get("resourceVersion")
  const since = from === null || from === "" ? stub.watch.version : Number(from)
  res.writeHead(200, { "content-type": "application/json" })
  // as the API server does: the watch's headers go out at once, before any change, so the client knows it is open
  res.flushHeaders()
  if (!Number.isFinite(since) || since + 1 < stub.watch.oldest) {
    const status = statusBody(410, "Expired", `too old resource version: ${from} (${stub.watch.oldest - 1})`)
    res.end(watchLine("ERROR", JSON.stringify(status)))
    return
  }
  for (const change of stub.watch.history) {
    const seen = change.kind === kind && change.version > since && change.namespace === namespace ? seenAs(change, labelSelector) : undefined
    if (seen !== undefined) res.write(watchLine(seen, change.object))
  }
  const watcher: StubWatcher = { kind, namespace, labelSelector, res }
  stub.watch.watchers.add(watcher)
  const seconds = Number(url.searchParams.get("timeoutSeconds") ?? "0")
  const timer = seconds > 0 ? setTimeout(() => res.end(), seconds * 1000) : undefined
  timer?.unref()
  req.on("close", () => {
    if (timer !== undefined) clearTimeout(timer)
    stub.watch.watchers.delete(watcher)
  })
}

/** Adds or bumps an event the way the kubelet's recorder aggregates repeats. */
export const recordStubEvent = (stub: KubeStubShape, pod: string, type: string, reason: string, message: string) => {
  const now = isoSeconds()
  const same = stub.events.find((e) =>
    e.involvedObject.name === pod && e.type === type && e.reason === reason && e.message === message
  )
  if (same !== undefined) {
    same.count += 1
    same.lastTimestamp = now
    return
  }
  stub.events.push({
    metadata: { name: `${pod}.${stub.events.length.toString(16)}`, namespace: "default" },
    involvedObject: { kind: "Pod", name: pod, namespace: "default" },
    type,
    reason,
    message,
    count: 1,
    firstTimestamp: now,
    lastTimestamp: now,
    source: { component: "kubelet" }
  })
}

const terminateRunner = (pod: Json, exitCode: number, reason: string) => {
  const finishedAt = isoSeconds()
  pod.status.containerStatuses = (pod.status.containerStatuses ?? []).map((c: Json) => ({
    ...c,
    ready: false,
    state: c.state?.running !== undefined
      ? { terminated: { exitCode, reason, startedAt: c.state.running.startedAt, finishedAt } }
      : c.state
  }))
  pod.status.conditions = [{ type: "Ready", status: "False", lastTransitionTime: finishedAt }]
}

const readyOf = (node: Json | undefined): string =>
  node?.status?.conditions?.find((c: Json) => c.type === "Ready")?.status ?? "Unknown"

/** A node whose status is Unknown stopped reporting: its kubelet is gone, and acts on nothing. */
const kubeletGone = (stub: KubeStubShape, nodeName: string | undefined): boolean =>
  nodeName !== undefined && readyOf(stub.nodes.get(nodeName)) === "Unknown"

/** Could the scheduler place a runner pod (which tolerates no taint) on this node? */
const schedulable = (node: Json): boolean =>
  readyOf(node) === "True" && node.spec?.unschedulable !== true &&
  !(node.spec?.taints ?? []).some((t: Json) => t.effect === "NoSchedule" || t.effect === "NoExecute")

/** The kubelet's answer to a kill: a pod it admitted fails at once with DeadlineExceeded. */
const enforceDeadline = (stub: KubeStubShape, pod: Json) => {
  const phase = pod.status?.phase
  if ((phase !== "Pending" && phase !== "Running") || pod.spec.nodeName === undefined) return
  if (kubeletGone(stub, pod.spec.nodeName)) return
  if ((pod.spec.activeDeadlineSeconds ?? Infinity) > 1) return
  const name = pod.metadata.name
  const message = "Pod was active on the node longer than the specified deadline"
  if (phase === "Running") recordStubEvent(stub, name, "Normal", "Killing", "Stopping container runner")
  recordStubEvent(stub, name, "Warning", "DeadlineExceeded", message)
  terminateRunner(pod, 137, "Error")
  pod.status.phase = "Failed"
  pod.status.reason = "DeadlineExceeded"
  pod.status.message = message
}

const validatePod = (body: Json, namespace: string): string | undefined => {
  try {
    new PodModel(body as any).validate()
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
  const name = body.metadata?.name
  if (typeof name !== "string" || name.length > 253 || !NAME.test(name)) return `metadata.name: Invalid value: "${name}"`
  if (body.metadata?.namespace !== undefined && body.metadata.namespace !== namespace) {
    return "metadata.namespace: does not match the namespace of the request"
  }
  for (const [k, v] of Object.entries<string>(body.metadata?.labels ?? {})) {
    if (!LABEL_KEY.test(k) || k.length > 317) return `metadata.labels: Invalid value: "${k}"`
    if (!isValidLabelValue(v)) return `metadata.labels: Invalid value: "${v}"`
  }
  for (const [k, v] of Object.entries<string>(body.spec?.nodeSelector ?? {})) {
    if (!isValidLabelValue(v)) return `spec.nodeSelector[${k}]: Invalid value: "${v}"`
  }
  return undefined
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const handle = async (stub: KubeStubShape, req: IncomingMessage, res: ServerResponse) => {
  const url = new URL(req.url ?? "/", "http://stub")
  const method = req.method ?? "GET"
  const parts = url.pathname.split("/").filter((p) => p !== "")
  const body = await readBody(req)
  const operation = operationOf(method, parts, url.searchParams)
  stub.requests.push({
    operation,
    method,
    path: url.pathname,
    query: url.searchParams,
    contentType: String(req.headers["content-type"] ?? ""),
    body
  })
  const json = (code: number, payload: unknown) => {
    res.writeHead(code, { "content-type": "application/json" })
    res.end(JSON.stringify(payload))
  }
  const fail = (code: number, message: string) => json(code, statusBody(code, REASONS[code] ?? "Unknown", message))

  if (req.headers.authorization !== `Bearer ${STUB_TOKEN}`) return fail(401, "Unauthorized")
  const faultAt = stub.faults.findIndex((f) => f.operation === operation)
  if (faultAt >= 0) {
    const [fault] = stub.faults.splice(faultAt, 1)
    if (fault!.hang === true) return
    return fail(fault!.status, fault!.echoBody === true ? `the server refused the object: ${body}` : "injected fault")
  }

  const namespace = parts[3] ?? ""
  const name = parts[5] ?? ""
  const podKey = `${namespace}/${name}`
  switch (operation) {
    case "watchNodes":
      return serveWatch(stub, "nodes", "", url, req, res)
    case "listNodes":
      return json(
        200,
        listAt(String(stub.watch.version), "NodeList", [...stub.nodes.values()].filter((n) => matchesLabels(n.metadata.labels ?? {}, url.searchParams.get("labelSelector"))))
      )
    case "watchPods":
      return serveWatch(stub, "pods", namespace, url, req, res)
    case "listPods":
      return json(
        200,
        listAt(String(stub.watch.version),
          "PodList",
          [...stub.pods.values()].filter((p) =>
            p.metadata.namespace === namespace &&
            matchesLabels(p.metadata.labels ?? {}, url.searchParams.get("labelSelector")) &&
            matchesFields(p, url.searchParams.get("fieldSelector"))
          )
        )
      )
    case "createPod": {
      let pod: Json
      try {
        pod = JSON.parse(body)
      } catch {
        return fail(400, "the body is not JSON")
      }
      const invalid = validatePod(pod, namespace)
      if (invalid !== undefined) return fail(422, `Pod "${pod.metadata?.name}" is invalid: ${invalid}`)
      const key = `${namespace}/${pod.metadata.name}`
      if (stub.pods.has(key)) return fail(409, `pods "${pod.metadata.name}" already exists`)
      pod.metadata = { ...pod.metadata, namespace, uid: `uid-${stub.pods.size}`, creationTimestamp: isoSeconds() }
      pod.status = { phase: "Pending", qosClass: "BestEffort" }
      stub.pods.set(key, pod)
      podChanged(stub, "ADDED", pod)
      return json(201, pod)
    }
    case "patchPod": {
      const pod = stub.pods.get(podKey)
      if (pod === undefined) return fail(404, `pods "${name}" not found`)
      const type = String(req.headers["content-type"] ?? "")
      if (!type.startsWith("application/strategic-merge-patch+json") && !type.startsWith("application/merge-patch+json")) {
        return fail(415, `the stub accepts merge patches only, not ${type}`)
      }
      const patch = JSON.parse(body) as Json
      const deadline = patch.spec?.activeDeadlineSeconds
      if (deadline !== undefined) {
        const current = pod.spec.activeDeadlineSeconds
        if (typeof deadline !== "number" || deadline < 1 || (current !== undefined && deadline > current)) {
          return fail(422, `Pod "${name}" is invalid: spec.activeDeadlineSeconds: Invalid value: ${deadline}`)
        }
        pod.spec.activeDeadlineSeconds = deadline
        enforceDeadline(stub, pod)
      }
      podChanged(stub, "MODIFIED", pod)
      return json(200, pod)
    }
    case "deletePod": {
      const pod = stub.pods.get(podKey)
      if (pod === undefined) return fail(404, `pods "${name}" not found`)
      // A graceful deletion waits for the kubelet's confirmation, which a lost kubelet never sends; the API server
      // deletes a finished pod at once, whatever the grace asked.
      const finished = pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed"
      if (url.searchParams.get("gracePeriodSeconds") !== "0" && !finished && kubeletGone(stub, pod.spec.nodeName)) {
        pod.metadata.deletionTimestamp = isoSeconds()
        pod.metadata.deletionGracePeriodSeconds = 30
        return json(200, pod)
      }
      stub.pods.delete(podKey)
      podChanged(stub, "DELETED", pod)
      return json(200, pod)
    }
    case "listEvents":
      return json(200, list("EventList", stub.events.filter((e) => matchesFields(e, url.searchParams.get("fieldSelector")))))
    case "readLog": {
      const pod = stub.pods.get(podKey)
      if (pod === undefined) return fail(404, `pods "${name}" not found`)
      const container = url.searchParams.get("container") ?? "runner"
      const status = (pod.status.containerStatuses ?? []).find((c: Json) => c.name === container)
      if (status === undefined || status.state?.waiting !== undefined) {
        return fail(400, `container "${container}" in pod "${name}" is waiting to start: ContainerCreating`)
      }
      let text = stub.logs.get(`${name}/${container}`) ?? ""
      const tail = url.searchParams.get("tailLines")
      if (tail !== null) text = text.split("\n").filter((l, i, all) => i < all.length - 1 || l !== "").slice(-Number(tail)).join("\n")
      res.writeHead(200, { "content-type": "text/plain" })
      return res.end(text)
    }
    default:
      return fail(404, `the stub does not serve ${method} ${url.pathname}`)
  }
}

const kubeconfigFor = (url: string) =>
  [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: stub",
    "  cluster:",
    `    server: ${url}`,
    // client-node refuses plain HTTP unless TLS checks are off; the stub has no certificate.
    "    insecure-skip-tls-verify: true",
    "users:",
    "- name: stub",
    "  user:",
    `    token: ${STUB_TOKEN}`,
    "contexts:",
    "- name: stub",
    "  context:",
    "    cluster: stub",
    "    user: stub",
    "current-context: stub",
    ""
  ].join("\n")

/** The stub server, listening on a free localhost port for the life of the scope. */
export const KubeStubLive: Layer.Layer<KubeStub> = Layer.scoped(
  KubeStub,
  Effect.gen(function*() {
    const state = {
      nodes: new Map(),
      pods: new Map(),
      events: [],
      logs: new Map(),
      requests: [],
      faults: [],
      watch: { version: 1, oldest: 1, history: [], watchers: new Set<StubWatcher>(), labelsOf: new Map() },
      listeners: new Set<(type: "ADDED" | "MODIFIED" | "DELETED", pod: Json) => void>()
    }
    let stub: KubeStubShape | undefined
    const server = createServer((req, res) => {
      handle(stub!, req, res).catch((e) => {
        res.writeHead(500, { "content-type": "application/json" })
        res.end(JSON.stringify(statusBody(500, "InternalError", String(e))))
      })
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
      }),
      () =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const url = `http://127.0.0.1:${port}`
    stub = { ...state, url, kubeconfig: kubeconfigFor(url) }
    return stub
  })
)

/** KubeLive talking to the stub. */
export const kubeLiveOnStub = (options: Omit<KubeLiveOptions, "kubeconfigYaml" | "kubeconfigPath"> = {}) =>
  Layer.unwrapEffect(
    Effect.map(KubeStub, (stub) => KubeLive({ ...options, kubeconfigYaml: Redacted.make(stub.kubeconfig) }))
  ).pipe(Layer.orDie)

/** Adds a node the way a device plugin reports one: board label and allocatable runner slots. */
export const addStubNode = (stub: KubeStubShape, name: string, pool: string | null, slots: number) => {
  const existed = stub.nodes.has(name)
  const node: Json = {
    metadata: {
      name,
      labels: { "kubernetes.io/hostname": name, ...(pool === null ? {} : { [BOARD_LABEL]: pool }) }
    },
    spec: {},
    status: {
      allocatable: { cpu: "8", memory: "16Gi", ...(slots > 0 ? { [RUNNER_RESOURCE]: String(slots) } : {}) },
      conditions: [readyCondition("True")]
    }
  }
  stub.nodes.set(name, node)
  nodeChanged(stub, existed ? "MODIFIED" : "ADDED", node)
}

const READY_REASONS: Record<string, readonly [string, string]> = {
  True: ["KubeletReady", "kubelet is posting ready status"],
  False: ["KubeletNotReady", "container runtime network not ready"],
  Unknown: ["NodeStatusUnknown", "Kubelet stopped posting node status."]
}

const readyCondition = (status: string): Json => ({
  type: "Ready",
  status,
  reason: READY_REASONS[status]![0],
  message: READY_REASONS[status]![1],
  lastHeartbeatTime: isoSeconds(),
  lastTransitionTime: isoSeconds()
})

/** What the node controller and `kubectl cordon`/`taint` do to a node's object. */
export const setStubNodeHealth = (stub: KubeStubShape, name: string, change: NodeHealthChange) => {
  const node = stub.nodes.get(name)
  if (node === undefined) return
  if (change.ready !== undefined && change.ready !== readyOf(node)) {
    node.status.conditions = [
      ...(node.status.conditions ?? []).filter((c: Json) => c.type !== "Ready"),
      readyCondition(change.ready)
    ]
  }
  if (change.unschedulable !== undefined) node.spec.unschedulable = change.unschedulable
  if (change.taints !== undefined) node.spec.taints = change.taints.map((t) => ({ ...t }))
  nodeChanged(stub, "MODIFIED", node)
}

const findPod = (stub: KubeStubShape, name: string): Json | undefined =>
  [...stub.pods.values()].find((p) => p.metadata.name === name)

/**
 * The scheduler and kubelet for one Pending pod: bound to a schedulable node of its pool that its affinity allows,
 * its container started, Running, and the change sent to the watches. Says why not when it cannot.
 */
export const startStubPod = (stub: KubeStubShape, name: string): string | undefined => {
  const pod = findPod(stub, name)
  if (pod === undefined) return `no pod ${name}`
  const pool = pod.spec.nodeSelector?.[BOARD_LABEL]
  const avoid = avoidedNodes(pod)
  const node = [...stub.nodes.values()].find((n) =>
    n.metadata.labels[BOARD_LABEL] === pool && schedulable(n) && !avoid.includes(n.metadata.name)
  )
  if (node === undefined) return `no node for pool ${pool}`
  const now = isoSeconds()
  const nodeName: string = node.metadata.name
  pod.spec.nodeName = nodeName
  recordStubEvent(stub, name, "Normal", "Scheduled", `Successfully assigned default/${name} to ${nodeName}`)
  recordStubEvent(stub, name, "Normal", "Pulling", `Pulling image "${pod.spec.containers[0].image}"`)
  recordStubEvent(stub, name, "Normal", "Pulled", `Successfully pulled image "${pod.spec.containers[0].image}"`)
  recordStubEvent(stub, name, "Normal", "Created", "Created container: runner")
  recordStubEvent(stub, name, "Normal", "Started", "Started container runner")
  pod.status = {
    ...pod.status,
    phase: "Running",
    startTime: now,
    conditions: [{ type: "Ready", status: "True", lastTransitionTime: now }],
    containerStatuses: [{ name: "runner", ready: true, restartCount: 0, image: pod.spec.containers[0].image, imageID: "", state: { running: { startedAt: now } } }]
  }
  podChanged(stub, "MODIFIED", pod)
  return undefined
}

/** The runner in the pod exits with this code: Succeeded on 0, Failed otherwise, and the watches are told. */
export const finishStubPod = (stub: KubeStubShape, name: string, exitCode: number): string | undefined => {
  const pod = findPod(stub, name)
  if (pod === undefined) return `no pod ${name}`
  terminateRunner(pod, exitCode, exitCode === 0 ? "Completed" : "Error")
  pod.status.phase = exitCode === 0 ? "Succeeded" : "Failed"
  podChanged(stub, "MODIFIED", pod)
  return undefined
}
