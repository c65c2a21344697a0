/**
 * `riscv_runner_cluster_up{cluster}` through a real scrape: the scheduler program (its loop and its port on a real
 * socket) over two in-memory clusters combined as `KubeClusters` combines them, the default one and `lab`. While
 * the lab's API refuses every call, its series reads 0 beside the default's 1 (the gauge comes from the cycle's own
 * readings; `/metrics` makes no Kubernetes call); once the lab answers again, it reads 1.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { HttpServer } from "@effect/platform"
import { Context, Duration, Effect, Layer, Logger, LogLevel, Schema } from "effect"
import { createServer } from "node:http"
import { describe, expect, it } from "vitest"
import { DbMemory } from "../layers/db/memory.ts"
import { GithubMemory } from "../layers/github/memory.ts"
import { combineClusters } from "../layers/kube/clusters.ts"
import { KubeMemory, KubeMemoryControl } from "../layers/kube/memory.ts"
import { DEFAULT_CLUSTER, defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { SchedulerServer } from "../src/operator/server.ts"
import { SchedulerLoop } from "../src/scheduler/loop.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { Kube, kubeOperations } from "../src/services/Kube.ts"

const config = Schema.decodeUnknownSync(RunnerConfig)(defaultRunnerConfigInput)

const clusterUp = (text: string) =>
  new Map([...text.matchAll(/^riscv_runner_cluster_up\{cluster="([^"]*)"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]))

/** Scrapes until `done` holds of the cluster_up series (a cycle runs every 200 ms here), then returns them. */
const scrapeUntil = async (url: string, done: (up: Map<string, number>) => boolean) => {
  let up = new Map<string, number>()
  for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
    up = clusterUp(await (await fetch(url)).text())
    if (done(up)) break
    await new Promise((r) => setTimeout(r, 100))
  }
  return up
}

describe("riscv_runner_cluster_up", () => {
  it("one series per cluster: 0 for the cluster whose API fails, 1 for the one that answers, 1 again once it answers", async () => {
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const home = yield* Layer.build(KubeMemory({ tick: null, nodes: [{ name: "home-1", pool: "scw-em-rv1", slots: 1 }] }))
      const lab = yield* Layer.build(KubeMemory({ tick: null, nodes: [{ name: "lab-1", pool: "jupiter", slots: 1 }] }))
      const labControl = Context.get(lab, KubeMemoryControl)
      // the lab's API refuses every call until told otherwise
      for (const operation of kubeOperations) yield* labControl.injectFault({ operation, status: 503, times: 1_000_000 })
      const kube = combineClusters([
        { name: DEFAULT_CLUSTER, pools: [], kube: Context.get(home, Kube) },
        { name: "lab", pools: ["jupiter"], kube: Context.get(lab, Kube) }
      ])
      const shared = yield* Layer.build(Layer.mergeAll(
        DbMemory,
        GithubMemory,
        Layer.succeed(Kube, kube),
        SchedulerSettingsLive({ runnerConfig: config, prod: false, timeouts: { pollInterval: Duration.millis(200) } })
      ))
      const provideShared = Layer.provide(Layer.succeedContext(shared))
      const server = yield* Layer.build(SchedulerServer.pipe(provideShared, Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))))
      yield* Layer.build(SchedulerLoop.pipe(provideShared))
      const address = Context.get(server, HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
      const url = `http://127.0.0.1:${address.port}/metrics`

      const down = yield* Effect.promise(() => scrapeUntil(url, (up) => up.size === 2))
      expect(Object.fromEntries(down)).toEqual({ [DEFAULT_CLUSTER]: 1, lab: 0 })
      yield* labControl.clearFaults
      const back = yield* Effect.promise(() => scrapeUntil(url, (up) => up.get("lab") === 1))
      expect(Object.fromEntries(back)).toEqual({ [DEFAULT_CLUSTER]: 1, lab: 1 })
    })).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))))
  }, 60_000)
})
