import { describe, expect, it } from "@effect/vitest"
import { HttpApp, HttpServer } from "@effect/platform"
import { Effect, Layer, Option, Redacted, TestClock } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { KubeMemory, KubeMemoryControl } from "../layers/kube/memory.ts"
import { DEFAULT_CLUSTER } from "../src/domain/RunnerConfig.ts"
import { schedulerApp } from "../src/operator/server.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { Db } from "../src/services/Db.ts"
import { testRunnerConfig } from "./support/schedulerWorld.ts"

const SECRET = "board-operator-secret"

const world = (secret: string | null = SECRET) =>
  Layer.mergeAll(
    DbMemory,
    KubeMemory({ tick: null, nodes: [{ name: "n1", pool: "p", slots: 2 }, { name: "n2", pool: "p", slots: 1 }, { name: "n3", pool: "p", slots: 1 }] }),
    SchedulerSettingsLive({
      runnerConfig: testRunnerConfig(),
      prod: false,
      operatorSecret: secret === null ? Option.none() : Option.some(Redacted.make(secret))
    })
  )

/** One request to the scheduler port's app, in process. */
const call = (method: "GET" | "POST", path: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const handler = yield* schedulerApp
    const runtime = yield* Effect.runtime<never>()
    const response = yield* Effect.promise(() =>
      HttpApp.toWebHandlerRuntime(runtime)(handler as never)(new Request(`http://localhost${path}`, { method, headers }))
    )
    return { status: response.status, body: yield* Effect.promise(() => response.text()) }
  }).pipe(Effect.provide(HttpServer.layerContext))

const quarantine = (node: string) =>
  Effect.flatMap(Db, (db) =>
    db.recordBoardTransition(
      { node, pool: "p", state: "quarantined", since: new Date(0), until: new Date(3_600_000), probation_seconds: 3600 },
      {
        node,
        pool: "p",
        kind: "quarantined",
        at: new Date(0),
        probation_seconds: 3600,
        evidence: [{ pod_name: "rise-riscv-runner-staging-x", reason: "runner_never_registered", at: "1970-01-01T00:00:00.000Z" }]
      }
    ))

describe("boards routes", () => {
  it.effect("/boards.json: every board, usable or why not, its standing, and the records with their evidence", () =>
    Effect.gen(function*() {
      const kube = yield* KubeMemoryControl
      yield* kube.setNodeHealth("n3", { unschedulable: true })
      yield* quarantine("n2")
      const res = yield* call("GET", "/boards.json")
      expect(res.status).toBe(200)
      const body = JSON.parse(res.body)
      expect(body.pools).toEqual([{ pool: "p", cluster: DEFAULT_CLUSTER, total: 4, usable: 2, busy: 0, free: 2 }])
      expect(body.boards.map((b: any) => [b.node, b.cluster, b.usable, b.why_unusable, b.standing])).toEqual([
        ["n1", DEFAULT_CLUSTER, true, null, null],
        ["n2", DEFAULT_CLUSTER, false, "quarantined until 1970-01-01T01:00:00.000Z", "quarantined"],
        ["n3", DEFAULT_CLUSTER, false, "cordoned", null]
      ])
      expect(body.boards[1].quarantined_until).toBe("1970-01-01T01:00:00.000Z")
      expect(body.events).toEqual([{
        id: 1,
        node: "n2",
        pool: "p",
        kind: "quarantined",
        at: "1970-01-01T00:00:00.000Z",
        probation_seconds: 3600,
        evidence: [{ pod_name: "rise-riscv-runner-staging-x", reason: "runner_never_registered", at: "1970-01-01T00:00:00.000Z" }]
      }])
      // the dashboard's data shows the same boards
      const dash = JSON.parse((yield* call("GET", "/dashboard.json")).body)
      expect(dash.pools).toEqual([{ pool: "p", cluster: DEFAULT_CLUSTER, total: 4, usable: 2, busy: 0, free: 2 }])
      expect(dash.boards.map((b: any) => b.why_unusable)).toEqual([null, "quarantined until 1970-01-01T01:00:00.000Z", "cordoned"])
    }).pipe(Effect.provide(world())))

  it.effect("release: bearer token required; releases a quarantined board once, recorded; 404 otherwise", () =>
    Effect.gen(function*() {
      const db = yield* Db
      yield* quarantine("n2")
      yield* TestClock.setTime(60_000)
      expect(yield* call("POST", "/boards/n2/release")).toEqual({ status: 401, body: "Unauthorized" })
      expect((yield* call("POST", "/boards/n2/release", { authorization: `Bearer ${SECRET}x` })).status).toBe(401)
      expect((yield* call("POST", "/boards/n2/release", { authorization: SECRET })).status).toBe(401)
      // nothing was written by the refused calls
      expect((yield* db.getBoardStates)[0]?.state).toBe("quarantined")

      const ok = yield* call("POST", "/boards/n2/release", { authorization: `Bearer ${SECRET}` })
      expect(ok.status).toBe(200)
      expect(JSON.parse(ok.body)).toEqual({ node: "n2", pool: "p", standing: "healthy", event_id: 2 })
      expect(yield* db.getBoardStates).toEqual([
        { node: "n2", pool: "p", state: "healthy", since: new Date(60_000), until: null, probation_seconds: 3600 }
      ])
      expect((yield* db.listBoardEvents(10)).map((e) => e.kind)).toEqual(["operator_release", "quarantined"])

      const again = yield* call("POST", "/boards/n2/release", { authorization: `Bearer ${SECRET}` })
      expect(again).toEqual({ status: 404, body: "Board not quarantined" })
      expect((yield* call("POST", "/boards/n1/release", { authorization: `Bearer ${SECRET}` })).status).toBe(404)
      expect((yield* call("POST", "/boards/Bad_Name/release", { authorization: `Bearer ${SECRET}` })).status).toBe(400)
      expect(yield* db.listBoardEvents(10)).toHaveLength(2)
    }).pipe(Effect.provide(world())))

  it.effect("release is closed (503) while TRACE_API_SECRET is unset", () =>
    Effect.gen(function*() {
      yield* quarantine("n2")
      const res = yield* call("POST", "/boards/n2/release", { authorization: "Bearer " })
      expect(res.status).toBe(503)
      expect((yield* (yield* Db).getBoardStates)[0]?.state).toBe("quarantined")
    }).pipe(Effect.provide(world(null))))
})
