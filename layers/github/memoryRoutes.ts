import { HashMap, Option } from "effect"
import type { GithubOperation } from "../../src/services/Github.ts"
import { cursorPaged, deliveryJson, errorAnswer, notFoundAnswer, paged, runJobJson, runnerJson } from "./githubHttp.ts"
import type { MemoryRunnerScope } from "./memoryControl.ts"
import {
  addGroup,
  addRunnerTo,
  groupsOf,
  type InstallationRecord,
  ownerOf,
  type RunnerRecord,
  same,
  secretText,
  type State,
  tokenLifetime
} from "./memoryState.ts"
import type { GithubAnswer } from "./transport.ts"

/*
 * The in-memory GitHub's endpoints, one handler per operation, each a pure step from the state to GitHub's answer
 * (status, headers, JSON body) and the next state. Authentication and the budget are the server's; a handler
 * only checks what the installation may see, as GitHub does with a 404.
 */

export interface RouteRequest {
  readonly now: number
  /** the installation whose token signed the request; none for app (JWT) requests */
  readonly installation: InstallationRecord | undefined
  /** the app whose JWT signed the request; none for installation requests */
  readonly app: InstallationRecord["app"] | undefined
  /** the path parameters, decoded */
  readonly params: Readonly<Record<string, string>>
  /** the full address, for page parameters and Link headers */
  readonly url: URL
  readonly body: Readonly<Record<string, unknown>>
  readonly ifNoneMatch: string | undefined
}

export type Route = (s: State, request: RouteRequest) => readonly [GithubAnswer, State]

const answer = (status: number, data?: unknown, headers: Readonly<Record<string, string>> = {}): GithubAnswer => ({
  status,
  headers,
  data
})

const orgAccess = (installation: InstallationRecord | undefined, org: string) =>
  installation !== undefined && installation.installation.account.type === "Organization"
  && same(installation.installation.account.login, org)
const repoAccess = (installation: InstallationRecord | undefined, repo: string) =>
  installation !== undefined && same(installation.installation.account.login, ownerOf(repo))

const repoOf = (r: RouteRequest) => `${r.params["owner"] ?? ""}/${r.params["repo"] ?? ""}`

/** The scope a runner route names, if the installation may see it (an org's group must exist). */
const scopeOf = (s: State, r: RouteRequest, forOrg: boolean, groupId: number): MemoryRunnerScope | undefined => {
  if (forOrg) {
    const org = r.params["org"] ?? ""
    if (!orgAccess(r.installation, org) || !groupsOf(s, org).some((g) => g.id === groupId)) return undefined
    return { _tag: "Org", org, groupId }
  }
  const repo = repoOf(r)
  return repoAccess(r.installation, repo) ? { _tag: "Repo", repo } : undefined
}

const inScope = (r: RunnerRecord, scope: MemoryRunnerScope) =>
  scope._tag === "Org"
    ? r.scope._tag === "Org" && same(r.scope.org, scope.org) && r.scope.groupId === scope.groupId
    : r.scope._tag === "Repo" && same(r.scope.repo, scope.repo)

/** Runner names are unique within an org (all groups) or a repository. */
const sameHome = (r: RunnerRecord, scope: MemoryRunnerScope) =>
  scope._tag === "Org"
    ? r.scope._tag === "Org" && same(r.scope.org, scope.org)
    : r.scope._tag === "Repo" && same(r.scope.repo, scope.repo)

/** A conditional GET's answer: the version is the ETag, and a matching If-None-Match gets a bodiless 304. */
const conditional = (r: RouteRequest, version: number, body: unknown): GithubAnswer => {
  const etag = `W/"${version}"`
  return r.ifNoneMatch === etag ? answer(304, undefined, { etag }) : answer(200, body, { etag })
}

/** A listing's ETag: it changes whenever a listed item changes (each item's version is fresh on every change). */
const listingTag = (items: ReadonlyArray<{ readonly id: number; readonly version: number }>) => {
  let h = 17
  for (const i of items) h = (Math.imul(h, 31) + i.id * 7 + i.version) | 0
  return `W/"l${items.length}-${(h >>> 0).toString(36)}"`
}
const conditionalList = (r: RouteRequest, etag: string, body: unknown): GithubAnswer =>
  r.ifNoneMatch === etag ? answer(304, undefined, { etag }) : answer(200, body, { etag })

/** GitHub redelivers only deliveries of the last three days. */
const redeliveryWindow = 3 * 24 * 3600 * 1000

const installationOf = (s: State, r: RouteRequest) => {
  const found = Option.getOrUndefined(HashMap.get(s.installations, Number(r.params["installation_id"])))
  // GitHub answers 404 when the installation belongs to the other app.
  return found !== undefined && found.app === r.app ? found : undefined
}

const jit = (forOrg: boolean): Route => (s, r) => {
  const scope = scopeOf(s, r, forOrg, Number(r.body["runner_group_id"]))
  if (scope === undefined) return [notFoundAnswer, s]
  const name = String(r.body["name"])
  if (HashMap.some(s.runners, (x) => x.name === name && sameHome(x, scope))) {
    return [errorAnswer(409, `Already exists - A runner with the name ${name} already exists.`), s]
  }
  const labels = Array.isArray(r.body["labels"]) ? r.body["labels"].map(String) : []
  const [runner, s1] = addRunnerTo(s, scope, { name, status: "offline", busy: false, labels, stuckBusy: false })
  const config = btoa(JSON.stringify({ runner: runner.id, name: runner.name, secret: secretText("jit_", s1.nextId) }))
  return [
    answer(201, { runner: runnerJson(runner), encoded_jit_config: config }),
    { ...s1, nextId: s1.nextId + 1, jits: HashMap.set(s1.jits, config, runner.id) }
  ]
}

const listRunners = (forOrg: boolean): Route => (s, r) => {
  const scope = scopeOf(s, r, forOrg, Number(r.params["runner_group_id"]))
  if (scope === undefined) return [notFoundAnswer, s]
  const all = Array.from(HashMap.values(s.runners)).filter((x) => inScope(x, scope)).sort((a, b) => a.id - b.id)
  const { headers, slice } = paged(all, r.url)
  return [answer(200, { total_count: all.length, runners: slice.map(runnerJson) }, headers), s]
}

const deleteRunner = (forOrg: boolean): Route => (s, r) => {
  const home: MemoryRunnerScope = forOrg ? { _tag: "Org", org: r.params["org"] ?? "", groupId: 0 } : {
    _tag: "Repo",
    repo: repoOf(r)
  }
  const allowed = home._tag === "Org" ? orgAccess(r.installation, home.org) : repoAccess(r.installation, home.repo)
  const id = Number(r.params["runner_id"])
  const runner = Option.getOrUndefined(HashMap.get(s.runners, id))
  if (!allowed || runner === undefined || !sameHome(runner, home)) return [notFoundAnswer, s]
  if (runner.busy) return [errorAnswer(422, `Bad request - Runner "${runner.name}" is still running a job"`), s]
  return [answer(204), { ...s, runners: HashMap.remove(s.runners, id) }]
}

export const routes: Record<GithubOperation, Route> = {
  installationToken: (s, r) => {
    const found = installationOf(s, r)
    if (found === undefined) return [notFoundAnswer, s]
    const token = secretText("ghs_", s.nextId)
    const expiresAt = r.now + tokenLifetime
    return [
      answer(201, { token, expires_at: new Date(expiresAt).toISOString(), repository_selection: "all" }),
      {
        ...s,
        nextId: s.nextId + 1,
        tokens: HashMap.set(s.tokens, token, { installationId: found.installation.id, expiresAt })
      }
    ]
  },
  getInstallation: (s, r) => {
    const found = installationOf(s, r)
    return [found === undefined ? notFoundAnswer : answer(200, found.installation), s]
  },
  listRunnerGroups: (s, r) => {
    const org = r.params["org"] ?? ""
    if (!orgAccess(r.installation, org)) return [notFoundAnswer, s]
    const all = groupsOf(s, org)
    const { headers, slice } = paged(all, r.url)
    const groups = slice.map((g) => ({
      id: g.id,
      name: g.name,
      visibility: g.visibility,
      default: g.id === 1,
      allows_public_repositories: g.allowsPublicRepositories
    }))
    return [answer(200, { total_count: all.length, runner_groups: groups }, headers), s]
  },
  createRunnerGroup: (s, r) => {
    const org = r.params["org"] ?? ""
    if (!orgAccess(r.installation, org)) return [notFoundAnswer, s]
    const name = String(r.body["name"])
    if (groupsOf(s, org).some((g) => g.name === name)) return [errorAnswer(409, "Group name already exists"), s]
    const [group, next] = addGroup(s, org, {
      name,
      visibility: String(r.body["visibility"] ?? "all"),
      allowsPublicRepositories: r.body["allows_public_repositories"] === true
    })
    return [answer(201, { id: group.id, name: group.name, visibility: group.visibility, default: false }), next]
  },
  createJitConfigOrg: jit(true),
  createJitConfigRepo: jit(false),
  listRunnersOrgGroup: listRunners(true),
  listRunnersRepo: listRunners(false),
  deleteRunnerOrg: deleteRunner(true),
  deleteRunnerRepo: deleteRunner(false),
  getJob: (s, r) => {
    const repo = repoOf(r)
    const id = Number(r.params["job_id"])
    const j = Option.getOrUndefined(HashMap.get(s.jobs, id))
    if (j === undefined || !same(j.repo, repo) || !repoAccess(r.installation, repo)) return [notFoundAnswer, s]
    return [conditional(r, j.version, { id, ...j.job, labels: j.labels }), s]
  },
  getRun: (s, r) => {
    const repo = repoOf(r)
    const id = Number(r.params["run_id"])
    const run = Option.getOrUndefined(HashMap.get(s.runs, id))
    if (run === undefined || !same(run.repo, repo) || !repoAccess(r.installation, repo)) return [notFoundAnswer, s]
    return [conditional(r, run.version, { id, ...run.run }), s]
  },
  listHookDeliveries: (s, r) => {
    if (r.app === undefined) return [errorAnswer(401, "A JSON web token could not be decoded"), s]
    const { headers, slice } = cursorPaged(s.deliveries.filter((d) => d.app === r.app), r.url)
    return [answer(200, slice.map(deliveryJson), headers), s]
  },
  redeliverHookDelivery: (s, r) => {
    if (r.app === undefined) return [errorAnswer(401, "A JSON web token could not be decoded"), s]
    const id = Number(r.params["delivery_id"])
    const found = s.deliveries.find((d) => d.id === id && d.app === r.app)
    if (found === undefined) return [notFoundAnswer, s]
    if (r.now - found.deliveredAt > redeliveryWindow) {
      return [errorAnswer(422, "Validation Failed: deliveries older than 3 days cannot be redelivered"), s]
    }
    // The attempt itself is made by whoever sends deliveries (the simulated world), told by the server.
    return [answer(202, {}), s]
  },
  listQueuedRuns: (s, r) => {
    const repo = repoOf(r)
    if (!repoAccess(r.installation, repo)) return [notFoundAnswer, s]
    const wanted = r.url.searchParams.get("status")
    const runs = Array.from(HashMap.values(s.runs))
      .filter((x) => same(x.repo, repo) && (wanted === null || x.run.status === wanted))
      .sort((a, b) => b.id - a.id)
    const { headers, slice } = paged(runs, r.url)
    const body = { total_count: runs.length, workflow_runs: slice.map((x) => ({ id: x.id, ...x.run })) }
    const listed = conditionalList(r, listingTag(slice), body)
    return [{ ...listed, headers: { ...headers, ...listed.headers } }, s]
  },
  listRunJobs: (s, r) => {
    const repo = repoOf(r)
    const runId = Number(r.params["run_id"])
    const run = Option.getOrUndefined(HashMap.get(s.runs, runId))
    if (run === undefined || !same(run.repo, repo) || !repoAccess(r.installation, repo)) return [notFoundAnswer, s]
    const jobs = Array.from(HashMap.values(s.jobs)).filter((j) => j.job.run_id === runId).sort((a, b) => a.id - b.id)
    const { headers, slice } = paged(jobs, r.url)
    const body = {
      total_count: jobs.length,
      jobs: slice.map((j) =>
        runJobJson({
          id: j.id,
          repo: j.repo,
          runId,
          status: j.job.status,
          conclusion: j.job.conclusion,
          runnerName: j.job.runner_name,
          labels: j.labels
        })
      )
    }
    const listed = conditionalList(r, listingTag(slice), body)
    return [{ ...listed, headers: { ...headers, ...listed.headers } }, s]
  }
}
