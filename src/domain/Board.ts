/**
 * A board node as the scheduler sees it: which pool it serves, how many runner slots it offers, and whether it
 * can take a runner now. Read from the cluster's node listing; no I/O here.
 */

/** One condition of a node's status, as the kubelet (or the node controller, for a lost kubelet) reports it. */
export interface NodeCondition {
  readonly type: string
  /** "True", "False" or "Unknown" */
  readonly status: string
  readonly reason: string
  readonly message: string
  readonly lastTransitionTime: Date | null
}

/** The Ready condition's status; a node that reports none is "Unknown". */
export type NodeReadiness = "True" | "False" | "Unknown"

export interface BoardNode {
  readonly name: string
  /** the `riseproject.dev/board` label */
  readonly pool: string
  /** allocatable `riseproject.com/runner` */
  readonly slots: number
  readonly ready: NodeReadiness
  /** when the Ready condition last changed; null when the node reports no Ready condition */
  readonly readySince: Date | null
  /**
   * Null when a runner pod can be placed on the node; otherwise why not, in words an operator reads on the
   * dashboard: `not ready (Unknown)`, `cordoned`, `taint gpu=broken:NoSchedule`.
   */
  readonly unusable: string | null
  readonly conditions: ReadonlyArray<NodeCondition>
}

/** Slots of one board at one capacity reading: the node, plus the runner pods placed on it that hold a slot. */
export interface BoardSlots extends BoardNode {
  readonly busy: number
}

/**
 * How long the node has been unreachable (Ready is False or Unknown) at `now`, in ms; 0 for a Ready node. A node
 * without a transition time counts as unreachable since `since` is unknown, so from now (0): never fail blind.
 */
export const unreachableForMs = (node: Pick<BoardNode, "ready" | "readySince">, now: number): number =>
  node.ready === "True" || node.readySince === null ? 0 : Math.max(0, now - node.readySince.getTime())
