import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer, Option } from "effect"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { type AppEnv, loadAppEnv, type Role } from "../src/config/env.ts"
import { StartupError } from "../src/config/StartupError.ts"
import { defaultRunnerConfig } from "../src/domain/RunnerConfig.ts"
import { appLayer, appPlan, explainStartupFailure, type ServeArgs } from "../src/main/appLayer.ts"
import { freshDatabase } from "./support/postgres.ts"

const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

const LIVE = {
  POSTGRES_URL: "postgres://runner@127.0.0.1:1/none",
  GHAPP_WEBHOOK_SECRET: "whsec",
  GHAPP_ORG_PRIVATE_KEY: "org-key",
  GHAPP_PERSONAL_PRIVATE_KEY: "personal-key",
  PORT: "9100",
  SCHEDULER_PORT: "9101"
}

/** The environment as main.ts reads it for `role` (without --simulate's generated secrets). */
const envOf = (role: Role, simulate: boolean, vars: Record<string, string>) =>
  Effect.runSync(Effect.map(loadAppEnv(role, simulate).pipe(withEnv(vars)), (env: AppEnv) => ({ ...env, devSecrets: [] })))

const args = (role: ServeArgs["role"], simulate = false): ServeArgs => ({ role, simulate, demo: false })

describe("appPlan: which programs run, on what", () => {
  it.each([
    ["webhook", false, LIVE, { webhook: Option.some({ port: 9100, variable: "PORT" }), scheduler: Option.none(), github: "live", cluster: "none", database: "postgres", simulation: false }],
    ["scheduler", false, LIVE, { webhook: Option.none(), scheduler: Option.some({ port: 9100, variable: "PORT" }), github: "live", cluster: "live", database: "postgres", simulation: false }],
    ["all", false, LIVE, { webhook: Option.some({ port: 9100, variable: "PORT" }), scheduler: Option.some({ port: 9101, variable: "SCHEDULER_PORT" }), github: "live", cluster: "live", database: "postgres", simulation: false }],
    ["all", true, {}, { webhook: Option.some({ port: 8080, variable: "PORT" }), scheduler: Option.some({ port: 8081, variable: "SCHEDULER_PORT" }), github: "memory", cluster: "memory", database: "embedded", simulation: true }],
    ["scheduler", true, { POSTGRES_URL: "postgres://x" }, { webhook: Option.none(), scheduler: Option.some({ port: 8080, variable: "PORT" }), github: "memory", cluster: "memory", database: "postgres", simulation: true }]
  ] as const)("%s (simulate: %s)", (role, simulate, vars, plan) => {
    expect(appPlan(args(role, simulate), envOf(role, simulate, vars))).toEqual(Either.right(plan))
  })

  it("a lone webhook without the app keys runs without GitHub (its setup pages answer 502)", () => {
    const env = envOf("webhook", false, { POSTGRES_URL: LIVE.POSTGRES_URL, GHAPP_WEBHOOK_SECRET: "whsec" })
    expect(Either.map(appPlan(args("webhook"), env), (p) => p.github)).toEqual(Either.right("none"))
  })

  it("a scheduler without the app keys, or a live role without POSTGRES_URL, is a StartupError naming them", () => {
    const webhookOnly = envOf("webhook", false, { POSTGRES_URL: LIVE.POSTGRES_URL, GHAPP_WEBHOOK_SECRET: "whsec" })
    expect(appPlan(args("scheduler"), webhookOnly)).toEqual(
      Either.left(new StartupError({ message: "missing required environment: GHAPP_ORG_PRIVATE_KEY, GHAPP_PERSONAL_PRIVATE_KEY" }))
    )
    const simulated = envOf("all", true, {})
    expect(appPlan(args("all"), simulated)).toEqual(
      Either.left(new StartupError({
        message: "missing required environment: POSTGRES_URL, GHAPP_WEBHOOK_SECRET, GHAPP_ORG_PRIVATE_KEY, GHAPP_PERSONAL_PRIVATE_KEY"
      }))
    )
  })
})

describe("appLayer", () => {
  it.effect("missing keys: building fails with the StartupError, before anything starts", () =>
    Effect.gen(function*() {
      const env = envOf("webhook", false, { POSTGRES_URL: LIVE.POSTGRES_URL, GHAPP_WEBHOOK_SECRET: "whsec" })
      const error = yield* Effect.flip(Effect.scoped(Layer.build(appLayer(args("all"), env, defaultRunnerConfig))))
      expect(error).toBeInstanceOf(StartupError)
      expect(error.message).toBe("missing required environment: GHAPP_ORG_PRIVATE_KEY, GHAPP_PERSONAL_PRIVATE_KEY")
    }))

  it.effect("a bad SIM_* setting is a StartupError naming it, found before the (embedded) database starts", () =>
    Effect.gen(function*() {
      const env = envOf("webhook", true, { DATA_DIR: path.join(os.tmpdir(), "rr-never-created") })
      const error = yield* Effect.flip(Effect.scoped(Layer.build(appLayer(args("webhook", true), env, defaultRunnerConfig)))).pipe(
        withEnv({ SIM_SPEED: "fast" })
      )
      expect(error._tag).toBe("StartupError")
      expect(error.message).toMatch(/^invalid environment: SIM_SPEED/)
    }))

  it.live("a webhook port in use is a StartupError naming PORT", () =>
    Effect.gen(function*() {
      const db = yield* freshDatabase("main_applayer_port")
      const held = yield* Effect.acquireRelease(
        Effect.async<net.Server>((resume) => {
          const server = net.createServer((socket) => socket.destroy())
          server.listen(0, () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const port = (held.address() as net.AddressInfo).port
      const env = envOf("webhook", false, { POSTGRES_URL: db.url, GHAPP_WEBHOOK_SECRET: "whsec", PORT: String(port) })
      const error = yield* Effect.flip(Layer.build(appLayer(args("webhook"), env, defaultRunnerConfig)))
      expect(error.message).toBe(`port ${port} is in use (PORT); stop the other process or set PORT to a free port`)
    }).pipe(Effect.scoped), 60_000)
})

describe("explainStartupFailure", () => {
  it("keeps a StartupError, and explains nothing it does not know (that failure is reported with its cause)", () => {
    const startup = new StartupError({ message: "x" })
    expect(explainStartupFailure([], startup)).toBe(startup)
    expect(explainStartupFailure([], new Error("connection refused"))).toBeUndefined()
  })
})
