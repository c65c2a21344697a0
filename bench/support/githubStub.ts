import { createHash, type KeyObject, randomBytes, verify } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, type Scope } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import type { GithubInstallation } from "../../src/services/Github.ts"
import type { MemoryRunnerGroup, MemoryRunnerScope } from "../../layers/github/memory.ts"
import {
  budgetHeaders,
  cursorPaged,
  type DeliveryAttempt,
  deliveryJson,
  paged,
  runJobJson,
  runnerJson
} from "../../layers/github/githubHttp.ts"
import { checkBody, checkParameters, matchOperation } from "./githubOpenapi.ts"

/*
 * A local stand-in for api.github.com (node:http on port 0) for the live layer's tests. It serves the dozen
 * endpoints the service uses with GitHub's semantics (paged listings with Link headers, ETags and 304s, budgets
 * in x-ratelimit-* headers, 404/409/422 answers), checks app JWTs against the apps' public keys, and checks every
 * request against GitHub's OpenAPI description. Anything that does not fit is answered 400 and recorded in
 * `violations`, so a test fails either way.
 */

export interface StubApp {
  readonly appId: number
  /** the account type the app serves */
  readonly serves: EntityType
  readonly publicKey: KeyObject
}

interface StubRunner {
  readonly id: number
  readonly name: string
  status: "online" | "offline"
  busy: boolean
  readonly scope: MemoryRunnerScope
  readonly labels: ReadonlyArray<string>
}

interface Scripted {
  readonly method: string
  readonly path: RegExp
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: unknown
  times: number
}

interface Budget {
  limit: number
  remaining: number
  resetAt: number
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()

export class GithubStubState {
  readonly installations = new Map<number, { installation: GithubInstallation; appId: number }>()
  readonly groups = new Map<string, Array<MemoryRunnerGroup>>()
  readonly runners = new Map<number, StubRunner>()
  readonly jits = new Map<string, number>()
  readonly jobs = new Map<
    number,
    {
      repo: string
      status: string
      conclusion: string | null
      runner_name: string | null
      run_id: number
      labels: ReadonlyArray<string>
    }
  >()
  readonly runs = new Map<number, { repo: string; status: string | null; conclusion: string | null }>()
  readonly tokens = new Map<string, { installationId: number; expiresAt: number }>()
  readonly budgets = new Map<number, Budget>()
  /** the apps' delivery logs, oldest first */
  readonly deliveries: Array<DeliveryAttempt & { readonly appId: number }> = []
  /** redeliveries asked for (attempt ids) */
  readonly redeliveries: Array<{ readonly appId: number; readonly attemptId: number }> = []
  readonly scripted: Array<Scripted> = []
  readonly violations: Array<string> = []
  readonly requests: Array<{ readonly method: string; readonly path: string; readonly status: number }> = []
  tokenRequests = 0
  private nextId = 100

  constructor(readonly apps: ReadonlyArray<StubApp>) {}

  id() {
    return this.nextId++
  }

  appFor(entityType: EntityType): StubApp {
    const app = this.apps.find((a) => a.serves === entityType)
    if (app === undefined) throw new Error(`no stub app serves ${entityType}`)
    return app
  }

  groupsOf(org: string): Array<MemoryRunnerGroup> {
    const key = org.toLowerCase()
    let list = this.groups.get(key)
    if (list === undefined) {
      list = [{ org, id: 1, name: "Default", visibility: "all", allowsPublicRepositories: false }]
      this.groups.set(key, list)
    }
    return list
  }

  addRunner(
    scope: MemoryRunnerScope,
    r: { name: string; status?: "online" | "offline"; busy?: boolean; labels?: ReadonlyArray<string> }
  ) {
    const runner: StubRunner = {
      id: this.id(),
      name: r.name,
      status: r.status ?? "online",
      busy: r.busy ?? false,
      scope,
      labels: r.labels ?? []
    }
    this.runners.set(runner.id, runner)
    return runner
  }

  /** The next `times` requests matching method and path get this answer instead of the real one. */
  script(
    answer: {
      method: string
      path: RegExp
      status: number
      headers?: Record<string, string>
      body?: unknown
      times?: number
    }
  ) {
    this.scripted.push({ headers: {}, body: undefined, times: 1, ...answer })
  }

  budget(installationId: number): Budget {
    let b = this.budgets.get(installationId)
    const now = Date.now()
    if (b === undefined || b.resetAt <= now) {
      b = { limit: b?.limit ?? 5000, remaining: b?.limit ?? 5000, resetAt: now + 3_600_000 }
      this.budgets.set(installationId, b)
    }
    return b
  }
}

// --- HTTP plumbing -----------------------------------------------------------------------------------------------

interface Reply {
  readonly status: number
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
}

const json = (status: number, body?: unknown, headers?: Record<string, string>): Reply => ({
  status,
  body,
  ...(headers ? { headers } : {})
})
const notFound = json(404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" })

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const base64url = (s: string) => Buffer.from(s, "base64url")

/** Verifies an RS256 app JWT; returns the app it was signed for. */
const appOfJwt = (state: GithubStubState, jwt: string): StubApp | undefined => {
  const [h, p, sig] = jwt.split(".")
  if (h === undefined || p === undefined || sig === undefined) return undefined
  let claims: { iss?: unknown; exp?: unknown; iat?: unknown }
  try {
    claims = JSON.parse(base64url(p).toString("utf8"))
    if (JSON.parse(base64url(h).toString("utf8")).alg !== "RS256") return undefined
  } catch {
    return undefined
  }
  const app = state.apps.find((a) => String(a.appId) === String(claims.iss))
  if (app === undefined) return undefined
  if (!verify("RSA-SHA256", Buffer.from(`${h}.${p}`), app.publicKey, base64url(sig))) return undefined
  const now = Math.floor(Date.now() / 1000)
  // GitHub refuses JWTs that live longer than 10 minutes or have expired.
  if (
    typeof claims.exp !== "number" || typeof claims.iat !== "number" || claims.exp <= now
    || claims.exp - claims.iat > 600
  ) return undefined
  return app
}

const groupJson = (g: MemoryRunnerGroup, base: string) => ({
  id: g.id,
  name: g.name,
  visibility: g.visibility,
  default: g.id === 1,
  runners_url: `${base}/orgs/${g.org}/actions/runner-groups/${g.id}/runners`,
  inherited: false,
  allows_public_repositories: g.allowsPublicRepositories,
  restricted_to_workflows: false,
  selected_workflows: [],
  workflow_restrictions_read_only: false
})

// --- the API ---------------------------------------------------------------------------------------------------

const handle = async (state: GithubStubState, prefix: string, origin: string, req: IncomingMessage): Promise<Reply> => {
  const method = req.method ?? "GET"
  const url = new URL(req.url ?? "/", origin)
  const raw = await readBody(req)
  if (!url.pathname.startsWith(prefix + "/")) return json(404, { message: `outside ${prefix}` })
  const path = url.pathname.slice(prefix.length)

  // 1. Does the request fit GitHub's description?
  const match = matchOperation(method, path)
  if (match === undefined) {
    state.violations.push(`${method} ${path}: no such operation in GitHub's REST description`)
    return json(400, { message: "spec violation" })
  }
  let body: unknown
  try {
    body = raw === "" ? undefined : JSON.parse(raw)
  } catch {
    state.violations.push(`${method} ${path}: body is not JSON`)
    return json(400, { message: "spec violation" })
  }
  const problems = [...checkParameters(match, url.searchParams), ...checkBody(match, body as never)]
  if (problems.length > 0) {
    state.violations.push(...problems.map((p) => `${match.operationId}: ${p}`))
    return json(400, { message: "spec violation", problems })
  }

  // 2. Scripted answers (secondary limits, 5xx) come before anything else, as they would from GitHub's edge.
  const scripted = state.scripted.find((s) => s.times > 0 && s.method === method && s.path.test(path))
  if (scripted !== undefined) {
    scripted.times--
    return json(scripted.status, scripted.body, { ...scripted.headers })
  }

  // 3. Authentication: app JWTs for /app/..., installation tokens elsewhere.
  const authorization = req.headers["authorization"] ?? ""
  const [scheme, credential] = authorization.split(" ")
  const p = match.pathParams
  if (match.template.startsWith("/app/")) {
    const app = scheme?.toLowerCase() === "bearer" && credential ? appOfJwt(state, credential) : undefined
    if (app === undefined) return json(401, { message: "A JSON web token could not be decoded" })
    if (match.operationId === "apps/list-webhook-deliveries") {
      const { slice, headers } = cursorPaged(state.deliveries.filter((d) => d.appId === app.appId), url)
      return json(200, slice.map(deliveryJson), headers)
    }
    if (match.operationId === "apps/redeliver-webhook-delivery") {
      const attemptId = Number(p["delivery_id"])
      const found = state.deliveries.find((d) => d.id === attemptId && d.appId === app.appId)
      if (found === undefined) return notFound
      if (Date.now() - found.deliveredAt > 3 * 24 * 3600 * 1000) return json(422, { message: "Validation Failed" })
      state.redeliveries.push({ appId: app.appId, attemptId })
      return json(202, {})
    }
    if (match.operationId === "apps/create-installation-access-token") state.tokenRequests++
    const installation = state.installations.get(Number(p["installation_id"]))
    // GitHub answers 404 when the installation belongs to the other app.
    if (installation === undefined || installation.appId !== app.appId) return notFound
    if (match.operationId === "apps/create-installation-access-token") {
      const token = `ghs_${randomBytes(18).toString("hex")}`
      state.tokens.set(token, { installationId: installation.installation.id, expiresAt: Date.now() + 3_600_000 })
      return json(201, {
        token,
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
        permissions: {},
        repository_selection: "all"
      })
    }
    return json(200, {
      ...installation.installation,
      app_id: app.appId,
      target_type: installation.installation.account.type
    })
  }
  const token = credential ? state.tokens.get(credential) : undefined
  const installation = token && token.expiresAt > Date.now() ? state.installations.get(token.installationId) : undefined
  if (
    !(scheme?.toLowerCase() === "token" || scheme?.toLowerCase() === "bearer") || token === undefined
    || installation === undefined
  ) {
    return json(401, { message: "Bad credentials" })
  }

  // 4. The installation's budget; every answer but a 304 spends one.
  const budget = state.budget(token.installationId)
  if (budget.remaining <= 0) {
    return json(
      403,
      { message: `API rate limit exceeded for installation ID ${token.installationId}.` },
      budgetHeaders(budget)
    )
  }
  const reply = route(
    state,
    match.operationId,
    p,
    url,
    body as Record<string, unknown>,
    installation.installation,
    req,
    prefix,
    origin
  )
  if (reply.status !== 304) budget.remaining--
  return { ...reply, headers: { ...budgetHeaders(budget), ...reply.headers } }
}

const route = (
  state: GithubStubState,
  operationId: string,
  p: Readonly<Record<string, string>>,
  url: URL,
  body: Record<string, unknown>,
  installation: GithubInstallation,
  req: IncomingMessage,
  prefix: string,
  origin: string
): Reply => {
  const publicBase = origin + prefix
  const org = p["org"] ?? ""
  const repo = `${p["owner"] ?? ""}/${p["repo"] ?? ""}`
  const orgOk = installation.account.type === "Organization" && same(installation.account.login, org)
  const repoOk = same(installation.account.login, p["owner"] ?? "")
  const runnerId = Number(p["runner_id"])

  // Conditional GETs: a weak ETag over the body; a matching If-None-Match gets 304 and no body.
  const conditional = (value: unknown): Reply => {
    const etag = `W/"${createHash("sha1").update(JSON.stringify(value)).digest("hex")}"`
    return req.headers["if-none-match"] === etag ? json(304, undefined, { etag }) : json(200, value, { etag })
  }

  switch (operationId) {
    case "actions/list-self-hosted-runner-groups-for-org": {
      if (!orgOk) return notFound
      const all = state.groupsOf(org)
      const { slice, headers } = paged(all, url)
      return json(200, { total_count: all.length, runner_groups: slice.map((g) => groupJson(g, publicBase)) }, headers)
    }
    case "actions/create-self-hosted-runner-group-for-org": {
      if (!orgOk) return notFound
      const all = state.groupsOf(org)
      if (all.some((g) => g.name === body["name"])) return json(409, { message: "Group name already exists" })
      const group: MemoryRunnerGroup = {
        org,
        id: state.id(),
        name: String(body["name"]),
        visibility: String(body["visibility"] ?? "all"),
        allowsPublicRepositories: body["allows_public_repositories"] === true
      }
      all.push(group)
      return json(201, groupJson(group, publicBase))
    }
    case "actions/generate-runner-jitconfig-for-org":
    case "actions/generate-runner-jitconfig-for-repo": {
      const forOrg = operationId.endsWith("org")
      if (forOrg ? !orgOk : !repoOk) return notFound
      const groupId = Number(body["runner_group_id"])
      if (forOrg && !state.groupsOf(org).some((g) => g.id === groupId)) return notFound
      const name = String(body["name"])
      const taken = [...state.runners.values()].some(
        (r) =>
          r.name === name
          && (forOrg
            ? r.scope._tag === "Org" && same(r.scope.org, org)
            : r.scope._tag === "Repo" && same(r.scope.repo, repo))
      )
      if (taken) return json(409, { message: `Already exists - A runner with the name ${name} already exists.` })
      const scope: MemoryRunnerScope = forOrg ? { _tag: "Org", org, groupId } : { _tag: "Repo", repo }
      const runner = state.addRunner(scope, {
        name,
        status: "offline",
        busy: false,
        labels: body["labels"] as Array<string>
      })
      const jit = Buffer.from(JSON.stringify({ ".runner": runner.id, secret: randomBytes(24).toString("hex") }))
        .toString("base64")
      state.jits.set(jit, runner.id)
      return json(201, { runner: runnerJson(runner), encoded_jit_config: jit })
    }
    case "actions/list-self-hosted-runners-in-group-for-org":
    case "actions/list-self-hosted-runners-for-repo": {
      const forOrg = operationId.endsWith("org")
      if (forOrg ? !orgOk : !repoOk) return notFound
      const groupId = Number(p["runner_group_id"])
      if (forOrg && !state.groupsOf(org).some((g) => g.id === groupId)) return notFound
      const all = [...state.runners.values()]
        .filter((
          r
        ) => (forOrg
          ? r.scope._tag === "Org" && same(r.scope.org, org) && r.scope.groupId === groupId
          : r.scope._tag === "Repo" && same(r.scope.repo, repo))
        )
        .sort((a, b) => a.id - b.id)
      const { slice, headers } = paged(all, url)
      return json(200, { total_count: all.length, runners: slice.map(runnerJson) }, headers)
    }
    case "actions/delete-self-hosted-runner-from-org":
    case "actions/delete-self-hosted-runner-from-repo": {
      const forOrg = operationId.endsWith("org")
      if (forOrg ? !orgOk : !repoOk) return notFound
      const r = state.runners.get(runnerId)
      if (
        r === undefined
        || (forOrg
          ? !(r.scope._tag === "Org" && same(r.scope.org, org))
          : !(r.scope._tag === "Repo" && same(r.scope.repo, repo)))
      ) return notFound
      if (r.busy) return json(422, { message: `Bad request - Runner "${r.name}" is still running a job"` })
      state.runners.delete(runnerId)
      return json(204)
    }
    case "actions/get-job-for-workflow-run": {
      const job = state.jobs.get(Number(p["job_id"]))
      if (job === undefined || !repoOk || !same(job.repo, repo)) return notFound
      return conditional({
        id: Number(p["job_id"]),
        run_id: job.run_id,
        status: job.status,
        conclusion: job.conclusion,
        runner_name: job.runner_name,
        name: "build",
        head_sha: "0000000000000000000000000000000000000000",
        labels: ["ubuntu-24.04-riscv"]
      })
    }
    case "actions/get-workflow-run": {
      const run = state.runs.get(Number(p["run_id"]))
      if (run === undefined || !repoOk || !same(run.repo, repo)) return notFound
      return conditional({
        id: Number(p["run_id"]),
        status: run.status,
        conclusion: run.conclusion,
        name: "CI",
        event: "push"
      })
    }
    case "actions/list-workflow-runs-for-repo": {
      if (!repoOk) return notFound
      const wanted = url.searchParams.get("status")
      const runs = [...state.runs.entries()]
        .filter(([, r]) => same(r.repo, repo) && (wanted === null || r.status === wanted))
        .sort(([a], [b]) => b - a)
      const { slice, headers } = paged(runs, url)
      const body = {
        total_count: runs.length,
        workflow_runs: slice.map(([id, r]) => ({ id, status: r.status, conclusion: r.conclusion, name: "CI", event: "push" }))
      }
      const reply = conditional(body)
      return { ...reply, headers: { ...headers, ...reply.headers } }
    }
    case "actions/list-jobs-for-workflow-run": {
      const runId = Number(p["run_id"])
      const run = state.runs.get(runId)
      if (run === undefined || !repoOk || !same(run.repo, repo)) return notFound
      const jobs = [...state.jobs.entries()].filter(([, j]) => j.run_id === runId).sort(([a], [b]) => a - b)
      const { slice, headers } = paged(jobs, url)
      const reply = conditional({
        total_count: jobs.length,
        jobs: slice.map(([id, j]) =>
          runJobJson({
            id,
            repo: j.repo,
            runId,
            status: j.status,
            conclusion: j.conclusion,
            runnerName: j.runner_name,
            labels: j.labels
          })
        )
      })
      return { ...reply, headers: { ...headers, ...reply.headers } }
    }
    default:
      state.violations.push(`${operationId}: the stub does not serve it`)
      return json(501, { message: "not served by the stub" })
  }
}

/** Starts the stub on a free local port; it stops when the scope closes. `prefix` mimics GHES's `/api/v3`. */
export const startGithubStub = (
  apps: ReadonlyArray<StubApp>,
  prefix = ""
): Effect.Effect<{ readonly url: string; readonly state: GithubStubState }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly state: GithubStubState; readonly close: () => Promise<void> }>(
      (resume) => {
        const state = new GithubStubState(apps)
        let origin = ""
        const server = createServer((req: IncomingMessage, res: ServerResponse) => {
          handle(state, prefix, origin, req).then(
            (reply) => {
              state.requests.push({ method: req.method ?? "", path: req.url ?? "", status: reply.status })
              const headers: Record<string, string> = { ...reply.headers }
              const text = reply.body === undefined || reply.status === 204 || reply.status === 304
                ? ""
                : JSON.stringify(reply.body)
              if (text !== "") headers["content-type"] = "application/json; charset=utf-8"
              res.writeHead(reply.status, headers)
              res.end(text)
            },
            (error: unknown) => {
              state.violations.push(`stub crashed: ${String(error)}`)
              res.writeHead(500).end()
            }
          )
        })
        server.listen(0, "127.0.0.1", () => {
          origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
          resume(
            Effect.succeed({
              url: origin + prefix,
              state,
              close: () =>
                new Promise<void>((done) => {
                  server.closeAllConnections()
                  server.close(() => done())
                })
            })
          )
        })
      }
    ),
    (stub) => Effect.promise(stub.close)
  )
