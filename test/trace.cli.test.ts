import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { runTrace } from "../src/cli/trace.ts"
import { parseTraceArgs } from "../src/cli/traceArgs.ts"
import type { TimelineEvent } from "../src/cli/traceClient.ts"
import { installation, installationRepositories, installationTargetRenamed } from "./support/webhookPayloads.ts"

/*
 * The trace CLI against a real local HTTP server that plays the webhook's trace API (and GitHub's /users) from
 * recorded timelines: one entity per diagnosis, each a list of rows as `GET /trace/entity/:id` returns them
 * and their payloads as `GET /trace/payload/:id` does.
 */

const SECRET = "trace-cli-secret-9d2e"
const GH_TOKEN = "ghp-cli-token-77"
const ORG_APP = 2167633
const PERSONAL_APP = 3131217

interface Recorded {
  readonly event: TimelineEvent
  readonly payload?: unknown
}
const timelines = new Map<number, Array<Recorded>>()
const payloads = new Map<number, unknown>()
let nextId = 1

/** Records a row of entity `entity` at minute `minute`. */
const rec = (entity: number, minute: number, event: string, outcome: string, payload?: unknown, over: Partial<TimelineEvent> = {}) => {
  const id = nextId++
  const row: TimelineEvent = {
    id,
    source: event.startsWith("auth_attempt.") ? "scheduler" : "webhook",
    event,
    outcome,
    installation_id: 777,
    app_id: ORG_APP,
    entity_type: "Organization",
    entity_id: entity,
    entity_name: "acme",
    received_at: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
    ...over
  }
  timelines.set(entity, [...(timelines.get(entity) ?? []), { event: row, payload }])
  if (payload !== undefined) payloads.set(id, payload)
}
const created = (entity: number, minute: number, repos: ReadonlyArray<string>, o: { selection?: "all" | "selected"; appId?: number } = {}) =>
  rec(entity, minute, "installation.created", "ok", installation({ action: "created", repositories: repos, selection: o.selection ?? "selected", appId: o.appId ?? ORG_APP }), { app_id: o.appId ?? ORG_APP })
const auth404 = (entity: number, minute: number, repo: string, appId = ORG_APP) =>
  rec(entity, minute, "auth_attempt.404", "auth_404", {
    installation_id: 777,
    app_id: appId,
    repository: { full_name: repo },
    workflow_job: { id: 9001 },
    http_status: 404,
    error_message: "Not Found"
  }, { app_id: appId, job_id: "9001", repo_full_name: repo })
const job = (entity: number, minute: number, jobId: number) =>
  rec(entity, minute, "workflow_job.queued", "job_stored", undefined, { job_id: String(jobId), repo_full_name: "acme/app" })

// one recorded timeline per diagnosis
const UNINSTALLED = 101
job(UNINSTALLED, 0, 5001)
created(UNINSTALLED, 1, ["acme/app"])
rec(UNINSTALLED, 2, "installation.deleted", "ok", installation({ action: "deleted", selection: "selected" }))
auth404(UNINSTALLED, 3, "acme/app")

const SUSPENDED = 102
created(SUSPENDED, 1, ["acme/app"])
rec(SUSPENDED, 2, "installation.suspend", "ok", installation({ action: "suspend", selection: "selected" }))

const REPO_REMOVED = 103
created(REPO_REMOVED, 1, ["acme/app", "acme/lib"])
rec(REPO_REMOVED, 2, "installation_repositories.removed", "ok", installationRepositories({ action: "removed", removed: ["acme/app"] }))
auth404(REPO_REMOVED, 3, "acme/app")

const RENAMED = 104
created(RENAMED, 1, ["acme/app"], { selection: "all" })
rec(RENAMED, 2, "installation_target.renamed", "ok", installationTargetRenamed("acme", { login: "acme-corp", id: RENAMED, type: "Organization" }), { entity_name: "acme-corp" })

const WRONG_APP = 105
created(WRONG_APP, 1, ["acme/app"], { selection: "all" })
auth404(WRONG_APP, 2, "acme/app", PERSONAL_APP)

const NOT_SELECTED = 106
created(NOT_SELECTED, 1, ["acme/lib"])
auth404(NOT_SELECTED, 2, "acme/app")

const HEALTHY = 107
created(HEALTHY, 1, ["acme/app"], { selection: "all" })
job(HEALTHY, 2, 7001)

const jobEntity = new Map<number, number>([[5001, UNINSTALLED], [7001, HEALTHY]])
const logins = new Map<string, number>([["acme-corp", RENAMED]])

let server: Server
let base = ""
const requests: Array<{ url: string; auth: string | undefined }> = []

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? ""
    requests.push({ url, auth: req.headers.authorization })
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" })
      res.end(typeof body === "string" ? body : JSON.stringify(body))
    }
    const user = /^\/gh\/users\/([^/]+)$/.exec(url)
    if (user !== null) {
      const id = logins.get(decodeURIComponent(user[1]!))
      return id === undefined ? send(404, { message: "Not Found" }) : send(200, { login: user[1], id, type: "Organization" })
    }
    if (req.headers.authorization !== `Bearer ${SECRET}`) return send(401, "Unauthorized")
    const events = (entity: number | undefined) =>
      entity === undefined || !timelines.has(entity) ? send(404, "Entity not found") : send(200, { events: timelines.get(entity)!.map((r) => r.event) })
    let m = /^\/trace\/entity\/(\d+)$/.exec(url)
    if (m !== null) return send(200, { events: (timelines.get(Number(m[1])) ?? []).map((r) => r.event) })
    if ((m = /^\/trace\/installation\/(\d+)$/.exec(url)) !== null) return events(Number(m[1]) === 888 ? SUSPENDED : undefined)
    if ((m = /^\/trace\/job\/(\d+)$/.exec(url)) !== null) return events(jobEntity.get(Number(m[1])))
    if ((m = /^\/trace\/payload\/(\d+)$/.exec(url)) !== null) {
      return payloads.has(Number(m[1])) ? send(200, { payload: payloads.get(Number(m[1])) }) : send(404, "Payload not found")
    }
    send(404, "not found")
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

const env = () => ({ TRACE_URL: base, TRACE_API_SECRET: SECRET, GITHUB_API_URL: `${base}/gh`, GITHUB_TOKEN: GH_TOKEN })
const trace = (...argv: Array<string>) => runTrace(argv, env())
const codesOf = async (...argv: Array<string>) => {
  const run = await trace(...argv, "--json")
  expect(run.code).toBe(0)
  return (JSON.parse(run.stdout) as { diagnoses: Array<{ code: string }> }).diagnoses.map((d) => d.code)
}

describe("trace CLI: one recorded timeline per diagnosis", () => {
  it.each([
    ["uninstalled before the auth 404", UNINSTALLED, "uninstalled_before_auth_failure"],
    ["suspended", SUSPENDED, "suspended"],
    ["repo removed", REPO_REMOVED, "repo_removed"],
    ["renamed", RENAMED, "renamed"],
    ["wrong app (app id mismatch)", WRONG_APP, "app_id_mismatch"],
    ["repo not selected", NOT_SELECTED, "repo_not_selected"]
  ])("%s", async (_name, entity, code) => {
    expect(await codesOf("--entity-id", String(entity))).toContain(code)
  })

  it("a healthy installation has no diagnosis, and the text says so", async () => {
    expect(await codesOf("--entity-id", String(HEALTHY))).toEqual([])
    expect((await trace("--entity-id", String(HEALTHY))).stdout).toContain("none: nothing in the log explains a stop")
  })
})

describe("trace CLI: targets and output", () => {
  it("the text output: a chronological table, the folded state, the diagnoses", async () => {
    const run = await trace("--entity-id", String(UNINSTALLED))
    expect(run).toMatchObject({ code: 0, stderr: "" })
    const lines = run.stdout.split("\n")
    expect(lines[0]).toBe(`Entity ${UNINSTALLED} (acme): 4 event(s)`)
    expect(lines[2]).toMatch(/^time \(UTC\)\s+id\s+source\s+event\s+outcome\s+installation\s+app\s+detail$/)
    const rows = lines.filter((l) => l.startsWith("2026-01-01T"))
    expect(rows.map((l) => l.split(/\s+/)[3])).toEqual(["workflow_job.queued", "installation.created", "installation.deleted", "auth_attempt.404"])
    expect(run.stdout).toMatch(/State:\n {2}installed\s+false\n/)
    expect(run.stdout).toContain("[uninstalled_before_auth_failure] The app was uninstalled at 2026-01-01T00:02:00.000Z")
    expect(run.stdout).not.toContain("Auth-failure payloads")
  })

  it("--installation-id and --job-id reach the same entity's timeline", async () => {
    expect(await codesOf("--installation-id", "888")).toContain("suspended")
    const run = await trace("--job-id", "5001", "--json")
    expect(JSON.parse(run.stdout)).toMatchObject({ entity_id: UNINSTALLED, state: { installed: false } })
  })

  it("--entity-name resolves the login through the GitHub API, with the token", async () => {
    expect(await codesOf("--entity-name", "acme-corp")).toContain("renamed")
    expect(requests.find((r) => r.url === "/gh/users/acme-corp")?.auth).toBe(`Bearer ${GH_TOKEN}`)
    const missing = await trace("--entity-name", "nobody-here")
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain("GitHub user nobody-here: HTTP 404")
  })

  it("--verbose includes the auth-failure payloads, in text and JSON", async () => {
    const text = await trace("--entity-id", String(REPO_REMOVED), "--verbose")
    expect(text.stdout).toContain("Auth-failure payloads:")
    expect(text.stdout).toContain(`"error_message":"Not Found"`)
    const json = JSON.parse((await trace("--entity-id", String(REPO_REMOVED), "--json", "--verbose")).stdout)
    expect(Object.values(json.auth_payloads)).toEqual([expect.objectContaining({ http_status: 404 })])
    expect(JSON.parse((await trace("--entity-id", String(REPO_REMOVED), "--json")).stdout)).not.toHaveProperty("auth_payloads")
  })

  it("errors: a wrong secret, an unknown job, a missing secret, bad usage; the secret never printed", async () => {
    const wrong = await runTrace(["--entity-id", "101"], { ...env(), TRACE_API_SECRET: "not-it" })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toContain("401, check TRACE_API_SECRET")
    expect(wrong.stderr).not.toContain("not-it")
    const unknown = await trace("--job-id", "42")
    expect(unknown).toMatchObject({ code: 1, stdout: "" })
    expect(unknown.stderr).toContain("no delivery for job 42 was recorded")
    expect((await runTrace(["--entity-id", "1"], { TRACE_URL: base })).code).toBe(2)
    expect((await trace()).code).toBe(2)
    expect((await trace("--entity-id", "1", "--job-id", "2")).code).toBe(2)
    expect((await trace("--entity-id", "x")).stderr).toContain("not a positive integer")
    for (const r of requests) expect(r.url).not.toContain(SECRET)
  })

  it("a job that was never stored: what that means, and --repo traces the repository's owner instead", async () => {
    const unknown = await trace("--job-id", "42")
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).not.toContain("Entity not found")
    for (const hint of ["Recent deliveries", "SCHEDULER_REDELIVERY_INTERVAL", "labels", "ignored_no_label", "banned", "--repo OWNER/NAME"]) {
      expect(unknown.stderr).toContain(hint)
    }
    const viaRepo = await trace("--job-id", "42", "--repo", "acme-corp/app", "--json")
    expect(viaRepo.code).toBe(0)
    expect(viaRepo.stderr).toBe(`trace: no delivery for job 42 was recorded; showing the trace of acme-corp/app's owner (entity ${RENAMED})\n`)
    expect(JSON.parse(viaRepo.stdout)).toMatchObject({ entity_id: RENAMED })
    // a known job ignores --repo; --repo alone traces the owner
    expect(JSON.parse((await trace("--job-id", "5001", "--repo", "acme-corp/app", "--json")).stdout)).toMatchObject({ entity_id: UNINSTALLED })
    expect(await codesOf("--repo", "acme-corp/app")).toContain("renamed")
    const noOwner = await trace("--job-id", "42", "--repo", "nobody-here/app")
    expect(noOwner.code).toBe(1)
    expect(noOwner.stderr).toContain("GitHub user nobody-here: HTTP 404")
    expect((await trace("--repo", "not a repo")).code).toBe(2)
    expect((await trace("--entity-id", "1", "--repo", "acme/app")).code).toBe(2)
    expect(parseTraceArgs(["--job-id", "7", "--repo=acme/app"])).toEqual({ target: { kind: "job", id: 7 }, json: false, verbose: false, repo: "acme/app" })
  })

  it("argument forms: --flag value and --flag=value", () => {
    expect(parseTraceArgs(["--job-id=12", "--json"])).toEqual({ target: { kind: "job", id: 12 }, json: true, verbose: false })
    expect(parseTraceArgs(["--entity-name", "octo-org", "-v"])).toEqual({ target: { kind: "name", login: "octo-org" }, json: false, verbose: true })
  })
})
