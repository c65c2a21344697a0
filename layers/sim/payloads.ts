/*
 * The deliveries the simulated GitHub sends, shaped like GitHub's own (`workflow_job` and `installation` as a
 * GitHub App receives them): the fields our webhook reads, plus the ids, URLs and timestamps GitHub always sends,
 * so the audit log's trimming and the trace API see realistic bodies. Pure functions of the simulation's records.
 */

export type OwnerType = "Organization" | "User"

export interface SimOwner {
  readonly login: string
  readonly id: number
  readonly type: OwnerType
  readonly installationId: number
}

export interface SimRepo {
  readonly fullName: string
  readonly id: number
}

export interface WorkflowJobFacts {
  readonly owner: SimOwner
  readonly repo: SimRepo
  readonly jobId: number
  readonly runId: number
  readonly labels: ReadonlyArray<string>
  readonly action: "queued" | "in_progress" | "completed"
  readonly conclusion: string | null
  readonly runner: { readonly id: number; readonly name: string } | null
  readonly createdAt: Date
  readonly startedAt: Date | null
  readonly completedAt: Date | null
}

const API = "https://api.github.com"
const WEB = "https://github.com"

/** GitHub's timestamps: second precision, `Z`. */
const stamp = (d: Date | null): string | null => (d === null ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z"))

const nodeId = (kind: string, id: number) => Buffer.from(`${kind}${id}`).toString("base64").replace(/=+$/, "")

const account = (owner: SimOwner) => ({
  login: owner.login,
  id: owner.id,
  node_id: nodeId(owner.type === "User" ? "04:User" : "012:Organization", owner.id),
  avatar_url: `https://avatars.githubusercontent.com/u/${owner.id}?v=4`,
  gravatar_id: "",
  url: `${API}/users/${owner.login}`,
  html_url: `${WEB}/${owner.login}`,
  followers_url: `${API}/users/${owner.login}/followers`,
  repos_url: `${API}/users/${owner.login}/repos`,
  events_url: `${API}/users/${owner.login}/events{/privacy}`,
  type: owner.type,
  site_admin: false
})

const repository = (owner: SimOwner, repo: SimRepo) => {
  const name = repo.fullName.slice(repo.fullName.indexOf("/") + 1)
  return {
    id: repo.id,
    node_id: nodeId("010:Repository", repo.id),
    name,
    full_name: repo.fullName,
    private: false,
    owner: account(owner),
    html_url: `${WEB}/${repo.fullName}`,
    description: null,
    fork: false,
    url: `${API}/repos/${repo.fullName}`,
    hooks_url: `${API}/repos/${repo.fullName}/hooks`,
    issues_url: `${API}/repos/${repo.fullName}/issues{/number}`,
    pulls_url: `${API}/repos/${repo.fullName}/pulls{/number}`,
    clone_url: `${WEB}/${repo.fullName}.git`,
    default_branch: "main",
    visibility: "public"
  }
}

const installationRef = (owner: SimOwner) => ({
  id: owner.installationId,
  node_id: nodeId("023:Integration Installation", owner.installationId)
})

/** A `workflow_job` delivery for one action of one job. */
export const workflowJobPayload = (f: WorkflowJobFacts) => {
  const jobUrl = `${API}/repos/${f.repo.fullName}/actions/jobs/${f.jobId}`
  const status = f.action
  return {
    action: f.action,
    workflow_job: {
      id: f.jobId,
      run_id: f.runId,
      workflow_name: "CI",
      head_branch: "main",
      run_url: `${API}/repos/${f.repo.fullName}/actions/runs/${f.runId}`,
      run_attempt: 1,
      node_id: nodeId("08:CheckRun", f.jobId),
      head_sha: (f.runId * 2654435761).toString(16).padStart(40, "0").slice(-40),
      url: jobUrl,
      html_url: `${WEB}/${f.repo.fullName}/actions/runs/${f.runId}/job/${f.jobId}`,
      status,
      conclusion: f.conclusion,
      created_at: stamp(f.createdAt),
      started_at: stamp(f.startedAt ?? f.createdAt),
      completed_at: stamp(f.completedAt),
      name: "build",
      steps: [],
      check_run_url: `${API}/repos/${f.repo.fullName}/check-runs/${f.jobId}`,
      labels: [...f.labels],
      runner_id: f.runner?.id ?? null,
      runner_name: f.runner?.name ?? null,
      runner_group_id: f.runner === null ? null : 1,
      runner_group_name: f.runner === null ? null : "Default"
    },
    repository: repository(f.owner, f.repo),
    ...(f.owner.type === "Organization"
      ? { organization: { login: f.owner.login, id: f.owner.id, url: `${API}/orgs/${f.owner.login}`, description: null } }
      : {}),
    sender: account(f.owner),
    installation: installationRef(f.owner)
  }
}

/** An `installation.created` delivery: the owner installed the app for all of its repositories. */
export const installationCreatedPayload = (owner: SimOwner, appId: number, repos: ReadonlyArray<SimRepo>, at: Date) => ({
  action: "created",
  installation: {
    id: owner.installationId,
    account: account(owner),
    repository_selection: "all",
    access_tokens_url: `${API}/app/installations/${owner.installationId}/access_tokens`,
    repositories_url: `${API}/installation/repositories`,
    html_url: `${WEB}/settings/installations/${owner.installationId}`,
    app_id: appId,
    target_id: owner.id,
    target_type: owner.type,
    permissions: { administration: "write", actions: "read", metadata: "read" },
    events: ["workflow_job"],
    created_at: stamp(at),
    updated_at: stamp(at),
    single_file_name: null,
    suspended_at: null
  },
  repositories: repos.map((r) => ({
    id: r.id,
    node_id: nodeId("010:Repository", r.id),
    name: r.fullName.slice(r.fullName.indexOf("/") + 1),
    full_name: r.fullName,
    private: false
  })),
  requester: null,
  sender: account(owner)
})
