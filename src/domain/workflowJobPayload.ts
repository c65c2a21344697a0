import { intAt, isJsonObject, type JsonObject, objectAt, stringAt, stringsAt } from "./jsonPayload.ts"

/*
 * What a `workflow_job` delivery leaves in the audit log. Most of a delivery is URL templates GitHub derives from
 * ids (`.../repos/{owner}/{repo}/issues{/number}` and forty more); they cost space on every row and say nothing an
 * operator needs. The keys below are dropped; every other key is kept, `workflow_job.html_url` included, since it
 * is the link a person follows from the trace.
 */

const ACCOUNT_NOISE = [
  "url",
  "html_url",
  "gists_url",
  "repos_url",
  "avatar_url",
  "events_url",
  "starred_url",
  "followers_url",
  "following_url",
  "organizations_url",
  "subscriptions_url",
  "received_events_url"
]

const REPOSITORY_NOISE = [
  "url",
  "license",
  ...[
    "git",
    "ssh",
    "svn",
    "html",
    "keys",
    "tags",
    "blobs",
    "clone",
    "forks",
    "hooks",
    "pulls",
    "teams",
    "trees",
    "events",
    "issues",
    "labels",
    "merges",
    "mirror",
    "archive",
    "commits",
    "compare",
    "branches",
    "comments",
    "contents",
    "git_refs",
    "git_tags",
    "releases",
    "statuses",
    "assignees",
    "downloads",
    "languages",
    "milestones",
    "stargazers",
    "deployments",
    "git_commits",
    "subscribers",
    "contributors",
    "issue_events",
    "subscription",
    "collaborators",
    "issue_comment",
    "notifications"
  ].map((k) => `${k}_url`)
]

const ORGANIZATION_NOISE = ["url", "hooks_url", "repos_url", "avatar_url", "events_url", "issues_url", "members_url", "public_members_url"]

const WORKFLOW_JOB_NOISE = ["url", "run_url", "check_run_url", "steps"]

/** A shallow copy without `drop`; a value that is not an object is returned as it is. */
const without = (value: unknown, drop: ReadonlyArray<string>): unknown => {
  if (!isJsonObject(value)) return value
  const copy: Record<string, unknown> = { ...value }
  for (const key of drop) delete copy[key]
  return copy
}

/** The delivery without URL noise. The input is not modified; untouched parts are shared, not copied. */
export const trimWorkflowJobPayload = (payload: JsonObject): JsonObject => {
  const out: Record<string, unknown> = { ...payload }
  if ("sender" in out) out.sender = without(out.sender, ACCOUNT_NOISE)
  if (isJsonObject(out.repository)) {
    const repository = without(out.repository, REPOSITORY_NOISE) as Record<string, unknown>
    if ("owner" in repository) repository.owner = without(repository.owner, ACCOUNT_NOISE)
    out.repository = repository
  }
  if ("organization" in out) out.organization = without(out.organization, ORGANIZATION_NOISE)
  if ("workflow_job" in out) out.workflow_job = without(out.workflow_job, WORKFLOW_JOB_NOISE)
  return out
}

/**
 * The row payload for a job whose labels no rule accepts. Such deliveries are the bulk of the traffic for an
 * installation that uses GitHub-hosted runners too, so only what explains the decision is kept. The job id is
 * kept as well (the original dropped it), so the trace can still show which job a row is about.
 */
export const minimalWorkflowJobPayload = (payload: JsonObject) => {
  const job = objectAt(payload, "workflow_job")
  const repository = objectAt(payload, "repository")
  return {
    workflow_job: { id: intAt(job, "id"), labels: stringsAt(job, "labels"), html_url: stringAt(job, "html_url") },
    repository: { full_name: stringAt(repository, "full_name") }
  }
}
