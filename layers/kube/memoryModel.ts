import type { Duration } from "effect"
import type { NodeReadiness } from "../../src/domain/Board.ts"
import type { Pod, PodPhase } from "../../src/domain/Pod.ts"
import type { KubeOperation, RunnerPodRequest } from "../../src/services/Kube.ts"
import type { Taint } from "./capacity.ts"

/** What the memory cluster shows its users: its pods, their phase moves, its nodes, and the switches and faults. */

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
  /** the Ready condition; absent means "True" */
  readonly ready?: NodeReadiness | undefined
  /** when Ready last changed, ms since the epoch; absent means the node was always so */
  readonly readySince?: number | undefined
  /** cordoned (`spec.unschedulable`) */
  readonly unschedulable?: boolean | undefined
  readonly taints?: ReadonlyArray<Taint> | undefined
}

/** What a test or the simulation changes about a node's health; absent fields stay as they are. */
export interface NodeHealthChange {
  readonly ready?: NodeReadiness
  readonly unschedulable?: boolean
  readonly taints?: ReadonlyArray<Taint>
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

export interface KubeMemoryOptions {
  readonly namespace?: string
  /** Period of the automatic scheduler/kubelet pass, on Effect's Clock; null leaves it to `reconcile`. Default 1 s. */
  readonly tick?: Duration.DurationInput | null
  /** From binding to the container start (the image pull). Default 0: a placed pod runs in the same pass. */
  readonly pullDuration?: Duration.DurationInput
  readonly nodes?: ReadonlyArray<MemoryNode>
}
