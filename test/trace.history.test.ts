import { describe, expect, it } from "vitest"
import { diagnoseInstallation } from "../src/domain/installationDiagnoses.ts"
import { foldInstallationHistory, type HistoryRow } from "../src/domain/installationHistory.ts"
import { installation, installationRepositories, installationTargetRenamed, workflowJob } from "./support/webhookPayloads.ts"

/*
 * The installation-history fold and its diagnoses, as plain functions over rows: one table of histories, each
 * with the state and the diagnoses it must give (and those it must not).
 */

const ORG_APP = 2167633
const PERSONAL_APP = 3131217
const apps = { orgAppId: ORG_APP, personalAppId: PERSONAL_APP }

let nextId = 1
/** A log row at minute `minute`, shaped as the webhook (or the scheduler) writes it. */
const row = (minute: number, event: string, payload: unknown, extra: Partial<HistoryRow> = {}): HistoryRow => ({
  id: nextId++,
  event,
  received_at: new Date(Date.UTC(2026, 0, 1, 0, minute)),
  installation_id: 777,
  app_id: ORG_APP,
  entity_type: "Organization",
  entity_name: "acme",
  payload,
  ...extra
})

const created = (minute: number, repos: ReadonlyArray<string>, options: { selection?: "all" | "selected"; appId?: number; id?: number } = {}) =>
  row(minute, "installation.created", installation({
    action: "created",
    repositories: repos,
    selection: options.selection ?? "selected",
    appId: options.appId ?? ORG_APP,
    installationId: options.id ?? 777
  }), { installation_id: options.id ?? 777, app_id: options.appId ?? ORG_APP })

/** What the scheduler writes when it cannot get a token (see the reference's gh_auth). */
const auth404 = (minute: number, repo: string | null, options: { appId?: number; id?: number } = {}) =>
  row(minute, "auth_attempt.404", {
    installation_id: options.id ?? 777,
    app_id: options.appId ?? ORG_APP,
    entity_type: "Organization",
    entity_id: 424242,
    entity_name: "acme",
    repository: repo === null ? null : { full_name: repo },
    workflow_job: { id: 9001 },
    http_status: 404,
    error_message: "Not Found"
  }, { installation_id: options.id ?? 777, app_id: options.appId ?? ORG_APP })

const codes = (rows: ReadonlyArray<HistoryRow>, repos?: ReadonlyArray<string>) =>
  diagnoseInstallation(foldInstallationHistory(rows), { apps, ...(repos === undefined ? {} : { repos }) }).map((d) => d.code)

describe("installation history fold", () => {
  it("created, repos added and removed, suspend and unsuspend, rename: the state after each", () => {
    const rows = [
      created(1, ["acme/a", "acme/b"]),
      row(2, "installation_repositories.added", installationRepositories({ action: "added", added: ["acme/c"] })),
      row(3, "installation_repositories.removed", installationRepositories({ action: "removed", removed: ["acme/a"] })),
      row(4, "installation.suspend", installation({ action: "suspend", selection: "selected" })),
      row(5, "installation.unsuspend", installation({ action: "unsuspend", selection: "selected" })),
      row(6, "installation_target.renamed", installationTargetRenamed("acme", { login: "acme-corp", id: 424242, type: "Organization" }), { entity_name: "acme-corp" }),
      row(7, "workflow_job.queued", undefined, { entity_name: "acme-corp" })
    ]
    const { state, renames } = foldInstallationHistory(rows)
    expect(state).toMatchObject({
      installed: true,
      installation_id: 777,
      app_id: ORG_APP,
      repository_selection: "selected",
      repos: ["acme/b", "acme/c"],
      repos_known: true,
      suspended: false,
      entity_name: "acme-corp",
      last_auth_failure: null,
      auth_404_count: 0
    })
    expect(renames).toMatchObject([{ from: "acme", to: "acme-corp" }])
  })

  it("after a rename, later job and scheduler rows (which carry the stored, old login) do not bring the old name back", () => {
    const rows = [
      created(1, ["acme/a"]),
      row(2, "installation_target.renamed", installationTargetRenamed("acme", { login: "acme-corp", id: 424242, type: "Organization" }), { entity_name: "acme-corp" }),
      row(3, "workflow_job.queued", undefined, { entity_name: "acme" }),
      auth404(4, "acme/a", {}),
      row(5, "workflow_job.completed", undefined, { entity_name: "acme" })
    ]
    expect(foldInstallationHistory(rows).state.entity_name).toBe("acme-corp")
    // an installation row after them still renames (it carries GitHub's current login)
    const later = row(6, "installation_repositories.added", installationRepositories({ action: "added", added: ["acme/b"] }), { entity_name: "acme-corp2" })
    expect(foldInstallationHistory([...rows, later]).state.entity_name).toBe("acme-corp2")
    // a log of job rows alone still names its account
    expect(foldInstallationHistory([row(7, "workflow_job.queued", undefined, { entity_name: "solo" })]).state.entity_name).toBe("solo")
  })

  it("rows arrive in any order and are folded in log order", () => {
    const rows = [created(1, ["acme/a"]), row(2, "installation.deleted", installation({ action: "deleted" }))]
    expect(foldInstallationHistory([...rows].reverse()).state.installed).toBe(false)
  })

  it("a deletion empties the repos; a reinstall starts over with a new installation id", () => {
    const rows = [
      created(1, ["acme/a"]),
      row(2, "installation.suspend", installation({ action: "suspend" })),
      row(3, "installation.deleted", installation({ action: "deleted" })),
      created(4, ["acme/z"], { id: 888 })
    ]
    const mid = foldInstallationHistory(rows.slice(0, 3)).state
    expect(mid).toMatchObject({ installed: false, repos: [], suspended: false })
    const end = foldInstallationHistory(rows).state
    expect(end).toMatchObject({ installed: true, installation_id: 888, repos: ["acme/z"], suspended: false })
  })

  it("auth failures: the last one with the app it tried; 404s and other errors counted apart", () => {
    const other = row(3, "auth_attempt.other_error", { installation_id: 777, app_id: ORG_APP, repository: null, workflow_job: null, http_status: 500, error_message: "boom" })
    const { state } = foldInstallationHistory([created(1, ["acme/a"]), auth404(2, "acme/a", { appId: PERSONAL_APP }), other])
    expect(state.auth_404_count).toBe(1)
    expect(state.auth_other_error_count).toBe(1)
    expect(state.last_auth_failure).toMatchObject({ not_found: false, http_status: 500, message: "boom" })
  })

  it("rows without payloads (not loaded) still count, from their columns", () => {
    const { state } = foldInstallationHistory([row(1, "auth_attempt.404", undefined, { app_id: 5 })])
    expect(state.last_auth_failure).toMatchObject({ not_found: true, app_id: 5, installation_id: 777, repo: null })
  })
})

describe("diagnoses: every cause of the seed README", () => {
  const table: Array<{ name: string; rows: () => ReadonlyArray<HistoryRow>; repos?: ReadonlyArray<string>; expect: ReadonlyArray<string> }> = [
    {
      name: "a healthy installation: nothing to say",
      rows: () => [created(1, ["acme/a"]), row(2, "workflow_job.queued", { workflow_job: { id: 1 } })],
      repos: ["acme/a"],
      expect: []
    },
    {
      name: "uninstalled between job submission and reconcile: the deletion precedes the 404",
      rows: () => [created(1, ["acme/a"]), row(2, "workflow_job.queued", workflowJob()), row(3, "installation.deleted", installation({ action: "deleted" })), auth404(4, "acme/a")],
      expect: ["uninstalled_before_auth_failure", "auth_failures"]
    },
    {
      name: "a 404 before the deletion is not explained by it; the app is still uninstalled now",
      rows: () => [created(1, ["acme/a"]), auth404(2, "acme/b"), row(3, "installation.deleted", installation({ action: "deleted" }))],
      expect: ["uninstalled", "auth_failures"]
    },
    {
      name: "suspended with no later unsuspend",
      rows: () => [created(1, ["acme/a"]), row(2, "installation.suspend", installation({ action: "suspend" })), auth404(3, "acme/a")],
      expect: ["suspended", "auth_failures"]
    },
    {
      name: "suspended, then unsuspended: nothing",
      rows: () => [created(1, ["acme/a"]), row(2, "installation.suspend", installation({ action: "suspend" })), row(3, "installation.unsuspend", installation({ action: "unsuspend" }))],
      expect: []
    },
    {
      name: "access to the failing repository removed",
      rows: () => [created(1, ["acme/a", "acme/b"]), row(2, "installation_repositories.removed", installationRepositories({ action: "removed", removed: ["acme/a"] })), auth404(3, "acme/a")],
      expect: ["repo_removed", "auth_failures"]
    },
    {
      name: "removed and given back: nothing about the repository",
      rows: () => [
        created(1, ["acme/a"]),
        row(2, "installation_repositories.removed", installationRepositories({ action: "removed", removed: ["acme/a"] })),
        row(3, "installation_repositories.added", installationRepositories({ action: "added", added: ["acme/a"] }))
      ],
      repos: ["acme/a"],
      expect: []
    },
    {
      name: "renamed: cached names are stale",
      rows: () => [created(1, ["acme/a"]), row(2, "installation_target.renamed", installationTargetRenamed("acme", { login: "acme2", id: 424242, type: "Organization" }))],
      expect: ["renamed"]
    },
    {
      name: "the token was asked of the wrong app: the 404's app id differs from installation.created's",
      rows: () => [created(1, ["acme/a"], { appId: ORG_APP }), auth404(2, "acme/a", { appId: PERSONAL_APP })],
      expect: ["app_id_mismatch", "auth_failures"]
    },
    {
      name: "selected repositories, and the failing one was never added",
      rows: () => [created(1, ["acme/a"], { selection: "selected" }), auth404(2, "acme/other")],
      expect: ["repo_not_selected", "auth_failures"]
    },
    {
      name: "the same repository asked about explicitly (no auth failure yet)",
      rows: () => [created(1, ["acme/a"], { selection: "selected" })],
      repos: ["acme/other"],
      expect: ["repo_not_selected"]
    },
    {
      name: "all repositories: a repository missing from the list is not a cause",
      rows: () => [created(1, ["acme/a"], { selection: "all" })],
      repos: ["acme/new-repo"],
      expect: []
    },
    {
      name: "the personal-account app installed on an organization",
      rows: () => [created(1, ["acme/a"], { appId: PERSONAL_APP })],
      expect: ["wrong_app_for_account_type"]
    }
  ]

  for (const c of table) {
    it(c.name, () => {
      expect(codes(c.rows(), c.repos)).toEqual(c.expect)
    })
  }

  it("each diagnosis names the rows behind it and says when", () => {
    const rows = [created(1, ["acme/a"]), row(2, "installation.deleted", installation({ action: "deleted" })), auth404(3, "acme/a")]
    const [first] = diagnoseInstallation(foldInstallationHistory(rows))
    expect(first!.event_ids).toEqual([rows[1]!.id, rows[2]!.id])
    expect(first!.message).toContain("2026-01-01T00:02:00.000Z")
    expect(first!.message).toContain("installation 777")
  })

  it("a reinstall after the deletion is mentioned, with the new id", () => {
    const rows = [created(1, ["acme/a"]), row(2, "installation.deleted", installation({ action: "deleted" })), auth404(3, "acme/a"), created(4, ["acme/a"], { id: 999 })]
    const [first] = diagnoseInstallation(foldInstallationHistory(rows))
    expect(first!.code).toBe("uninstalled_before_auth_failure")
    expect(first!.message).toContain("installation 999")
  })
})
