import type { MemoryNode } from "../kube/memory.ts"

/**
 * The simulated cluster's nodes from a short text, `SIM_NODES`: comma-separated `pool=count` or
 * `pool=countxslots`, e.g. `scw-em-rv1=4` (the default: four nodes of one runner slot each) or
 * `scw-em-rv1=4x1,cloudv10x-jupiter=2x2`. Nodes are named `<pool>-<n>`.
 */
export const DEFAULT_NODES = "scw-em-rv1=4x1"

export const parseNodes = (text: string): ReadonlyArray<MemoryNode> | string => {
  const nodes: Array<MemoryNode> = []
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const m = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)=(\d+)(?:x(\d+))?$/.exec(part)
    if (m === null) return `"${part}" is not pool=count or pool=countxslots`
    const count = Number(m[3])
    const slots = m[4] === undefined ? 1 : Number(m[4])
    if (count < 1 || count > 1000 || slots < 1 || slots > 1000) return `"${part}": count and slots must be 1..1000`
    for (let i = 1; i <= count; i++) nodes.push({ name: `${m[1]}-${i}`, pool: m[1]!, slots })
  }
  return nodes.length === 0 ? "no nodes given" : nodes
}
