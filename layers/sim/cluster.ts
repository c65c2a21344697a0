import { clusterProblems, DEFAULT_CLUSTER, type RunnerConfig } from "../../src/domain/RunnerConfig.ts"
import type { KubeMemoryOptions, MemoryNode } from "../kube/memory.ts"
import type { MemoryClusterSpec } from "../kube/memoryClusters.ts"
import { type BoardFault, parseBoardFault } from "./boardFaults.ts"

/**
 * The simulated cluster's nodes from a short text, `SIM_NODES`: comma-separated `pool=count` or
 * `pool=countxslots`, e.g. `scw-em-rv1=4` (the default: four nodes of one runner slot each) or
 * `scw-em-rv1=4x1,cloudv10x-jupiter=2x2`. Nodes are named `<pool>-<n>`. A part `<node>:<fault>` makes a node
 * named by an earlier part faulty (see `boardFaults.ts`): `scw-em-rv1=4,scw-em-rv1-2:noregister,scw-em-rv1-3:notready@10m+20m`.
 *
 * A `cluster/` prefix puts a pool's nodes in a simulated cluster of that name instead of the default one, as the
 * runner config's `clusters` does for real ones: `lab/cloudv10x-jupiter=2,scw-em-rv1=4` is two clusters, `lab`
 * with two nodes and the default cluster with four. A pool lives in one cluster; every part of it names the same.
 */
export const DEFAULT_NODES = "scw-em-rv1=4x1"

/** A named simulated cluster besides the default one, and the pools whose nodes it holds. */
export interface SimClusterSpec {
  readonly name: string
  readonly pools: readonly [string, ...Array<string>]
}

export interface SimCluster {
  readonly nodes: ReadonlyArray<MemoryNode>
  readonly boardFaults: ReadonlyArray<BoardFault>
  /** the clusters besides the default one, in the order SIM_NODES names them; empty: one cluster */
  readonly clusters: ReadonlyArray<SimClusterSpec>
}

/** the runner config's rule for cluster names (`ClusterConfig`); the unprefixed parts are `DEFAULT_CLUSTER`'s */
const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/
const DEFAULT_NAME = DEFAULT_CLUSTER

/** The nodes, the faulty boards and the clusters, or a string that says what is wrong. */
export const parseCluster = (text: string): SimCluster | string => {
  const nodes: Array<MemoryNode> = []
  const boardFaults: Array<BoardFault> = []
  // pool -> the cluster it is in (DEFAULT_NAME for an unprefixed part)
  const poolCluster = new Map<string, string>()
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
    const m = /^(?:([^/=]*)\/)?([a-z0-9]([-a-z0-9.]*[a-z0-9])?)=(\d+)(?:x(\d+))?$/.exec(part)
    if (m === null) {
      return /^[^=]*\/[^=]*:/.test(part)
        ? `"${part}": a fault names its node alone (node:fault), without the cluster`
        : `"${part}" is not [cluster/]pool=count, [cluster/]pool=countxslots or node:fault`
    }
    const cluster = m[1] ?? DEFAULT_NAME
    if (m[1] !== undefined && !CLUSTER_NAME.test(cluster)) return `"${part}": cluster names are lower-case letters, digits and -`
    if (m[1] === DEFAULT_NAME) return `"${part}": parts without a cluster/ prefix are the default cluster; "${DEFAULT_NAME}/" is not needed`
    const pool = m[2]!
    const owner = poolCluster.get(pool)
    if (owner !== undefined && owner !== cluster) return `"${part}": pool ${pool} is already in cluster ${owner}; a pool lives in one cluster`
    poolCluster.set(pool, cluster)
    const count = Number(m[4])
    const slots = m[5] === undefined ? 1 : Number(m[5])
    if (count < 1 || count > 1000 || slots < 1 || slots > 1000) return `"${part}": count and slots must be 1..1000`
    for (let i = 1; i <= count; i++) {
      const name = `${pool}-${i}`
      if (nodes.some((n) => n.name === name)) return `"${part}": node ${name} is named twice`
      nodes.push({ name, pool, slots })
    }
  }
  if (nodes.length === 0) return "no nodes given"
  const clusters = new Map<string, [string, ...Array<string>]>()
  for (const [pool, cluster] of poolCluster) {
    if (cluster === DEFAULT_NAME) continue
    const pools = clusters.get(cluster)
    if (pools === undefined) clusters.set(cluster, [pool])
    else pools.push(pool)
  }
  return { nodes, boardFaults, clusters: [...clusters].map(([name, pools]) => ({ name, pools })) }
}

/** The nodes alone (faults ignored), or what is wrong. */
export const parseNodes = (text: string): ReadonlyArray<MemoryNode> | string => {
  const cluster = parseCluster(text)
  return typeof cluster === "string" ? cluster : cluster.nodes
}

/** The nodes of one cluster: those of its pools, or for the default cluster those of the pools no cluster names. */
export const nodesOfCluster = (cluster: SimCluster, name: string | null): ReadonlyArray<MemoryNode> => {
  const named = new Set(cluster.clusters.flatMap((c) => c.pools))
  const pools = name === null ? null : new Set(cluster.clusters.find((c) => c.name === name)?.pools ?? [])
  return cluster.nodes.filter((n) => (pools === null ? !named.has(n.pool ?? "") : pools.has(n.pool ?? "")))
}

/**
 * The simulated clusters as `KubeMemoryClusters` builds them: the default cluster (always, as main.ts always
 * has one, possibly without nodes) and each named one, with their nodes and the shared `options`.
 */
export const simClusterSpecs = (cluster: SimCluster, options: Omit<KubeMemoryOptions, "nodes">): ReadonlyArray<MemoryClusterSpec> => [
  { name: DEFAULT_CLUSTER, pools: [], options: { ...options, nodes: nodesOfCluster(cluster, null) } },
  ...cluster.clusters.map((c) => ({ name: c.name, pools: c.pools, options: { ...options, nodes: nodesOfCluster(cluster, c.name) } }))
]

/**
 * The runner config a simulation runs with: its `clusters` are the simulated ones (the real ones' kubeconfigs
 * mean nothing under --simulate), checked as a real config's are; or what is wrong, naming SIM_NODES.
 */
export const withSimClusters = (config: RunnerConfig, cluster: SimCluster): RunnerConfig | string => {
  const simulated: RunnerConfig = {
    ...config,
    clusters: cluster.clusters.map((c) => ({ name: c.name, kubeconfig: SIMULATED_KUBECONFIG, pools: c.pools }))
  }
  const problems = clusterProblems(simulated)
  return problems.length === 0 ? simulated : `SIM_NODES: ${problems.map((p) => p.replace(/^clusters\.\d+\.\w+: /, "")).join("; ")}`
}

/** what a simulated cluster's entry names as its kubeconfig: there is no file */
export const SIMULATED_KUBECONFIG = "(simulated)"
