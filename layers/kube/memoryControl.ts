import { Clock, Context, Effect, type Queue, type Scope, type Stream } from "effect"
import type { KubeOperation } from "../../src/services/Kube.ts"
import { finishPod, removeNode } from "./memoryKubelet.ts"
import type { Fault, MemoryNode, MemoryPod, NodeHealthChange, NodeLoss, PodChange, PodTarget } from "./memoryModel.ts"
import { type ClusterState, sortedPods, targetKey, toPod } from "./memoryState.ts"

/** The memory cluster's control handle: what a test or the simulation does to the cluster from outside. */

export interface KubeMemoryControlShape {
  /** Adds a node (or replaces the one with that name). */
  readonly addNode: (name: string, pool: string | null, slots: number) => Effect.Effect<void>
  /** The node disappears; its pods end as `podsBecome` says (default Failed, reason NodeLost). */
  readonly removeNode: (name: string, podsBecome?: NodeLoss) => Effect.Effect<void>
  readonly nodes: Effect.Effect<ReadonlyArray<MemoryNode>>
  /**
   * Changes a node's readiness, cordon or taints (what is not given stays). A change of readiness is stamped with
   * the current Clock time. An `Unknown` node's kubelet is gone: its pods stop moving and a graceful deletion of
   * one never completes. False when there is no such node.
   */
  readonly setNodeHealth: (name: string, change: NodeHealthChange) => Effect.Effect<boolean>
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

/** The control handle over a cluster's state; `reconcile` is the layer's own pass, shared with its tick. */
export const memoryControl = (s: ClusterState, reconcile: Effect.Effect<void>) => {
  const { nodes, pods, failingPulls, held, faults, counts, feed } = s
  return KubeMemoryControl.of({
    addNode: (name, pool, slots) => Effect.sync(() => void nodes.set(name, { name, pool, slots })),
    removeNode: (nodeName, podsBecome) => removeNode(s, nodeName, podsBecome),
    nodes: Effect.sync(() => [...nodes.values()]),
    setNodeHealth: (name, change) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const node = nodes.get(name)
        if (node === undefined) return false
        const readyChanged = change.ready !== undefined && change.ready !== (node.ready ?? "True")
        nodes.set(name, {
          ...node,
          ...change,
          ...(readyChanged ? { readySince: now } : {})
        })
        return true
      }),
    reconcile,
    finishPod: (name, exitCode) => finishPod(s, name, exitCode),
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
    pods: Effect.sync(() => sortedPods(s).map(([name, r]) => toPod(name, r))),
    callCounts: Effect.sync(() => ({ ...counts })),
    changes: feed.changes,
    subscribe: feed.subscribe,
    onPhaseChange: feed.onPhaseChange
  })
}
