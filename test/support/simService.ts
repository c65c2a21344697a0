import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServerWithFrontDoor } from "../../layers/http/nodeFrontDoor.ts"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, type Duration, Effect, Layer, Logger, LogLevel, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import { DbMemory } from "../../layers/db/memory.ts"
import { GithubMemory, GithubMemoryControl } from "../../layers/github/memory.ts"
import { KubeMemory } from "../../layers/kube/memory.ts"
import { parseCluster } from "../../layers/sim/cluster.ts"
import { SimControlServer } from "../../layers/sim/controlApi.ts"
import { HttpWebhookTransport } from "../../layers/sim/webhookTransport.ts"
import { SimWorldLive } from "../../layers/sim/world.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../../src/domain/RunnerConfig.ts"
import { SchedulerServer } from "../../src/operator/server.ts"
import { SchedulerLoop } from "../../src/scheduler/loop.ts"
import { type SchedulerTimeouts, SchedulerSettingsLive } from "../../src/scheduler/settings.ts"
import { Db } from "../../src/services/Db.ts"
import { WebhookServer } from "../../src/webhook/server.ts"
import { webhookSettingsLayer } from "../../src/webhook/WebhookSettings.ts"

/*
 * `--simulate` as `npm start` runs it, on the real clock and real sockets: the simulated GitHub posts signed
 * deliveries over HTTP to the webhook server, the scheduler loop provisions on the in-memory cluster, the control
 * API takes jobs and shows the state, and the scheduler's operator routes (`/queue.json`, ...) answer on their own
 * port. The world runs `speed` times faster than real time.
 */

const SECRET = "whsec-sim-http-5c1d"
export const simConfig = Schema.decodeUnknownSync(RunnerConfig)(defaultRunnerConfigInput)

const portOf = (context: Context.Context<HttpServer.HttpServer>) => {
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return address.port
}

export const json = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, { ...init, headers: { "content-type": "application/json" } })
  return { status: res.status, body: (await res.json()) as any }
}

export interface SimUrls {
  readonly control: string
  readonly webhook: string
  /** the scheduler's operator port */
  readonly scheduler: string
}

export interface SimServiceOptions {
  /** one-slot boards of pool scw-em-rv1; default 3 */
  readonly boards?: number
  /** the cluster as `SIM_NODES` gives it, faulty boards included (instead of `boards`) */
  readonly simNodes?: string
  /** the scheduler's timeouts (real time), where the defaults would outlast a test */
  readonly timeouts?: Partial<SchedulerTimeouts>
  readonly speed?: number
  /** options of the simulated world (e.g. how long a runner held busy stays busy) */
  readonly world?: { readonly stuckBusyFor?: Duration.DurationInput }
}

/** Starts the whole simulated service on free ports and runs `body` with its URLs. */
export const withSimService = <A>(body: (urls: SimUrls) => Promise<A>, options: SimServiceOptions = {}) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const boards = options.boards ?? 3
    const cluster = options.simNodes === undefined
      ? { nodes: Array.from({ length: boards }, (_, i) => ({ name: `node-${i + 1}`, pool: "scw-em-rv1", slots: 1 })), boardFaults: [] }
      : parseCluster(options.simNodes)
    if (typeof cluster === "string") throw new Error(`SIM_NODES: ${cluster}`)
    const shared = yield* Layer.build(Layer.mergeAll(
      DbMemory,
      GithubMemory,
      KubeMemory({ tick: "200 millis", nodes: cluster.nodes }),
      SchedulerSettingsLive({ runnerConfig: simConfig, prod: false, timeouts: options.timeouts })
    ))
    const provideShared = Layer.provide(Layer.succeedContext(shared))
    const webhook = yield* Layer.build(
      WebhookServer.pipe(
        Layer.provide(Layer.mergeAll(webhookSettingsLayer({ webhookSecret: Redacted.make(SECRET), runnerConfig: simConfig }), FetchHttpClient.layer)),
        provideShared,
        Layer.provideMerge(NodeHttpServerWithFrontDoor({ port: 0 }))
      )
    )
    const webhookUrl = `http://127.0.0.1:${portOf(webhook)}/`
    yield* Layer.build(SchedulerLoop.pipe(provideShared))
    const operator = yield* Layer.build(SchedulerServer.pipe(provideShared, Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))))
    const world = SimWorldLive({ speed: options.speed ?? 60, runnerConfig: simConfig, apps: simConfig.apps, boardFaults: cluster.boardFaults, ...options.world }).pipe(
      Layer.provide(HttpWebhookTransport({ url: webhookUrl, secret: Redacted.make(SECRET) }).pipe(Layer.provide(FetchHttpClient.layer))),
      provideShared
    )
    const control = yield* Layer.build(
      SimControlServer.pipe(Layer.provide(world), Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 })))
    )
    const issued = Context.get(shared, GithubMemoryControl).issuedSecrets
    const urls = { control: `http://127.0.0.1:${portOf(control)}`, webhook: webhookUrl, scheduler: `http://127.0.0.1:${portOf(operator)}` }
    const result = yield* Effect.promise(() => body(urls))
    return { result, secrets: yield* issued, db: Context.get(shared, Db) }
  })).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))))

/** Reads until `ok` holds, every 100 ms, at most `tries` times; the error shows the last reading. */
export const until = async <A>(what: string, read: () => Promise<A>, ok: (a: A) => boolean, tries = 300): Promise<A> => {
  let last: A | undefined
  for (let i = 0; i < tries; i++) {
    last = await read()
    if (ok(last)) return last
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`)
}
