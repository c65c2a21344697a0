import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServerWithFrontDoor } from "../layers/http/nodeFrontDoor.ts"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Logger, LogLevel, Redacted, Schema } from "effect"
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { chromium } from "playwright-core"
import { describe, expect, it } from "vitest"
import { DbMemory } from "../layers/db/memory.ts"
import { GithubMemory } from "../layers/github/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import { SimControlServer } from "../layers/sim/controlApi.ts"
import { HttpWebhookTransport } from "../layers/sim/webhookTransport.ts"
import { SimWorldLive } from "../layers/sim/world.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { SchedulerLoop } from "../src/scheduler/loop.ts"
import { SchedulerServer } from "../src/operator/server.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { WebhookServer } from "../src/webhook/server.ts"
import { webhookSettingsLayer } from "../src/webhook/WebhookSettings.ts"

/*
 * The dashboard in a real headless browser (Debian's chromium driven by playwright-core) against the simulated
 * system: the simulated GitHub sends signed webhooks over HTTP, the real scheduler loop provisions on the
 * in-memory cluster, and the page at / on the scheduler port renders from the JSON routes. Its numbers must
 * match /usage.json; a screenshot is left in test-artifacts/.
 */

const SECRET = "whsec-dashboard-4e1a"
const CHROMIUM = "/usr/bin/chromium"
const config = Schema.decodeUnknownSync(RunnerConfig)(defaultRunnerConfigInput)
const ARTIFACTS = path.resolve(import.meta.dirname, "..", "test-artifacts")

const portOf = (context: Context.Context<HttpServer.HttpServer>) => {
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return address.port
}
const getJson = async (url: string, init?: RequestInit): Promise<any> => (await fetch(url, { ...init, headers: { "content-type": "application/json" } })).json()

const withService = <A>(body: (control: string, scheduler: string) => Promise<A>) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const shared = yield* Layer.build(Layer.mergeAll(
      DbMemory,
      GithubMemory,
      KubeMemory({ tick: "200 millis", nodes: [1, 2, 3].map((n) => ({ name: `node-${n}`, pool: "scw-em-rv1", slots: 1 })) }),
      SchedulerSettingsLive({ runnerConfig: config, prod: false })
    ))
    const provideShared = Layer.provide(Layer.succeedContext(shared))
    const webhook = yield* Layer.build(
      WebhookServer.pipe(
        Layer.provide(Layer.mergeAll(webhookSettingsLayer({ webhookSecret: Redacted.make(SECRET), runnerConfig: config }), FetchHttpClient.layer)),
        provideShared,
        Layer.provideMerge(NodeHttpServerWithFrontDoor({ port: 0 }))
      )
    )
    const scheduler = yield* Layer.build(SchedulerServer.pipe(provideShared, Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))))
    yield* Layer.build(SchedulerLoop.pipe(provideShared))
    const world = SimWorldLive({ speed: 60, runnerConfig: config, apps: config.apps }).pipe(
      Layer.provide(HttpWebhookTransport({ url: `http://127.0.0.1:${portOf(webhook)}/`, secret: Redacted.make(SECRET) }).pipe(Layer.provide(FetchHttpClient.layer))),
      provideShared
    )
    const control = yield* Layer.build(SimControlServer.pipe(Layer.provide(world), Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))))
    return yield* Effect.promise(() => body(`http://127.0.0.1:${portOf(control)}`, `http://127.0.0.1:${portOf(scheduler)}`))
  })).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))))

/** Per (entity, label set): pending jobs and active workers, counted from /usage.json independently of the page. */
const expectedGroups = (usage: any) => {
  const groups = new Map<string, { pending: number; active: number }>()
  const key = (r: any) => `${r.entity_name}|${r.job_labels.join(",")}`
  for (const j of usage.jobs) {
    const g = groups.get(key(j)) ?? { pending: 0, active: 0 }
    if (j.status === "pending") g.pending++
    groups.set(key(j), g)
  }
  for (const w of usage.workers) {
    const g = groups.get(key(w)) ?? { pending: 0, active: 0 }
    g.active++
    groups.set(key(w), g)
  }
  return Object.fromEntries([...groups].sort(([a], [b]) => a.localeCompare(b)))
}

describe("dashboard in a headless browser", () => {
  // CI installs chromium (.ci/run) and always runs this; elsewhere a machine without it skips
  // Two CI runs on 2026-12-03 saw this case time out at 120 s with nothing printed, and six runs after it (alone,
  // beside other suites, beside CPU hogs) did not: the waits below are bounded so that the next one names its step,
  // and the case is tried twice. A real fault fails both tries.
  it.skipIf(!existsSync(CHROMIUM) && process.env["CI"] !== "true")("renders pools, groups, the queue and the chart from the live simulated system; numbers match /usage.json", { retry: 1, timeout: 120_000 }, async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    const profile = mkdtempSync(path.join(tmpdir(), "riscv-dashboard-chromium-"))
    // a fresh profile each run (playwright takes it as the persistent context's user data dir)
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      // playwright's own default is 3 minutes, past the test's: a launch that hangs should say so
      timeout: 30_000,
      viewport: { width: 1100, height: 1300 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
    try {
      await withService(async (control, scheduler) => {
        // more long jobs than the 3 boards: 3 run, the rest wait; at speed 60 a 10 h job lasts 10 minutes
        for (const [owner, count] of [["acme", 4], ["octo-org", 2]] as const) {
          await getJson(`${control}/sim/jobs`, {
            signal: AbortSignal.timeout(20_000),
            method: "POST",
            body: JSON.stringify({ owner, ownerType: "Organization", repo: `${owner}/app`, labels: ["ubuntu-24.04-riscv"], durationSeconds: 36_000, count })
          })
        }
        // wait for a steady state: all 6 jobs stored, every board busy
        let usage: any
        // (by the clock, not a count of polls: under a loaded CI machine the simulated world can take a while)
        for (const deadline = Date.now() + 45_000; Date.now() < deadline;) {
          usage = await getJson(`${scheduler}/usage.json`)
          if (usage.jobs.length === 6 && usage.workers.filter((w: any) => w.status === "running").length === 3) break
          await new Promise((r) => setTimeout(r, 100))
        }
        expect(usage.jobs).toHaveLength(6)

        const page = await browser.newPage()
        // every wait on the page says which one timed out, well within the test's own limit
        page.setDefaultTimeout(15_000)
        const external: Array<string> = []
        page.on("request", (req) => {
          if (!req.url().startsWith(scheduler)) external.push(req.url())
        })
        const response = await page.goto(`${scheduler}/`)
        expect(response?.status()).toBe(200)
        await page.waitForSelector("body[data-renders]")
        const before = await getJson(`${scheduler}/usage.json`)

        // boards per pool: the simulated cluster has 3 one-slot nodes, all busy
        const pool = page.locator('#pools tr[data-pool="scw-em-rv1"]')
        expect(await pool.locator(".total").textContent()).toBe("3")
        expect(await pool.locator(".busy").textContent()).toBe("3")
        expect(await pool.locator(".free").textContent()).toBe("0")
        expect(await pool.locator(".free").evaluate((e) => (globalThis as unknown as { getComputedStyle: (e: unknown) => { color: string } }).getComputedStyle(e).color)).toBe("rgb(180, 83, 9)")

        // each board with its cluster: without `clusters` in the runner config, every board is the default cluster's
        const boards = await page.$$eval("#boards tbody tr", (rows) => rows.map((r) => [r.getAttribute("data-cluster"), r.querySelector(".cluster")!.textContent]))
        expect(boards).toEqual([["default", "default"], ["default", "default"], ["default", "default"]])

        // per (entity, label set): the page's numbers are those of /usage.json
        const shown = await page.$$eval("#groups tbody tr", (rows) =>
          rows.map((r) => ({
            key: `${r.getAttribute("data-entity")}|${r.getAttribute("data-labels")}`,
            pending: Number(r.querySelector(".pending")!.textContent),
            active: Number(r.querySelector(".active")!.textContent),
            cap: r.querySelector(".cap")!.textContent,
            wait: r.querySelector(".wait")!.textContent
          })))
        expect(Object.fromEntries(shown.map((s) => [s.key, { pending: s.pending, active: s.active }]))).toEqual(expectedGroups(before))
        expect(shown.map((s) => s.cap)).toEqual(["20", "20"])
        expect(shown.every((s) => s.wait !== "")).toBe(true)

        // the queue: every pending job, with a reason
        const pending = before.jobs.filter((j: any) => j.status === "pending").map((j: any) => String(j.job_id)).sort()
        const queued = await page.$$eval("#queue tbody tr", (rows) => rows.map((r) => r.getAttribute("data-job")!))
        expect([...queued].sort()).toEqual(pending)
        // the queue's totals per pool (from /queue.json, whatever its page) count the same waiting jobs
        expect(await page.locator('#queue-pools tr[data-pool="scw-em-rv1"] .pending').textContent()).toBe(String(pending.length))
        expect(await page.locator("#queue .reason").first().textContent()).toMatch(/no free board|provisioning|cap reached/)
        const jobLink = page.locator("#queue a").first()
        expect(await jobLink.getAttribute("href")).toMatch(/^https:\/\//)

        // the chart: one point a minute over the hour, the latest showing the jobs that wait now
        const points = await page.locator("#depth-line").getAttribute("points")
        expect(points!.trim().split(" ")).toHaveLength(61)

        // links are real links, and nothing was fetched from outside
        expect(await page.locator('nav a[href="/usage"]').count()).toBe(1)
        expect(external).toEqual([])

        await page.screenshot({ path: path.join(ARTIFACTS, "dashboard.png"), fullPage: true })
        const after = await getJson(`${scheduler}/usage.json`)
        expect(expectedGroups(after)).toEqual(expectedGroups(before))
      })
    } finally {
      await browser.close()
      rmSync(profile, { recursive: true, force: true })
    }
  })
})
