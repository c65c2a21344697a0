import { Context, Data, type Effect, type Either, type Redacted, type Stream } from "effect"
import type { BoardNode, BoardSlots } from "../domain/Board.ts"
import type { EntityType } from "../domain/Entity.ts"
import type { FailureInfoV2, FailureReason } from "../domain/FailureInfo.ts"
import { holdsSlot, isTerminal, type Pod, type PodEvent } from "../domain/Pod.ts"

export type { ContainerState, ContainerStatus, Pod, PodEvent, PodPhase } from "../domain/Pod.ts"

/**
 * The Kubernetes API calls the service makes, one name per request kind. Both layers count calls under these
 * names, so the cost of a scheduler cycle can be measured and exported as metrics.
 */
export type KubeOperation =
  | "listNodes"
  | "listPods"
  | "createPod"
  | "patchPod"
  | "deletePod"
  | "listEvents"
  | "readLog"
  | "watchPods"
  | "watchNodes"

export const kubeOperations: ReadonlyArray<KubeOperation> = [
  "listNodes",
  "listPods",
  "createPod",
  "patchPod",
  "deletePod",
  "listEvents",
  "readLog",
  "watchPods",
  "watchNodes"
]

/** A Kubernetes call failed: an HTTP error (`status`), or no answer at all (`status` null). */
export class KubeError extends Data.TaggedError("KubeError")<{
  readonly operation: KubeOperation | "config"
  readonly status: number | null
  readonly message: string
}> {}

/** `createRunnerPod` with a name that is already taken (HTTP 409 AlreadyExists). */
export class PodAlreadyExists extends Data.TaggedError("PodAlreadyExists")<{ readonly podName: string }> {}

/**
 * Runner slots of one pool (the `riseproject.dev/board` node label). `total` is the nodes' allocatable
 * `riseproject.com/runner`, `usable` the part on usable boards (Ready, not cordoned, no refusing taint); `active`
 * counts the pool's runner pods that are Pending or Running. `available` is the usable slots minus the pods on
 * usable boards and the pods waiting for a node, and goes negative when pods outnumber slots (a board was lost,
 * or pods are stuck Pending). `boards` lists the pool's nodes, by name, each with its busy slots.
 */
export interface PoolCapacity {
  readonly pool: string
  readonly total: number
  readonly usable: number
  readonly active: number
  readonly available: number
  readonly boards: ReadonlyArray<BoardSlots>
}

/** Everything needed to start one runner. */
export interface RunnerPodRequest {
  /** the pod name, which is also the GitHub runner name */
  readonly name: string
  /** the only secret a pod carries; it goes into the pod's env and nowhere else */
  readonly jitConfig: Redacted.Redacted<string>
  readonly image: string
  readonly pool: string
  readonly entity: { readonly type: EntityType; readonly id: number; readonly name: string }
  /** the GitHub App installation the runner was registered through, as a label, so an operator can select an installation's pods */
  readonly installationId: number
  /**
   * Nodes the pod must not be placed on (quarantined boards), as a required node affinity on `metadata.name`:
   * the pod avoids them without any write to the nodes themselves.
   */
  readonly avoidNodes?: ReadonlyArray<string> | undefined
}

/** How a pod is deleted. */
export interface DeleteOptions {
  /**
   * 0 removes the pod object at once, without waiting for the kubelet to confirm: the only way to delete a pod
   * whose node is gone, since a lost kubelet confirms nothing. Absent: the pod's own grace period.
   */
  readonly gracePeriodSeconds?: number | undefined
}

/**
 * What the runner pod watch reports. `Listed` comes after every listing the watch starts from (its first, and
 * again when the API server no longer holds the changes since the last one seen): changes may have been missed
 * then, so whoever keeps state from the watch should read the cluster again.
 */
export type RunnerPodChange =
  | { readonly _tag: "Added" | "Modified" | "Deleted"; readonly pod: Pod }
  | { readonly _tag: "Listed" }

/** A change after which a board slot may be free: a pod that ended or is gone, or a fresh listing. */
export const mayFreeSlot = (change: RunnerPodChange): boolean =>
  change._tag === "Listed" || change._tag === "Deleted" ||
  (change._tag === "Modified" && !holdsSlot(change.pod.phase))

/**
 * A change after which a board slot is free and nothing is wrong: a pod that succeeded, or one deleted after it
 * finished (its end was reported before). A failed pod (which the board quarantine counts), a pod gone while it
 * held its slot and a fresh listing are not: they call for the full cycle at once.
 */
export const endedCleanly = (change: RunnerPodChange): boolean =>
  (change._tag === "Modified" && change.pod.phase === "Succeeded") ||
  (change._tag === "Deleted" && isTerminal(change.pod.phase))

/**
 * One cluster's answer to a read made on every cluster: what it returned, or why it could not answer. A reading
 * of several clusters keeps each failure beside the other clusters' results, so a cluster whose API is down is
 * never mistaken for a cluster without pods.
 */
export interface ClusterReading<A> {
  readonly cluster: string
  readonly result: Either.Either<A, KubeError>
}

export interface KubeShape {
  /** The cluster a pool's boards live in (`DEFAULT_CLUSTER` on a layer of one cluster). */
  readonly clusterOf: (pool: string) => string
  /** `capacity` of every cluster, each answer apart (one reading on a layer of one cluster). */
  readonly capacityByCluster: Effect.Effect<ReadonlyArray<ClusterReading<ReadonlyMap<string, PoolCapacity>>>>
  /** `listRunnerPods` of every cluster, each answer apart: the only safe listing when clusters can fail alone. */
  readonly runnerPodsByCluster: Effect.Effect<ReadonlyArray<ClusterReading<ReadonlyArray<Pod>>>>
  /**
   * Free slots of every pool that has a node or a runner pod. It reads what a node listing and a pod listing would
   * show, and always counts the pods this layer created (read-your-writes), so a cycle never sees its own new pod's
   * slot as free; the live layer lists once and then follows the nodes and pods by watch, listing again only while
   * a watch is not open. Over several clusters: the pools of the clusters that answered, failing only when none
   * did (for the operator pages; the scheduler reads `capacityByCluster`).
   */
  readonly capacity: Effect.Effect<ReadonlyMap<string, PoolCapacity>, KubeError>
  /** Creates the runner pod. The JIT config appears in no error this returns. */
  readonly createRunnerPod: (request: RunnerPodRequest) => Effect.Effect<void, KubeError | PodAlreadyExists>
  /**
   * All runner pods (label `app=rise-riscv-runner`) in the namespace, whatever their phase. Over several
   * clusters it fails when any cluster fails: a partial listing would pass for pods that are gone.
   */
  readonly listRunnerPods: Effect.Effect<ReadonlyArray<Pod>, KubeError>
  /**
   * Asks the kubelet to stop the pod by setting `spec.activeDeadlineSeconds` to 1; it then fails with
   * `DeadlineExceeded` and stays listed until deleted. A missing pod counts as done.
   */
  readonly killPod: (podName: string) => Effect.Effect<void, KubeError>
  /**
   * A missing pod counts as done. Without `gracePeriodSeconds: 0` a pod on an unreachable node stays listed
   * (terminating) until its kubelet comes back, as on a real cluster.
   */
  readonly deletePod: (podName: string, options?: DeleteOptions) => Effect.Effect<void, KubeError>
  /**
   * Every board node with its readiness, conditions and whether it can take a runner: one node listing, or (the
   * live layer, once its node watch follows the cluster) what that watch keeps.
   */
  readonly listBoards: Effect.Effect<ReadonlyArray<BoardNode>, KubeError>
  /** The pod's events, as the API returns them. */
  readonly podEvents: (podName: string) => Effect.Effect<ReadonlyArray<PodEvent>, KubeError>
  /** A container's log. */
  readonly containerLogs: (podName: string, container: string) => Effect.Effect<string, KubeError>
  /**
   * `failure_info` v2 for the pod: its status, every container's end, their logs, the events. Best effort: it
   * never fails, and what could not be collected is described in `collect_error`. It never holds the pod's env.
   */
  readonly collectFailureInfo: (pod: Pod, reason: FailureReason) => Effect.Effect<FailureInfoV2>
  /**
   * Changes of runner pods (label `app=rise-riscv-runner`) from the moment the stream runs: a listing (then
   * `Listed`), and from its resourceVersion on, every pod added, modified or deleted. A watch the API server ends
   * or drops is opened again from the last resourceVersion seen, so nothing is lost; when that version is too old
   * (410 Gone) the pods are listed again. It fails only when the pods cannot be listed. A change arrives after
   * `capacity` counts it, so a scheduler woken by a pod's end reads the freed slot.
   */
  readonly watchRunnerPods: Stream.Stream<RunnerPodChange, KubeError>
  /** API calls made so far, by operation (for metrics and for tests that count the cost of a cycle). */
  readonly callCounts: Effect.Effect<Readonly<Record<KubeOperation, number>>>
}

export class Kube extends Context.Tag("riscv-runner/Kube")<Kube, KubeShape>() {}
