import type { MemoryNode } from "../kube/memory.ts"
import { type BoardFault, parseBoardFault } from "./boardFaults.ts"

/**
 * The simulated cluster's nodes from a short text, `SIM_NODES`: comma-separated `pool=count` or
 * `pool=countxslots`, e.g. `scw-em-rv1=4` (the default: four nodes of one runner slot each) or
 * `scw-em-rv1=4x1,cloudv10x-jupiter=2x2`. Nodes are named `<pool>-<n>`. A part `<node>:<fault>` makes a node
 * named by an earlier part faulty (see `boardFaults.ts`): `scw-em-rv1=4,scw-em-rv1-2:noregister,scw-em-rv1-3:notready@10m+20m`.
 */
export const DEFAULT_NODES = "scw-em-rv1=4x1"

export interface SimCluster {
  readonly nodes: ReadonlyArray<MemoryNode>
  readonly boardFaults: ReadonlyArray<BoardFault>
}

/** The nodes and the faulty boards, or a string that says what is wrong. */
export const parseCluster = (text: string): SimCluster | string => {
  const nodes: Array<MemoryNode> = []
  const boardFaults: Array<BoardFault> = []
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const fault = /^([a-z0-9][-a-z0-9.]*):(.*)$/.exec(part)
    if (fault !== null) {
      const node = fault[1]!
      if (!nodes.some((n) => n.name === node)) return `"${part}": no node ${node} before it (nodes are named <pool>-<n>)`
      if (boardFaults.some((f) => f.node === node)) return `"${part}": ${node} already has a fault`
      const parsed = parseBoardFault(node, fault[2]!)
      if (typeof parsed === "string") return parsed
      boardFaults.push(parsed)
      continue
    }
    const m = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)=(\d+)(?:x(\d+))?$/.exec(part)
    if (m === null) return `"${part}" is not pool=count, pool=countxslots or node:fault`
    const count = Number(m[3])
    const slots = m[4] === undefined ? 1 : Number(m[4])
    if (count < 1 || count > 1000 || slots < 1 || slots > 1000) return `"${part}": count and slots must be 1..1000`
    for (let i = 1; i <= count; i++) {
      const name = `${m[1]}-${i}`
      if (nodes.some((n) => n.name === name)) return `"${part}": node ${name} is named twice`
      nodes.push({ name, pool: m[1]!, slots })
    }
  }
  return nodes.length === 0 ? "no nodes given" : { nodes, boardFaults }
}

/** The nodes alone (faults ignored), or what is wrong. */
export const parseNodes = (text: string): ReadonlyArray<MemoryNode> | string => {
  const cluster = parseCluster(text)
  return typeof cluster === "string" ? cluster : cluster.nodes
}
