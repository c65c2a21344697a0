import { FetchHttpClient } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { createServer } from "node:http"
import { DEFAULT_CLUSTER, type RunnerConfig } from "../../src/domain/RunnerConfig.ts"
import { GithubMemory } from "../github/memory.ts"
import { KubeMemoryClusters } from "../kube/memoryClusters.ts"
import { nodesOfCluster, type SimCluster as SimClusterLayout, simClusterSpecs, withSimClusters } from "./cluster.ts"
import { SimControlServer } from "./controlApi.ts"
import { SimDemoLoad } from "./demo.ts"
import { describeBoardFault } from "./boardFaults.ts"
import type { DevSecret } from "./devSecrets.ts"
import { type LineWriter, SimEventPrinter } from "./printer.ts"
import { simSettingsConfig } from "./settings.ts"
import { HttpWebhookTransport } from "./webhookTransport.ts"
import { SimWorldLive } from "./world.ts"

/*
 * `--simulate` as main.ts wires it: the in-memory GitHub and cluster replace the real ones, and in role `all` the
 * world closes the loop over real HTTP to our own webhook port, with its control API on SIM_PORT.
 */

/**
 * The simulated cluster, from `SIM_NODES` (and `SIM_SPEED` for the image pull). A constant, so that the scheduler
 * and the world, which both name it, share one instance in a launch. With `cluster/` prefixes it is one
 * in-memory cluster per name plus the default one, behind `combineClusters` as main.ts puts real clusters.
 */
export const SimCluster = Layer.unwrapEffect(
  Effect.map(simSettingsConfig, (s) => KubeMemoryClusters(simClusterSpecs(s.cluster, { pullDuration: Duration.millis(5_000 / s.speed) })))
)

/**
 * The runner config of a simulation: the one given, with the simulated clusters as its `clusters`
 * (`withSimClusters`). Fails with the `ConfigError` of a bad SIM_* setting, or the text of a cluster problem.
 */
export const simulatedRunnerConfig = (config: RunnerConfig) =>
  Effect.flatMap(simSettingsConfig, (s) => {
    const simulated = withSimClusters(config, s.cluster)
    return typeof simulated === "string" ? Effect.fail(simulated) : Effect.succeed(simulated)
  })

export interface SimulationInput {
  readonly role: string
  /** the webhook's port (PORT), where the simulated GitHub delivers */
  readonly port: number
  readonly schedulerPort: number
  readonly webhookSecret: Redacted.Redacted<string>
  readonly traceSecret: Option.Option<Redacted.Redacted<string>>
  /** the secrets generated for this run (printed once, here) */
  readonly devSecrets: ReadonlyArray<DevSecret>
  readonly runnerConfig: RunnerConfig
  readonly apps: { readonly orgAppId: number; readonly personalAppId: number }
  readonly demo: boolean
  /** LOG_FORMAT: the event lines are text, or JSON log entries like every other stdout line */
  readonly logFormat: "json" | "pretty"
  /** how the event lines are written: the same writer as the start-up banner */
  readonly printLine: LineWriter
}

const describeNodes = (nodes: ReadonlyArray<{ readonly pool: string | null; readonly slots: number }>) => {
  const byPool = new Map<string, { count: number; slots: number }>()
  for (const n of nodes) {
    const entry = byPool.get(n.pool ?? "-") ?? { count: 0, slots: 0 }
    entry.count += 1
    entry.slots += n.slots
    byPool.set(n.pool ?? "-", entry)
  }
  return [...byPool].map(([pool, e]) => `${e.count} × ${pool} (${e.slots} slot${e.slots === 1 ? "" : "s"})`).join(", ")
}

/** `4 × scw-em-rv1 (4 slots)`, or with clusters `lab: 2 × cloudv10x-jupiter (2 slots); default: 4 × ...` */
const describeClusters = (cluster: SimClusterLayout) =>
  cluster.clusters.length === 0
    ? describeNodes(cluster.nodes)
    : [DEFAULT_CLUSTER, ...cluster.clusters.map((c) => c.name)].flatMap((name) => {
      const nodes = nodesOfCluster(cluster, name === DEFAULT_CLUSTER ? null : name)
      return nodes.length === 0 ? [] : [`${name}: ${describeNodes(nodes)}`]
    }).join("; ")

/**
 * The simulation's features, the banner lines that say where to look, and the control API's port (so a port in
 * use can be named as SIM_PORT). Fails with the `ConfigError` of a bad SIM_* setting.
 */
export const simulation = (input: SimulationInput) =>
  Effect.gen(function*() {
    const settings = yield* simSettingsConfig
    const generated = (variable: DevSecret["variable"]) => input.devSecrets.find((s) => s.variable === variable)
    // A generated secret is shown on a terminal (pretty), where a developer copies it. JSON lines go to a log store,
    // where no secret may land, even a throwaway one: there the banner says how to choose one instead.
    const shown = (dev: DevSecret) =>
      input.logFormat === "pretty" ? Redacted.value(dev.value) : `<generated; not logged with LOG_FORMAT=json: set ${dev.variable} to choose one>`
    const trace = Option.match(input.traceSecret, {
      onNone: () => "closed (TRACE_API_SECRET is unset)",
      onSome: () => {
        const dev = generated("TRACE_API_SECRET")
        return dev === undefined
          ? `curl -H "Authorization: Bearer $TRACE_API_SECRET" http://localhost:${input.port}/trace/job/<job id>`
          : `curl -H "Authorization: Bearer ${shown(dev)}" http://localhost:${input.port}/trace/job/<job id>   (secret generated for this run)`
      }
    })
    const webhookDev = generated("GHAPP_WEBHOOK_SECRET")
    const banner: Array<string> = []
    if (input.role !== "webhook") {
      banner.push(`usage:     http://localhost:${input.schedulerPort}/usage   (active jobs and workers; /jobs and /workers for history)`)
    }
    if (input.role !== "scheduler") banner.push(`trace API: ${trace}`)
    if (input.role !== "all") {
      banner.push(`simulated GitHub and cluster: the closed loop (jobs that run) needs role "all"`)
      return { layer: Layer.empty, banner, controlPort: Option.none<number>() }
    }
    banner.push(
      `control:   http://localhost:${settings.port}/   (POST /sim/jobs, GET /sim/state, POST /sim/faults)`,
      `simulated: ${describeClusters(settings.cluster)}; world speed × ${settings.speed} (waits and run times below are simulated seconds); GitHub signs deliveries with ${
        webhookDev === undefined ? "GHAPP_WEBHOOK_SECRET" : `a secret generated for this run: ${shown(webhookDev)}`
      }`,
      `try:       curl -s localhost:${settings.port}/sim/jobs -H 'content-type: application/json' -d '{"owner":"acme","repo":"acme/app","durationSeconds":60,"count":10}'`
    )
    if (settings.boardFaults.length > 0) banner.push(`faulty:    ${settings.boardFaults.map(describeBoardFault).join("; ")}`)
    if (input.demo) banner.push(`demo:      a steady mixed load from acme, globex, initech and alice starts in a moment`)

    const world = SimWorldLive({ speed: settings.speed, runnerConfig: input.runnerConfig, apps: input.apps, boardFaults: settings.boardFaults }).pipe(
      Layer.provide(Layer.mergeAll(
        GithubMemory,
        SimCluster,
        HttpWebhookTransport({ url: `http://127.0.0.1:${input.port}/`, secret: input.webhookSecret }).pipe(Layer.provide(FetchHttpClient.layer))
      ))
    )
    const layer = Layer.mergeAll(
      SimControlServer.pipe(Layer.provide(NodeHttpServer.layer(createServer, { port: settings.port }))),
      SimEventPrinter(input.logFormat, input.printLine),
      input.demo ? SimDemoLoad() : Layer.empty
    ).pipe(Layer.provide(world))
    return { layer, banner, controlPort: Option.some(settings.port) }
  })
