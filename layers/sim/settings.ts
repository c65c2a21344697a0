import { Config, ConfigError, Either } from "effect"
import type { MemoryNode } from "../kube/memory.ts"
import type { BoardFault } from "./boardFaults.ts"
import { DEFAULT_NODES, parseCluster, type SimCluster, type SimClusterSpec } from "./cluster.ts"

/** What `--simulate` reads from the environment besides the service's own settings. */
export interface SimSettings {
  /** the control API's port (`SIM_PORT`, default 8082) */
  readonly port: number
  /** simulated seconds per real second for the world's own delays (`SIM_SPEED`, default 10) */
  readonly speed: number
  /** the cluster (`SIM_NODES`, default `scw-em-rv1=4x1`: four nodes of one runner slot) */
  readonly nodes: ReadonlyArray<MemoryNode>
  /** the faulty boards among them (`SIM_NODES`' `node:fault` parts; none by default) */
  readonly boardFaults: ReadonlyArray<BoardFault>
  /** the simulated clusters besides the default one (`SIM_NODES`' `cluster/` prefixes; none by default) */
  readonly clusters: ReadonlyArray<SimClusterSpec>
  /** nodes, faults and clusters together, as `parseCluster` gave them */
  readonly cluster: SimCluster
}

export const simSettingsConfig: Config.Config<SimSettings> = Config.all({
  port: Config.integer("SIM_PORT").pipe(
    Config.validate({ message: "must be a port number (1-65535)", validation: (n) => n > 0 && n <= 65535 }),
    Config.withDefault(8082)
  ),
  speed: Config.number("SIM_SPEED").pipe(
    Config.validate({ message: "must be a number from 0.1 to 1000", validation: (n) => n >= 0.1 && n <= 1000 }),
    Config.withDefault(10)
  ),
  cluster: Config.string("SIM_NODES").pipe(
    Config.withDefault(DEFAULT_NODES),
    Config.mapOrFail((text) => {
      const cluster = parseCluster(text)
      return typeof cluster === "string" ? Either.left(ConfigError.InvalidData(["SIM_NODES"], cluster)) : Either.right(cluster)
    })
  )
}).pipe(Config.map(({ cluster, ...rest }) => ({ ...rest, nodes: cluster.nodes, boardFaults: cluster.boardFaults, clusters: cluster.clusters, cluster })))
