/**
 * The log as the container writes it: the bundled entrypoint as a child process under `LOG_FORMAT=json` (the
 * image's default), its real stdout read line by line. A logger that only formats, or a banner printed as plain
 * text between the JSON objects, breaks log shipping, and only the process itself shows either.
 */
import { Effect, Scope } from "effect"
import Pg from "pg"
import { describe, expect, it } from "vitest"
import { freePort, startEntrypoint, waitForHttp } from "./support/entrypoint.ts"
import { processSuite, startSimulated } from "./support/processSuite.ts"
import { githubTestKeys } from "../bench/support/githubKeys.ts"
import { freshDatabase } from "./support/postgres.ts"
import { migrationNames } from "./support/migrationNames.ts"

const suite = processSuite()
const { scope, children } = suite

/** A database of its own on the test run's PostgreSQL, dropped after the file. */
const database = (label: string) => Effect.runPromise(freshDatabase(label).pipe(Scope.extend(scope)))

const start = (args: ReadonlyArray<string>, env: Record<string, string | undefined>) => {
  const running = startEntrypoint(suite.bundle(), args, { LOG_FORMAT: "json", ...env })
  children.push(running)
  return running
}

/** Every stdout line parsed as JSON; a line that is not one fails with the line in the message. */
const parsedLines = (lines: ReadonlyArray<string>): Array<Record<string, unknown>> =>
  lines.filter((l) => l !== "").map((line) => {
    try {
      const value: unknown = JSON.parse(line)
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object")
      return value as Record<string, unknown>
    } catch {
      throw new Error(`a stdout line is not a JSON object: ${JSON.stringify(line)}\nall of stdout:\n${lines.join("\n")}`)
    }
  })

const isJsonWith = (test: (o: Record<string, unknown>) => boolean) => (line: string) => {
  try {
    const value: unknown = JSON.parse(line)
    return typeof value === "object" && value !== null && test(value as Record<string, unknown>)
  } catch {
    return false
  }
}

/** A kubeconfig whose API server is a closed local port: the client loads, every call fails fast. */
const unreachableKubeconfig = (port: number) =>
  [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: nowhere`,
    `  cluster:`,
    `    server: http://127.0.0.1:${port}`,
    "users:",
    "- name: nobody",
    "  user:",
    "    token: not-a-real-token",
    "contexts:",
    "- name: nowhere",
    "  context:",
    "    cluster: nowhere",
    "    user: nobody",
    "current-context: nowhere",
    ""
  ].join("\n")

describe("the entrypoint under LOG_FORMAT=json", () => {
  it("migrate reports as JSON too (the migrate Job ships its log like the Deployments)", async () => {
    const db = await database("proc_logs_migrate")
    const child = start(["migrate"], { POSTGRES_URL: db.url })
    expect(await child.exited).toBe(0)
    const lines = parsedLines(child.stdout)
    expect(lines.map((l) => l.message)).toEqual([`schema staging: applied ${migrationNames.join(", ")}`])
    expect(child.stderr.filter((l) => l !== "")).toEqual([])
  }, 60_000)

  it("an unforeseen start-up failure (a migration the database refuses) is one JSON entry with its cause, status 1", async () => {
    // the database answers, but its schema holds a schema_migrations table of another shape: nothing an operator
    // could have been told in one line, so the whole cause is logged
    const db = await database("proc_logs_unforeseen")
    const client = new Pg.Client({ connectionString: db.url })
    await client.connect()
    await client.query("CREATE SCHEMA staging; CREATE TABLE staging.schema_migrations (something_else int)")
    await client.end()
    const child = start(["migrate"], { POSTGRES_URL: db.url })
    expect(await child.exited).toBe(1)
    const lines = parsedLines(child.stdout)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ logLevel: "ERROR", message: "migrate failed" })
    expect(String(lines[0]!.cause)).toContain("column \"id\" does not exist")
    expect([...child.stdout, ...child.stderr].join("\n")).not.toContain(new URL(db.url).password || "no password in the URL")
  }, 60_000)

  it("webhook: an unsigned delivery is logged as one JSON warning with status 401, and every line is JSON", async () => {
    const db = await database("proc_logs_webhook")
    const migrated = start(["migrate"], { POSTGRES_URL: db.url })
    expect(await migrated.exited).toBe(0)
    const port = await freePort()
    const secret = "process-logs-webhook-secret"
    const child = start(["webhook"], { POSTGRES_URL: db.url, PORT: String(port), GHAPP_WEBHOOK_SECRET: secret })
    await waitForHttp(`http://127.0.0.1:${port}/health`)

    const response = await fetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": "ping", "x-github-delivery": "process-logs-1" },
      body: JSON.stringify({ zen: "Keep it logically awesome." })
    })
    expect(response.status).toBe(401)

    const line = await child.waitForLine(isJsonWith((o) => (o.annotations as Record<string, unknown> | undefined)?.status === 401))
    const entry = JSON.parse(line) as Record<string, unknown>
    expect(entry.logLevel).toBe("WARN")
    expect(entry.message).toBe("X-Hub-Signature-256 header is missing!")
    expect(entry.annotations).toMatchObject({ status: 401, error: "SignatureRejected" })

    expect(await child.stop()).toBe(0)
    const lines = parsedLines(child.stdout)
    // the start-up banner is part of the log as well
    expect(lines.some((l) => typeof l.message === "string" && l.message.includes(`http://localhost:${port}/`))).toBe(true)
    expect(JSON.stringify(lines)).not.toContain(secret)
    expect(child.stderr.filter((l) => l !== "")).toEqual([])
  }, 60_000)

  it("scheduler: the loop's start and a cycle that cannot reach the cluster are JSON lines", async () => {
    const db = await database("proc_logs_scheduler")
    const migrated = start(["migrate"], { POSTGRES_URL: db.url })
    expect(await migrated.exited).toBe(0)
    const keys = githubTestKeys()
    const [port, githubPort, kubePort] = [await freePort(), await freePort(), await freePort()]
    const child = start(["scheduler"], {
      POSTGRES_URL: db.url,
      PORT: String(port),
      GHAPP_ORG_PRIVATE_KEY: keys.org.privateKeyPem,
      GHAPP_PERSONAL_PRIVATE_KEY: keys.personal.privateKeyPem,
      GITHUB_API_URL: `http://127.0.0.1:${githubPort}`,
      K8S_KUBECONFIG: unreachableKubeconfig(kubePort)
    })
    const started = JSON.parse(await child.waitForLine(isJsonWith((o) => o.message === "scheduler loop started"))) as Record<string, unknown>
    expect(started.logLevel).toBe("INFO")
    expect(started.annotations).toMatchObject({ prefix: expect.any(String) })
    // the first cycle runs at once and finds the API server closed
    const failed = JSON.parse(
      await child.waitForLine(isJsonWith((o) => o.logLevel === "ERROR" && String(o.message).includes("cannot list runner pods")))
    ) as Record<string, unknown>
    expect(failed.annotations).toMatchObject({ error: expect.any(String) })

    expect(await child.stop()).toBe(0)
    const text = JSON.stringify(parsedLines(child.stdout))
    expect(text).not.toContain("PRIVATE KEY")
    expect(text).not.toContain("not-a-real-token")
    expect(child.stderr.filter((l) => l !== "")).toEqual([])
  }, 60_000)

  it("all --simulate: the banner and the simulation's event lines are JSON objects too", async () => {
    const { child, simPort, control } = await startSimulated(suite, "proc_logs_sim", { LOG_FORMAT: "json", SIM_SPEED: "100" })
    // the banner line that named the control API was a JSON object
    await child.waitForLine(isJsonWith((o) => typeof o.message === "string" && o.message.includes(`localhost:${simPort}/`)))
    const submitted = await fetch(`${control}/sim/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ owner: "acme", repo: "acme/app", durationSeconds: 5, count: 1 })
    })
    expect(submitted.status).toBe(200)
    const { jobIds } = (await submitted.json()) as { jobIds: Array<number> }
    // the event lines carry the event itself as fields, so a log pipeline can filter on them
    const done = JSON.parse(
      await child.waitForLine(isJsonWith((o) => (o.annotations as Record<string, unknown> | undefined)?.event === "JobDone"), 60_000)
    ) as Record<string, unknown>
    expect(done.annotations).toMatchObject({ event: "JobDone", jobId: jobIds[0], conclusion: "success" })
    expect(String(done.message)).toContain(`job ${jobIds[0]}`)

    expect(await child.stop()).toBe(0)
    const lines = parsedLines(child.stdout)
    expect(lines.some((l) => (l.annotations as Record<string, unknown> | undefined)?.event === "JobQueued")).toBe(true)
    expect(lines.some((l) => String(l.message).startsWith("riscv-runner all (simulated GitHub and cluster)"))).toBe(true)
    // the secrets generated for the run (webhook and trace API) stay out of JSON lines, which go to a log store
    expect(child.stdout.filter((l) => /dev-whsec-|dev-trace-/.test(l))).toEqual([])
    expect(child.stdout.some((l) => l.includes("not logged with LOG_FORMAT=json: set TRACE_API_SECRET to choose one"))).toBe(true)
    expect(child.stderr.filter((l) => l !== "")).toEqual([])
  }, 90_000)
})

describe("the entrypoint under LOG_FORMAT=pretty", () => {
  it("webhook: the banner and the 401 warning are printed as readable text", async () => {
    const db = await database("proc_logs_pretty")
    const port = await freePort()
    const child = start(["webhook"], { LOG_FORMAT: "pretty", POSTGRES_URL: db.url, PORT: String(port), GHAPP_WEBHOOK_SECRET: "pretty-secret" })
    await child.waitForLine((l) => l.includes(`webhook:   http://localhost:${port}/`))
    const response = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers: { "x-github-event": "ping" }, body: "{}" })
    expect(response.status).toBe(401)
    const line = await child.waitForLine((l) => l.includes("X-Hub-Signature-256 header is missing!"))
    expect(line).toMatch(/WARN/)
    expect(await child.stop()).toBe(0)
  }, 60_000)
})
