import { Effect } from "effect"
import type { Worker } from "../../domain/Worker.ts"
import type { Github, GithubRunner, InstallationRef } from "../../services/Github.ts"

/** Where a worker's runner is registered: the org's runner group, or (personal accounts) one repository. */
export type RunnerScope =
  | {
    readonly _tag: "Org"
    readonly key: string
    readonly ref: InstallationRef
    readonly entityId: number
    readonly org: string
  }
  | {
    readonly _tag: "Repo"
    readonly key: string
    readonly ref: InstallationRef
    readonly entityId: number
    readonly owner: string
    readonly repo: string
  }

export const scopeOf = (w: Pick<Worker, "installation_id" | "entity_type" | "entity_id" | "entity_name" | "repo_full_name">): RunnerScope => {
  const ref: InstallationRef = { installationId: w.installation_id, entityType: w.entity_type }
  return w.entity_type === "Organization"
    ? { _tag: "Org", key: `org|${w.installation_id}|${w.entity_id}|${w.entity_name}`, ref, entityId: w.entity_id, org: w.entity_name }
    : {
      _tag: "Repo",
      key: `repo|${w.installation_id}|${w.entity_id}|${w.entity_name}|${w.repo_full_name ?? ""}`,
      ref,
      entityId: w.entity_id,
      owner: w.entity_name,
      repo: w.repo_full_name ?? ""
    }
}

/** The runners GitHub listed for one scope this cycle, by name. */
export interface RunnerListing {
  readonly scope: RunnerScope
  readonly runners: ReadonlyMap<string, GithubRunner>
}

/** The scopes listed this cycle, by scope key; a scope GitHub could not be asked about is absent. */
export type RunnerListings = ReadonlyMap<string, RunnerListing>

/** Org: the runner group (found or created), every runner in it. Personal: the repository's runners with our prefix. */
export const listRunners = (github: Github["Type"], scope: RunnerScope, groupName: string, prefix: string) =>
  scope._tag === "Org"
    ? Effect.flatMap(github.ensureRunnerGroup(scope.ref, scope.org, groupName), (groupId) => github.listRunnersOrgGroup(scope.ref, scope.org, groupId))
    : github.listRunnersRepo(scope.ref, scope.repo, { namePrefix: prefix })

export const deleteRunner = (github: Github["Type"], scope: RunnerScope, runnerId: number) =>
  scope._tag === "Org" ? github.deleteRunnerOrg(scope.ref, scope.org, runnerId) : github.deleteRunnerRepo(scope.ref, scope.repo, runnerId)
