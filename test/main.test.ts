import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { freshDatabase, query } from "./support/postgres.ts"
import { migrationNames } from "./support/migrationNames.ts"

/** Runs `src/main.ts` as a user would, with exactly the given environment (plus PATH). */
const runMain = (args: Array<string>, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      path.resolve("node_modules/.bin/tsx"),
      ["src/main.ts", ...args],
      { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 85_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr })
    )
  })

/**
 * Each case starts the whole program under tsx; the first in a run also fills tsx's transform cache. On a loaded
 * 2-CPU machine one start-up has taken 20-30 s, past vitest's default.
 */
const STARTUP_TIMEOUT = 90_000

describe("main.ts", () => {
  it("exits 2 with one line naming every missing variable", async () => {
    const result = await runMain(["all"])
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toEqual([
      "riscv-runner: missing required environment: POSTGRES_URL, GHAPP_WEBHOOK_SECRET, GHAPP_ORG_PRIVATE_KEY, GHAPP_PERSONAL_PRIVATE_KEY"
    ])
  }, STARTUP_TIMEOUT)

  it("exits 2 on a bad runner config file, naming the field", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "rr-main-"))
    const file = path.join(dir, "runner.json")
    await fs.writeFile(file, JSON.stringify({ rules: [{ labels: ["a"], pool: "p", image: "i", match: "fuzzy" }] }))
    const result = await runMain(["webhook", "--simulate"], { RUNNER_CONFIG: file })
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toContain("rules.0.match")
  }, STARTUP_TIMEOUT)

  it("exits 2 with one line on arguments it cannot run", async () => {
    const result = await runMain(["all", "--demo"])
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toEqual(["riscv-runner: --demo needs --simulate"])
  }, STARTUP_TIMEOUT)

  it("exits 2 with one line naming LOG_LEVEL when it is not a log level", async () => {
    const result = await runMain(["webhook", "--simulate"], { LOG_LEVEL: "loud" })
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toContain(`riscv-runner: invalid environment: LOG_LEVEL: must be one of`)
    expect(result.stderr).toContain(`got "loud"`)
  }, STARTUP_TIMEOUT)

  // two tsx start-ups of the whole program; on a loaded 2-CPU machine each has taken 20 s
  it.live("migrate creates the tables in schema staging, and a second run changes nothing", () =>
    Effect.gen(function*() {
      const db = yield* freshDatabase("main_migrate")
      const first = yield* Effect.promise(() => runMain(["migrate"], { POSTGRES_URL: db.url }))
      expect(first.stderr).toBe("")
      expect(first.stdout.trim()).toBe(`schema staging: applied ${migrationNames.join(", ")}`)
      const second = yield* Effect.promise(() => runMain(["migrate"], { POSTGRES_URL: db.url }))
      expect(second.stdout.trim()).toBe("schema staging: up to date")
      const tables = yield* Effect.promise(() => query<{ t: string }>(db.url, "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'staging' ORDER BY 1"))
      expect(tables.map((r) => r.t)).toEqual(["board_events", "board_states", "installation_events", "jobs", "scheduler_passes", "schema_migrations", "weekly_usage_days", "weekly_usage_fold", "weekly_usage_held", "weekly_usage_names", "workers"])
    }).pipe(Effect.scoped), 120_000)
})
