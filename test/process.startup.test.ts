/**
 * Start-up failures as an operator meets them: the bundled entrypoint as a child process, a port already taken or
 * an embedded data directory held by another running `npm start`. Each must end with status 2 and one line on
 * stderr that names the problem and the variable to change, not a stack trace.
 */
import { Effect, Scope } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { tempDataDir } from "../src/embedded/embeddedPostgres.ts"
import { freePort, type Running, startEntrypoint, waitForHttp } from "./support/entrypoint.ts"
import { processSuite } from "./support/processSuite.ts"
import { freshDatabase } from "./support/postgres.ts"

const suite = processSuite({ stopGraceMs: 20_000 })
const { scope, children } = suite
const tempDirs: Array<string> = []
suite.onEnd(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
})

const start = (args: ReadonlyArray<string>, env: Record<string, string | undefined>) => {
  const running = startEntrypoint(suite.bundle(), args, env)
  children.push(running)
  return running
}

/** A port held by a plain TCP server on every address, as another process would hold it. */
const occupiedPort = () =>
  new Promise<{ readonly port: number; readonly close: () => Promise<void> }>((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy())
    server.once("error", reject)
    server.listen(0, () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resolve({ port, close: () => new Promise((r) => server.close(() => r())) })
    })
  })

/** Exit status 2 and exactly one stderr line, which contains every one of `parts`; no stack frame anywhere. */
const expectOneLineFailure = async (child: Running, parts: ReadonlyArray<string>) => {
  const status = await child.exited
  const stderr = child.stderr.filter((l) => l.trim() !== "")
  const all = `exit ${status}\nstderr:\n${child.stderr.join("\n")}\nstdout:\n${child.stdout.join("\n")}`
  expect(status, all).toBe(2)
  expect(stderr, all).toHaveLength(1)
  expect(stderr[0]!.startsWith("riscv-runner: "), all).toBe(true)
  for (const part of parts) expect(stderr[0], all).toContain(part)
  expect([...child.stderr, ...child.stdout].some((l) => /^\s+at /.test(l)), all).toBe(false)
  return stderr[0]!
}

describe("start-up failures of the entrypoint", () => {
  it("migrate against a database it cannot reach: status 2, one line naming POSTGRES_URL's host and why, no password", async () => {
    const closed = await freePort()
    const refused = start(["migrate"], { POSTGRES_URL: `postgres://runner:hunter2-secret@127.0.0.1:${closed}/riscv` })
    const line = await expectOneLineFailure(refused, [`cannot reach the database of POSTGRES_URL (127.0.0.1:${closed}/riscv)`, "ECONNREFUSED", "check POSTGRES_URL"])
    expect(line).not.toContain("hunter2-secret")
    // a server that answers, but not with this database
    const db = await Effect.runPromise(freshDatabase("proc_startup_migrate").pipe(Scope.extend(scope)))
    const missing = new URL(db.url)
    missing.pathname = "/no_such_database"
    const absent = start(["migrate"], { POSTGRES_URL: missing.toString() })
    await expectOneLineFailure(absent, ["/no_such_database)", "does not exist"])
    // and the same command against the real one applies the migrations and exits 0
    const ok = start(["migrate"], { POSTGRES_URL: db.url })
    expect(await ok.exited, ok.stdout.join("\n")).toBe(0)
    expect(ok.stdout.join("\n")).toContain("applied 0001_seed_schema")
  }, 60_000)

  it("a webhook port in use: status 2 and one line naming PORT", async () => {
    const db = await Effect.runPromise(freshDatabase("proc_startup_port").pipe(Scope.extend(scope)))
    const held = await occupiedPort()
    try {
      const child = start(["webhook"], { POSTGRES_URL: db.url, PORT: String(held.port), GHAPP_WEBHOOK_SECRET: "startup-secret" })
      const line = await expectOneLineFailure(child, [`port ${held.port} is in use (PORT)`, "set PORT to a free port"])
      expect(line).not.toContain("startup-secret")
    } finally {
      await held.close()
    }
  }, 60_000)

  it("the scheduler's port in `all --simulate` in use: the line names SCHEDULER_PORT", async () => {
    const db = await Effect.runPromise(freshDatabase("proc_startup_sched").pipe(Scope.extend(scope)))
    const held = await occupiedPort()
    try {
      const child = start(["all", "--simulate"], {
        POSTGRES_URL: db.url,
        PORT: String(await freePort()),
        SCHEDULER_PORT: String(held.port),
        SIM_PORT: String(await freePort())
      })
      await expectOneLineFailure(child, [`port ${held.port} is in use (SCHEDULER_PORT)`])
    } finally {
      await held.close()
    }
  }, 60_000)

  it("a DATA_DIR held by a running `all --simulate`: the second exits 2 with one line naming DATA_DIR", async () => {
    // tempDataDir makes the parent reachable for the `postgres` user the server runs as under root
    const dataDir = path.dirname(await tempDataDir("riscv-runner-startup-"))
    tempDirs.push(dataDir)
    const env = () => ({ DATA_DIR: dataDir, LOG_FORMAT: "pretty", POSTGRES_URL: undefined })
    const [port, schedulerPort, simPort] = [await freePort(), await freePort(), await freePort()]
    const first = start(["all", "--simulate"], { ...env(), PORT: String(port), SCHEDULER_PORT: String(schedulerPort), SIM_PORT: String(simPort) })
    // the first run initialises the cluster, which takes a while on a shared machine
    await waitForHttp(`http://127.0.0.1:${port}/health`, 90_000)

    const second = start(["all", "--simulate"], {
      ...env(),
      PORT: String(await freePort()),
      SCHEDULER_PORT: String(await freePort()),
      SIM_PORT: String(await freePort())
    })
    await expectOneLineFailure(second, [path.join(dataDir, "postgres"), "DATA_DIR", "is in use", "set DATA_DIR to another directory"])

    // the first one is unharmed, and SIGTERM stops it with its database
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200)
    expect(await first.stop(20_000)).toBe(0)
    expect(fs.existsSync(path.join(dataDir, "postgres", "postmaster.pid"))).toBe(false)
  }, 150_000)
})
