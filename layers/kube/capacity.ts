import { holdsSlot, type PodPhase } from "../../src/domain/Pod.ts"
import type { PoolCapacity } from "../../src/services/Kube.ts"

/** A node as the capacity count sees it: its board pool and its allocatable runner slots. */
export interface NodeSlots {
  readonly pool: string
  readonly slots: number
}

/** A runner pod as the capacity count sees it. */
export interface PodSlot {
  readonly pool: string
  readonly phase: PodPhase
}

/**
 * Slots per pool from one snapshot of nodes and pods. Pools that have pods but no node still appear (with a
 * negative `available`), so the scheduler sees the overcommitment instead of an absent pool.
 */
export const poolCapacities = (
  nodes: Iterable<NodeSlots>,
  pods: Iterable<PodSlot>
): ReadonlyMap<string, PoolCapacity> => {
  const total = new Map<string, number>()
  const active = new Map<string, number>()
  for (const n of nodes) total.set(n.pool, (total.get(n.pool) ?? 0) + n.slots)
  for (const p of pods) if (holdsSlot(p.phase)) active.set(p.pool, (active.get(p.pool) ?? 0) + 1)
  const result = new Map<string, PoolCapacity>()
  for (const pool of [...new Set([...total.keys(), ...active.keys()])].sort()) {
    const t = total.get(pool) ?? 0
    const a = active.get(pool) ?? 0
    result.set(pool, { pool, total: t, active: a, available: t - a })
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
