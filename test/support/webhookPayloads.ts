import examples from "@octokit/webhooks-examples"

/*
 * Deliveries for the webhook tests, built from GitHub's real payloads (`@octokit/webhooks-examples`) with the
 * fields a case is about replaced. Every builder returns a fresh deep copy.
 */

type Json = Record<string, any>

export const allExamples: ReadonlyArray<{ readonly name: string; readonly examples: ReadonlyArray<Json> }> = examples as never

/** A deep copy of GitHub's example of `name` (with `action`, when given). */
export const example = (name: string, action?: string): Json => {
  const found = allExamples.find((e) => e.name === name)?.examples.find((x) => action === undefined || x.action === action)
  if (found === undefined) throw new Error(`no example ${name}.${action}`)
  return structuredClone(found)
}

export interface Owner {
  readonly login: string
  readonly id: number
  readonly type: string
}

export const ACME: Owner = { login: "acme", id: 424242, type: "Organization" }
export const ALICE: Owner = { login: "alice", id: 515151, type: "User" }
export const RISC_LABEL = "ubuntu-24.04-riscv"

export interface JobSpec {
  readonly action?: string
  readonly jobId?: number
  readonly labels?: ReadonlyArray<unknown> | null
  readonly owner?: Owner
  /** repository name without the owner */
  readonly repo?: string
  readonly repoId?: number
  readonly installationId?: number
  readonly runnerName?: string | null
  readonly htmlUrl?: string
}

/** A `workflow_job` delivery as a GitHub App receives it, on GitHub's queued example. */
export const workflowJob = (spec: JobSpec = {}): Json => {
  const p = example("workflow_job", "queued")
  const owner = spec.owner ?? ACME
  const repo = spec.repo ?? "ci"
  const jobId = spec.jobId ?? 9001
  p.action = spec.action ?? "queued"
  p.installation = { id: spec.installationId ?? 777, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc3" }
  p.repository.owner = { ...p.repository.owner, login: owner.login, id: owner.id, type: owner.type }
  p.repository.full_name = `${owner.login}/${repo}`
  p.repository.name = repo
  p.repository.id = spec.repoId ?? 31337
  p.workflow_job.id = jobId
  p.workflow_job.labels = spec.labels === undefined ? [RISC_LABEL] : spec.labels
  p.workflow_job.runner_name = spec.runnerName === undefined ? (p.action === "queued" ? null : "rise-riscv-runner-staging-abc") : spec.runnerName
  p.workflow_job.html_url = spec.htmlUrl ?? `https://github.com/${owner.login}/${repo}/actions/runs/1/job/${jobId}`
  p.workflow_job.status = p.action === "completed" ? "completed" : p.action
  return p
}

export interface InstallationSpec {
  readonly action: string
  readonly installationId?: number
  readonly account?: Owner
  readonly appId?: number
  readonly selection?: "all" | "selected"
  readonly repositories?: ReadonlyArray<string>
  readonly added?: ReadonlyArray<string>
  readonly removed?: ReadonlyArray<string>
}

const repoRef = (fullName: string, i: number) => ({
  id: 100 + i,
  node_id: `R_${i}`,
  name: fullName.split("/")[1]!,
  full_name: fullName,
  private: false
})

/** An `installation` delivery on GitHub's example of the same action (created when GitHub has none). */
export const installation = (spec: InstallationSpec): Json => {
  const known = ["created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"].includes(spec.action)
  const p = example("installation", known ? spec.action : "created")
  const account = spec.account ?? ACME
  p.action = spec.action
  p.installation.id = spec.installationId ?? 777
  p.installation.account = { ...p.installation.account, login: account.login, id: account.id, type: account.type }
  p.installation.target_id = account.id
  p.installation.target_type = account.type
  p.installation.app_id = spec.appId ?? 2167633
  p.installation.repository_selection = spec.selection ?? "selected"
  if (spec.repositories !== undefined) p.repositories = spec.repositories.map(repoRef)
  return p
}

/** An `installation_repositories` delivery. */
export const installationRepositories = (spec: InstallationSpec): Json => {
  const p = example("installation_repositories", spec.action === "removed" ? "removed" : "added")
  const account = spec.account ?? ACME
  p.action = spec.action
  p.installation.id = spec.installationId ?? 777
  p.installation.account = { ...p.installation.account, login: account.login, id: account.id, type: account.type }
  p.installation.target_id = account.id
  p.installation.target_type = account.type
  p.repository_selection = spec.selection ?? "selected"
  p.repositories_added = (spec.added ?? []).map(repoRef)
  p.repositories_removed = (spec.removed ?? []).map(repoRef)
  return p
}

/** `installation_target.renamed` (not among GitHub's examples; shaped as GitHub documents it). */
export const installationTargetRenamed = (from: string, to: Owner, installationId = 777): Json => ({
  action: "renamed",
  account: { login: to.login, id: to.id, type: to.type, node_id: "O_kgDOB", avatar_url: "https://avatars.githubusercontent.com/u/1" },
  changes: { login: { from } },
  installation: { id: installationId, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u" },
  target_type: to.type,
  sender: { login: "octocat", id: 1, type: "User" }
})
