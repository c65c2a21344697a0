import { describe, expect, it } from "@effect/vitest"
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Redacted, TestClock } from "effect"
import { createServer } from "node:http"
import { DbMemory } from "../layers/db/memory.ts"
import { KubeMemory, KubeMemoryControl } from "../layers/kube/memory.ts"
import { parseDay, parsePaging } from "../src/operator/paging.ts"
import { schedulerApp, SchedulerServer } from "../src/operator/server.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { Db, DbError } from "../src/services/Db.ts"
import { Kube } from "../src/services/Kube.ts"
import { newJob, newWorker } from "./support/dbFixtures.ts"
import { getFrom } from "./support/http.ts"
import { testRunnerConfig } from "./support/schedulerWorld.ts"

const DAY = 86_400_000

const world = (prod = false) =>
  Layer.mergeAll(DbMemory, KubeMemory({ tick: null }), SchedulerSettingsLive({ runnerConfig: testRunnerConfig(), prod }))

const get = (path: string) => getFrom(schedulerApp, path)

const at = (ms: number) => TestClock.setTime(ms)

describe("scheduler operator routes", () => {
  it.effect("/health answers ok", () =>
    Effect.gen(function*() {
      expect(yield* get("/health")).toMatchObject({ status: 200, body: "ok" })
    }).pipe(Effect.provide(world())))

  it.effect("empty lists are [] in JSON, and the pages say so", () =>
    Effect.gen(function*() {
      expect((yield* get("/usage.json")).body).toBe(`{"jobs":[],"workers":[]}`)
      const jobs = yield* get("/jobs.json")
      expect(jobs).toMatchObject({ status: 200, body: "[]", link: null })
      expect(jobs.type).toContain("application/json")
      expect((yield* get("/workers.json")).body).toBe("[]")
      expect((yield* get("/usage")).body).toContain("<pre>No active pools.</pre>")
      expect((yield* get("/jobs")).body).toContain("No jobs found.")
      expect((yield* get("/workers")).body).toContain("No workers found.")
    }).pipe(Effect.provide(world())))

  it.effect("/usage: readable HTML, grouped per (entity, label set), with real colours and links and escaped data", () =>
    Effect.gen(function*() {
      const db = yield* Db
      yield* at(Date.UTC(2026, 3, 1, 12, 30, 5))
      yield* db.addJob(newJob(1))
      yield* db.addJob(newJob(2, { entity_id: 7, entity_name: "<script>alert(1)</script>", job_labels: ["a&b"], html_url: "javascript:alert(1)" }))
      yield* db.addWorker(newWorker("rise-riscv-runner-staging-aaaaaaaaa"))
      const page = yield* get("/usage")
      expect(page.status).toBe(200)
      expect(page.type).toContain("text/html")
      expect(page.body).toContain("<title>Usage - Staging</title>")
      expect(page.body).toContain("=== acme / [ubuntu-24.04-riscv] (scw-em-rv1) ===\n  Jobs (1):\n    - ")
      expect(page.body).toContain(
        `<span style="color:#ccc504">[pending  ]</span>  2026-04-01 12:30:05 UTC  [ubuntu-24.04-riscv]  &lt;unknown pod&gt;  <a href="https://github.com/acme/app/actions/runs/1/job/1">acme/app#1</a>`
      )
      expect(page.body).toContain("  Workers (1):\n    - <span style=\"color:#ccc504\">[pending  ]</span>  2026-04-01 12:30:05 UTC  [ubuntu-24.04-riscv]  rise-riscv-runner-staging-aaaaaaaaa  (node: &lt;unknown node&gt;)")
      // live events of the active worker: its pod does not exist in this cluster, so none
      expect(page.body).toContain("      Events: (none)")
      expect(page.body).toContain("=== &lt;script&gt;alert(1)&lt;/script&gt; / [a&amp;b] (scw-em-rv1) ===\n  Jobs (1):")
      expect(page.body).not.toContain("<script>")
      expect(page.body).not.toContain(`href="javascript`)
      expect(page.body).toContain("  Workers: none")
      // groups sorted by entity id: 7 before 1001
      expect(page.body.indexOf("&lt;script&gt;")).toBeLessThan(page.body.indexOf("=== acme"))
      const json = JSON.parse((yield* get("/usage.json")).body)
      expect(json.jobs.map((j: { job_id: number }) => j.job_id)).toEqual([1, 2])
      expect(json.workers[0]).not.toHaveProperty("k8s_node")
      expect(json.workers[0]).not.toHaveProperty("failure_info")
      expect(json.jobs[0]).toMatchObject({ status: "pending", created_at: "2026-04-01T12:30:05.000Z", html_url: "https://github.com/acme/app/actions/runs/1/job/1" })
      expect(json.jobs[0]).not.toHaveProperty("k8s_pod")
    }).pipe(Effect.provide(world())))

  it.effect("/workers: failure diagnostics for failed workers, live events for active ones; Prod in the title", () =>
    Effect.gen(function*() {
      const db = yield* Db
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      yield* ctl.addNode("n1", "scw-em-rv1", 1)
      yield* db.addWorker(newWorker("w-failed"))
      yield* db.markWorkerFailed("w-failed", "n1", {
        version: 2,
        reason: "pod_failed",
        pod_reason: "DeadlineExceeded",
        pod_message: "too long",
        containers: { runner: { exit_code: 137, reason: "Error", message: "", logs: "line one\n<b>line two</b>\n" } },
        events: [{ type: "Warning", reason: "DeadlineExceeded", message: "deadline", count: 1, last_seen: "2026-01-01T00:00:00Z" }]
      }, null)
      yield* at(1000)
      yield* db.addWorker(newWorker("w-live"))
      yield* kube.createRunnerPod({ name: "w-live", jitConfig: Redacted.make("jit"), image: "img", pool: "scw-em-rv1", entity: { type: "Organization", id: 1001, name: "acme" }, installationId: 5001 })
      yield* ctl.reconcile
      const page = (yield* get("/workers")).body
      expect(page).toContain("<title>Workers - Prod</title>")
      expect(page).toContain(`<span style="color:#d90606">[failed   ]</span>`)
      expect(page).toContain("  Reason: pod_failed\n  Pod: DeadlineExceeded  too long\n  Container runner: exit=137  Error  \n    | line one\n    | &lt;b&gt;line two&lt;/b&gt;\n  2026-01-01T00:00:00Z  [Warning]  DeadlineExceeded: deadline")
      expect(page).toContain("w-live  (node: &lt;unknown node&gt;)\n  1970-01-01 00:00:01  [Normal]  Scheduled: Successfully assigned default/w-live to n1")
      const json = JSON.parse((yield* get("/workers.json")).body)
      expect(json.map((w: { pod_name: string }) => w.pod_name)).toEqual(["w-live", "w-failed"])
      expect(json[1]).toMatchObject({ status: "failed", k8s_node: "n1", failure_info: { reason: "pod_failed" } })
      expect(json[1].completed_at).toBe("1970-01-01T00:00:00.000Z")
    }).pipe(Effect.provide(world(true))))

  it.effect("paging: start/end/page/per_page, newest first, with the Link header on JSON", () =>
    Effect.gen(function*() {
      const db = yield* Db
      for (let i = 1; i <= 5; i++) {
        yield* at(i * DAY)
        yield* db.addJob(newJob(i))
      }
      yield* at(10 * DAY)
      const ids = (body: string) => JSON.parse(body).map((j: { job_id: number }) => j.job_id)
      const p1 = yield* get("/jobs.json?page=1&per_page=2")
      expect(ids(p1.body)).toEqual([3, 2])
      expect(p1.link).toBe(
        `</jobs.json?page=0&per_page=2>; rel="first", </jobs.json?page=0&per_page=2>; rel="prev", </jobs.json?page=2&per_page=2>; rel="next", </jobs.json?page=2&per_page=2>; rel="last"`
      )
      expect((yield* get("/jobs.json?per_page=2")).link).toBe(`</jobs.json?page=1&per_page=2>; rel="next", </jobs.json?page=2&per_page=2>; rel="last"`)
      expect((yield* get("/history.json?page=2&per_page=2")).link).toBe(`</history.json?page=0&per_page=2>; rel="first", </history.json?page=1&per_page=2>; rel="prev"`)
      const ranged = yield* get("/jobs.json?start=1970-01-03&end=1970-01-05&per_page=1")
      expect(ids(ranged.body)).toEqual([3]) // jobs 2 and 3 are in range; one per page
      expect(ranged.link).toBe(`</jobs.json?page=1&per_page=1&start=1970-01-03&end=1970-01-05>; rel="next", </jobs.json?page=1&per_page=1&start=1970-01-03&end=1970-01-05>; rel="last"`)
      // -Nd counts back from today's UTC date (day 10)
      expect(ids((yield* get("/jobs.json?start=-6d")).body)).toEqual([5, 4])
      expect(ids((yield* get("/history.json")).body)).toEqual([5, 4, 3, 2, 1])
      const html = yield* get("/jobs?per_page=2")
      expect(html.body).toContain("<title>History - Staging</title>")
      expect(html.body).toContain(`<a href="/jobs?page=1&amp;per_page=2">next</a>`)
      expect(html.link).toBeNull()
    }).pipe(Effect.provide(world())))

  it.effect("the pages count from 1 for people, and say when a page is past the end; the page parameter counts from 0", () =>
    Effect.gen(function*() {
      const db = yield* Db
      const summary = (body: string) => /<p>([^<·]*)/.exec(body)?.[1]?.trim()
      expect(summary((yield* get("/jobs")).body)).toBe("page 1 of 1, nothing to show")
      for (let i = 1; i <= 13; i++) {
        yield* at(i * 1000)
        yield* db.addJob(newJob(i))
      }
      expect(summary((yield* get("/jobs")).body)).toBe("page 1 of 1, 13 shown of 13")
      expect(summary((yield* get("/jobs?per_page=2")).body)).toBe("page 1 of 7, 2 shown of 13")
      const lastOne = yield* get("/jobs?per_page=2&page=6")
      expect(summary(lastOne.body)).toBe("page 7 of 7, 1 shown of 13")
      expect(lastOne.body).not.toContain(">next</a>")
      const past = yield* get("/jobs?per_page=10&page=3")
      expect(summary(past.body)).toBe("page 4 is past the end: 13 entries fill 2 pages of 10")
      // its prev link goes to the last page that has entries
      expect(past.body).toContain(`<a href="/jobs?page=1&amp;per_page=10">prev</a>`)
      yield* db.addWorker(newWorker("w-1"))
      expect(summary((yield* get("/workers?page=1")).body)).toBe("page 2 is past the end: 1 entry fills 1 page of 100")
      // the JSON routes keep the original's page numbers from 0
      expect((yield* get("/jobs.json?per_page=10&page=3")).link).toBe(
        `</jobs.json?page=0&per_page=10>; rel="first", </jobs.json?page=1&per_page=10>; rel="prev"`
      )
    }).pipe(Effect.provide(world())))

  it.effect("bad paging parameters are a 400 with the original's texts", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["/jobs.json?start=2026-13-01", "invalid parameter start, must be YYYY-MM-DD"],
        ["/jobs?start=2026-02-30", "invalid parameter start, must be YYYY-MM-DD"],
        ["/workers.json?end=yesterday", "invalid parameter end, must be YYYY-MM-DD"],
        ["/workers?page=-1", "invalid parameter page, must be >= 0"],
        ["/history.json?page=x", "invalid parameter page, must be >= 0"],
        ["/jobs.json?per_page=0", "invalid parameter per_page, must be > 0"],
        ["/workers.json?per_page=abc", "invalid parameter per_page, must be > 0"]
      ]
      for (const [path, text] of cases) expect(yield* get(path)).toMatchObject({ status: 400, body: text })
    }).pipe(Effect.provide(world())))

  it.effect("a database failure is a 500 with a fixed text", () =>
    Effect.gen(function*() {
      const failing = Layer.effect(Db, Effect.map(Db, (db) => ({ ...db, listJobs: () => Effect.fail(new DbError({ message: "connection lost: password=hunter2" })) })))
      const result = yield* get("/jobs.json").pipe(Effect.provide(failing))
      expect(result).toMatchObject({ status: 500, body: "internal error" })
    }).pipe(Effect.provide(world())))
})

describe("paging parameters", () => {
  it("dates are calendar days (UTC), or days back from today", () => {
    expect(parseDay("2026-04-30", 0)?.toISOString()).toBe("2026-04-30T00:00:00.000Z")
    expect(parseDay("2026-04-31", 0)).toBeUndefined()
    expect(parseDay("-0d", Date.UTC(2026, 0, 5, 13))?.toISOString()).toBe("2026-01-05T00:00:00.000Z")
    expect(parseDay("-7d", Date.UTC(2026, 0, 5, 13))?.toISOString()).toBe("2025-12-29T00:00:00.000Z")
    expect(parseDay("7d", 0)).toBeUndefined()
    const defaults = parsePaging(new URLSearchParams(""), 0)
    expect(defaults).toMatchObject({ _tag: "Right", right: { request: { page: 0, perPage: 100 } } })
  })
})

describe("the operator API on a real socket", () => {
  it.live("a bad query parameter is the promised 400 text (text/plain) from the API's own schemas; good ones page with a Link", () =>
    Effect.scoped(Effect.gen(function*() {
      const context = yield* Layer.build(SchedulerServer.pipe(
        Layer.provide(world()),
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))
      ))
      const address = Context.get(context, HttpServer.HttpServer).address
      const base = `http://127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}`
      const get = (path: string) =>
        Effect.promise(async () => {
          const res = await fetch(base + path)
          return { status: res.status, type: res.headers.get("content-type"), link: res.headers.get("link"), body: await res.text() }
        })
      for (
        const [path, text] of [
          ["/jobs.json?start=yesterday", "invalid parameter start, must be YYYY-MM-DD"],
          ["/history.json?end=2026-02-30", "invalid parameter end, must be YYYY-MM-DD"],
          ["/workers.json?page=-3", "invalid parameter page, must be >= 0"],
          ["/jobs.json?per_page=0", "invalid parameter per_page, must be > 0"],
          ["/queue.json?limit=0", "invalid parameter limit, must be an integer from 1 to 1000"],
          ["/queue.json?pool=", "invalid parameter pool, must be a pool name"]
        ] as const
      ) {
        const res = yield* get(path)
        expect([res.status, res.body], path).toEqual([400, text])
        expect(res.type, path).toContain("text/plain")
      }
      expect(yield* get("/jobs.json?per_page=2")).toMatchObject({ status: 200, body: "[]", link: null })
      expect((yield* get("/queue.json")).status).toBe(200)
      expect((yield* get("/health")).body).toBe("ok")
      expect((yield* get("/nowhere")).status).toBe(404)
    })))
})
