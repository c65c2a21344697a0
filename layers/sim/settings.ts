import { Config, ConfigError, Either } from "effect"
import type { MemoryNode } from "../kube/memory.ts"
import { DEFAULT_NODES, parseNodes } from "./cluster.ts"

/** What `--simulate` reads from the environment besides the service's own settings. */
export interface SimSettings {
  /** the control API's port (`SIM_PORT`, default 8082) */
  readonly port: number
  /** simulated seconds per real second for the world's own delays (`SIM_SPEED`, default 10) */
  readonly speed: number
  /** the cluster (`SIM_NODES`, default `scw-em-rv1=4x1`: four nodes of one runner slot) */
  readonly nodes: ReadonlyArray<MemoryNode>
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
  nodes: Config.string("SIM_NODES").pipe(
    Config.withDefault(DEFAULT_NODES),
    Config.mapOrFail((text) => {
      const nodes = parseNodes(text)
      return typeof nodes === "string" ? Either.left(ConfigError.InvalidData(["SIM_NODES"], nodes)) : Either.right(nodes)
    })
  )
})
