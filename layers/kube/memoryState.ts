import { Clock, Duration, Effect } from "effect"
import { RUNNER_CONTAINER, type ContainerState, type PodPhase } from "../../src/domain/Pod.ts"
import { kubeOperations, type KubeOperation, type RunnerPodRequest } from "../../src/services/Kube.ts"
import type { BoardNode, NodeCondition } from "../../src/domain/Board.ts"
import { nodeUnusable } from "./capacity.ts"
import type { KubeMemoryOptions, MemoryNode, MemoryPod, PodChange, PodTarget } from "./memoryModel.ts"
import { makePhaseChangeFeed, type PhaseChangeFeed } from "./memoryPhaseFeed.ts"
import { RUNNER_TOLERATIONS } from "./podSpec.ts"

/**
 * The memory cluster's state (nodes, pods, their events, the switches and armed faults) and the primitives every
 * part changes it through: views of a pod, the event recorder, phase moves and their announcement.
 */

export interface EventRecord {
  type: string
  reason: string
  message: string
  count: number
  first: number
  last: number
}

export interface PodRecord {
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
  /** nodes the pod's affinity keeps it off */
  readonly avoid: ReadonlySet<string>
  /** deleted while its node was unreachable: it stays listed until the node's kubelet confirms */
  terminating: boolean
}

export interface ArmedFault {
  operation: KubeOperation
  status: number
  message: string
  remaining: number
}

export interface ClusterState {
  readonly namespace: string
  readonly pullMs: number
  readonly nodes: Map<string, MemoryNode>
  readonly pods: Map<string, PodRecord>
  readonly events: Map<string, Array<EventRecord>>
  readonly failingPulls: Set<string>
  readonly held: Set<string>
  readonly faults: Array<ArmedFault>
  readonly counts: Record<KubeOperation, number>
  readonly feed: PhaseChangeFeed
  nextSeq: number
}

export const makeClusterState = (options: KubeMemoryOptions) =>
  Effect.gen(function*() {
    const namespace = options.namespace ?? "default"
    const pullMs = Duration.toMillis(Duration.decode(options.pullDuration ?? 0))
    const nodes = new Map<string, MemoryNode>()
    for (const n of options.nodes ?? []) nodes.set(n.name, n)
    const pods = new Map<string, PodRecord>()
    const events = new Map<string, Array<EventRecord>>()
    const failingPulls = new Set<string>()
    const held = new Set<string>()
    const faults: Array<ArmedFault> = []
    const counts = Object.fromEntries(kubeOperations.map((op) => [op, 0])) as Record<KubeOperation, number>
    const feed = yield* makePhaseChangeFeed
    const state: ClusterState = {
      namespace,
      pullMs,
      nodes,
      pods,
      events,
      failingPulls,
      held,
      faults,
      counts,
      feed,
      nextSeq: 0
    }
    return state
  })

export const targets = (set: ReadonlySet<string>, kind: "pod" | "pool", key: string) => set.has(`${kind}:${key}`)
export const targetKey = (t: PodTarget) => ("pod" in t ? `pod:${t.pod}` : `pool:${t.pool}`)

// --- views ---------------------------------------------------------------------------------------------

const READY_CONDITION: Record<string, { readonly reason: string; readonly message: string }> = {
  True: { reason: "KubeletReady", message: "kubelet is posting ready status" },
  False: { reason: "KubeletNotReady", message: "container runtime network not ready" },
  Unknown: { reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status." }
}

/** The node's Ready condition, as the API server would show it. */
const nodeConditions = (n: MemoryNode): ReadonlyArray<NodeCondition> => {
  const status = n.ready ?? "True"
  return [{ type: "Ready", status, ...READY_CONDITION[status]!, lastTransitionTime: new Date(n.readySince ?? 0) }]
}

/** A labelled node as the service shows it; undefined for a node outside every pool. */
export const toBoardNode = (n: MemoryNode): BoardNode | undefined =>
  n.pool === null ? undefined : {
    name: n.name,
    pool: n.pool,
    slots: n.slots,
    ready: n.ready ?? "True",
    readySince: new Date(n.readySince ?? 0),
    unusable: nodeUnusable(
      { ready: n.ready ?? "True", unschedulable: n.unschedulable ?? false, taints: n.taints ?? [] },
      RUNNER_TOLERATIONS
    ),
    conditions: nodeConditions(n)
  }

/**
 * Is the node's kubelet there to act on its pods? A node whose status is Unknown stopped reporting: its kubelet
 * (or the whole board) is gone, and nothing it held moves any more. One reporting NotReady (False) still runs.
 */
export const kubeletUp = (s: ClusterState, nodeName: string): boolean => s.nodes.get(nodeName)?.ready !== "Unknown"

// --- views (pods) ---------------------------------------------------------------------------------------------

export const toPod = (name: string, r: PodRecord): MemoryPod => ({
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

export const sortedPods = (s: ClusterState) => [...s.pods.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

// --- recording ------------------------------------------------------------------------------------------

/** Like the kubelet's event recorder, a repeat of the same event bumps its count instead of adding one. */
export const record = (
  s: ClusterState,
  pod: string,
  now: number,
  type: "Normal" | "Warning",
  reason: string,
  message: string
) => {
  const list = s.events.get(pod) ?? []
  const same = list.find((e) => e.type === type && e.reason === reason && e.message === message)
  if (same !== undefined) {
    same.count += 1
    same.last = now
  } else list.push({ type, reason, message, count: 1, first: now, last: now })
  s.events.set(pod, list)
}

export type Changes = Array<PodChange>

export const setPhase = (changes: Changes, name: string, r: PodRecord, now: number, to: PodPhase) => {
  const from = r.phase
  if (from === to) return
  r.phase = to
  changes.push({ name, from, to, at: new Date(now), pod: toPod(name, r) })
}

/** Runs a state change at the current Clock time, then announces its phase moves. */
export const mutate = <A>(s: ClusterState, f: (now: number, changes: Changes) => A) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const changes: Changes = []
    const result = f(now, changes)
    // announced after the state is consistent, so handlers may call back into the cluster
    yield* s.feed.announce(changes)
    return result
  })
