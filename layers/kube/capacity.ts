import type { BoardNode, BoardSlots, NodeReadiness } from "../../src/domain/Board.ts"
import { holdsSlot, type PodPhase } from "../../src/domain/Pod.ts"
import type { PoolCapacity } from "../../src/services/Kube.ts"

/** A node taint, as in `spec.taints`. */
export interface Taint {
  readonly key: string
  readonly value?: string | undefined
  readonly effect: string
}

/** A pod toleration, as in `spec.tolerations`. */
export interface Toleration {
  readonly key?: string | undefined
  readonly operator?: "Exists" | "Equal" | undefined
  readonly value?: string | undefined
  readonly effect?: string | undefined
}

/** Kubernetes' matching rule: an empty key with `Exists` tolerates everything, an empty effect every effect. */
const tolerates = (t: Toleration, taint: Taint): boolean => {
  if (t.effect !== undefined && t.effect !== "" && t.effect !== taint.effect) return false
  if (t.operator === "Exists") return t.key === undefined || t.key === "" || t.key === taint.key
  return t.key === taint.key && (t.value ?? "") === (taint.value ?? "")
}

/** What the usability rule reads of a node. */
export interface NodeState {
  readonly ready: NodeReadiness
  readonly unschedulable: boolean
  readonly taints: ReadonlyArray<Taint>
}

/**
 * Can a runner pod be placed on the node? Null when it can, else why not. A node counts when it is Ready, not
 * cordoned, and has no `NoSchedule`/`NoExecute` taint the runner pod does not tolerate (`PreferNoSchedule` is a
 * preference, not a refusal). Without this, runners were sent to boards that cannot run them and waited out the
 * pending timeout.
 */
export const nodeUnusable = (node: NodeState, tolerations: ReadonlyArray<Toleration>): string | null => {
  if (node.ready !== "True") return `not ready (${node.ready})`
  if (node.unschedulable) return "cordoned"
  const refusing = node.taints.find((taint) =>
    (taint.effect === "NoSchedule" || taint.effect === "NoExecute") && !tolerations.some((t) => tolerates(t, taint))
  )
  if (refusing !== undefined) {
    return `taint ${refusing.key}${refusing.value === undefined || refusing.value === "" ? "" : `=${refusing.value}`}:${refusing.effect}`
  }
  return null
}

/** A runner pod as the capacity count sees it. */
export interface PodSlot {
  readonly pool: string
  readonly phase: PodPhase
  /** null while the pod waits for a node */
  readonly nodeName: string | null
}

/**
 * Slots per pool from one snapshot of nodes and pods. `total` is every board's slots, `usable` only the usable
 * boards', and `available` is what a new runner can still get: the usable slots minus the pods placed on usable
 * boards and the pods still waiting for a node (which will take a usable slot when they get one). A pod on an
 * unusable board holds a slot there and none elsewhere. Pools that have pods but no node still appear (with a
 * negative `available`), so the scheduler sees the overcommitment instead of an absent pool.
 */
export const poolCapacities = (
  nodes: Iterable<BoardNode>,
  pods: Iterable<PodSlot>
): ReadonlyMap<string, PoolCapacity> => {
  const busy = new Map<string, number>()
  const waiting = new Map<string, number>()
  const active = new Map<string, number>()
  for (const p of pods) {
    if (!holdsSlot(p.phase)) continue
    active.set(p.pool, (active.get(p.pool) ?? 0) + 1)
    if (p.nodeName === null) waiting.set(p.pool, (waiting.get(p.pool) ?? 0) + 1)
    else busy.set(p.nodeName, (busy.get(p.nodeName) ?? 0) + 1)
  }
  const boards = new Map<string, Array<BoardSlots>>()
  for (const n of nodes) boards.set(n.pool, [...(boards.get(n.pool) ?? []), { ...n, busy: busy.get(n.name) ?? 0 }])
  const result = new Map<string, PoolCapacity>()
  for (const pool of [...new Set([...boards.keys(), ...active.keys()])].sort()) {
    const list = (boards.get(pool) ?? []).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const usableBoards = list.filter((b) => b.unusable === null)
    const total = list.reduce((sum, b) => sum + b.slots, 0)
    const usable = usableBoards.reduce((sum, b) => sum + b.slots, 0)
    const taken = usableBoards.reduce((sum, b) => sum + b.busy, 0) + (waiting.get(pool) ?? 0)
    result.set(pool, { pool, total, usable, active: active.get(pool) ?? 0, available: usable - taken, boards: list })
  }
  return result
}

const DECIMAL: Record<string, number> = { "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 }
const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 }

/**
 * A Kubernetes quantity as a whole number of units. Extended resources are integers, normally written plainly
 * ("4"), but the API may normalise large values with a suffix. Anything unreadable counts as 0 slots, which
 * fails safe: no pod is placed on a node we do not understand.
 */
export const parseQuantity = (q: string | number | undefined): number => {
  if (q === undefined) return 0
  if (typeof q === "number") return Number.isFinite(q) ? Math.floor(q) : 0
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$/.exec(q.trim())
  if (m === null) return 0
  const value = Number(m[1])
  const suffix = m[2] ?? ""
  if (suffix === "m") return Math.floor(value / 1000)
  const factor = BINARY[suffix] ?? DECIMAL[suffix] ?? 0
  return Math.floor(value * factor)
}
