/*
 * The `event` label of the delivery counter. Its value comes from the `X-GitHub-Event` header and the payload's
 * `action`, which a sender chooses, and every distinct label value is a series that Prometheus keeps: labels
 * therefore take only names from the lists below, and anything else counts as `other`.
 */

/** The actions of the events the webhook handles, each kept as `<event>.<action>`; others are `<event>.other`. */
const HANDLED_ACTIONS: Readonly<Record<string, ReadonlySet<string>>> = {
  workflow_job: new Set(["queued", "in_progress", "completed", "waiting"]),
  installation: new Set(["created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"]),
  installation_repositories: new Set(["added", "removed"]),
  installation_target: new Set(["renamed"])
}

/** GitHub's other webhook event names, which a GitHub App may be sent; they are counted under their own name. */
const OTHER_EVENTS: ReadonlySet<string> = new Set([
  "ping",
  "branch_protection_configuration",
  "branch_protection_rule",
  "check_run",
  "check_suite",
  "code_scanning_alert",
  "commit_comment",
  "create",
  "custom_property",
  "custom_property_values",
  "delete",
  "dependabot_alert",
  "deploy_key",
  "deployment",
  "deployment_protection_rule",
  "deployment_review",
  "deployment_status",
  "discussion",
  "discussion_comment",
  "fork",
  "github_app_authorization",
  "gollum",
  "issue_comment",
  "issues",
  "label",
  "marketplace_purchase",
  "member",
  "membership",
  "merge_group",
  "meta",
  "milestone",
  "org_block",
  "organization",
  "package",
  "page_build",
  "personal_access_token_request",
  "project",
  "project_card",
  "project_column",
  "projects_v2",
  "projects_v2_item",
  "public",
  "pull_request",
  "pull_request_review",
  "pull_request_review_comment",
  "pull_request_review_thread",
  "push",
  "registry_package",
  "release",
  "repository",
  "repository_advisory",
  "repository_dispatch",
  "repository_import",
  "repository_ruleset",
  "repository_vulnerability_alert",
  "secret_scanning_alert",
  "secret_scanning_alert_location",
  "security_advisory",
  "security_and_analysis",
  "sponsorship",
  "star",
  "status",
  "team",
  "team_add",
  "watch",
  "workflow_dispatch",
  "workflow_run"
])

/**
 * The label for a stored event name (`workflow_job.queued`, `installation.created`, `push`, ...): itself when
 * it is one of GitHub's names, `<event>.other` for an unknown action of a handled event, and `other` otherwise.
 * At most a hundred or so values, whatever the senders send.
 */
export const eventLabel = (event: string): string => {
  const dot = event.indexOf(".")
  const name = dot === -1 ? event : event.slice(0, dot)
  const actions = Object.hasOwn(HANDLED_ACTIONS, name) ? HANDLED_ACTIONS[name] : undefined
  if (actions !== undefined) return dot !== -1 && actions.has(event.slice(dot + 1)) ? event : `${name}.other`
  return dot === -1 && OTHER_EVENTS.has(event) ? event : "other"
}
