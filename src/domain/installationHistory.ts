import type { EntityType } from "./Entity.ts"
import { intAt, isJsonObject, type JsonObject, objectAt, objectsAt, stringAt } from "./jsonPayload.ts"

/*
 * The installation history of one entity, rebuilt from its `installation_events` rows (the seed README's "State
 * reconstruction"), and the diagnoses that explain why its jobs stopped being picked up. Pure functions: the
 * trace API loads the rows, these decide.
 */

/** One log row as the fold reads it. `payload` is undefined when it was not loaded (see `needsPayload`). */
export interface HistoryRow {
  readonly id: number
  readonly event: string
  readonly received_at: Date
  readonly installation_id: number | null
  readonly app_id: number | null
  readonly entity_type: EntityType | null
  readonly entity_name: string | null
  readonly payload?: unknown
}

/** The rows whose payload changes the fold. Others (workflow_job, ping, ...) only lend their entity name. */
export const needsPayload = (event: string): boolean =>
  event.startsWith("installation.") ||
  event.startsWith("installation_repositories.") ||
  event.startsWith("installation_target.") ||
  event.startsWith("auth_attempt.")

/** A scheduler authentication failure (`auth_attempt.*`). */
export interface AuthFailure {
  readonly event_id: number
  readonly at: Date
  /** true for `auth_attempt.404` (the installation was not found for that app) */
  readonly not_found: boolean
  readonly app_id: number | null
  readonly installation_id: number | null
  /** the repository of the job the scheduler was serving, when it said */
  readonly repo: string | null
  readonly job_id: number | null
  readonly http_status: number | null
  readonly message: string | null
}

export interface Mark {
  readonly event_id: number
  readonly at: Date
  readonly installation_id: number | null
}

export interface CreatedMark extends Mark {
  readonly app_id: number | null
  readonly repository_selection: string | null
  readonly target_type: string | null
}

export interface RepoChange extends Mark {
  readonly repos: ReadonlyArray<string>
}

export interface Rename {
  readonly event_id: number
  readonly at: Date
  readonly from: string | null
  readonly to: string
}

/** "What did the installation look like" after the last row. */
export interface InstallationState {
  /** null until some installation row was seen; false after `installation.deleted` */
  readonly installed: boolean | null
  readonly installation_id: number | null
  readonly app_id: number | null
  readonly entity_type: EntityType | null
  /** the latest login seen: renames, installation rows, and the owner on job rows */
  readonly entity_name: string | null
  /** `all` or `selected` */
  readonly repository_selection: string | null
  /** full names, sorted. Only complete when `repos_known`. */
  readonly repos: ReadonlyArray<string>
  /** true when an `installation.created` row (which lists the repositories) started the current installation */
  readonly repos_known: boolean
  readonly suspended: boolean
  readonly suspended_at: Date | null
  readonly installed_at: Date | null
  readonly uninstalled_at: Date | null
  readonly last_auth_failure: AuthFailure | null
  readonly auth_404_count: number
  readonly auth_other_error_count: number
}

/** The state plus the moments the diagnoses look at, in log order. */
export interface InstallationHistory {
  readonly state: InstallationState
  readonly created: ReadonlyArray<CreatedMark>
  readonly deleted: ReadonlyArray<Mark>
  readonly suspends: ReadonlyArray<Mark>
  readonly added: ReadonlyArray<RepoChange>
  readonly removed: ReadonlyArray<RepoChange>
  readonly renames: ReadonlyArray<Rename>
  readonly authFailures: ReadonlyArray<AuthFailure>
}

const emptyState: InstallationState = {
  installed: null,
  installation_id: null,
  app_id: null,
  entity_type: null,
  entity_name: null,
  repository_selection: null,
  repos: [],
  repos_known: false,
  suspended: false,
  suspended_at: null,
  installed_at: null,
  uninstalled_at: null,
  last_auth_failure: null,
  auth_404_count: 0,
  auth_other_error_count: 0
}

/** Log order: `received_at`, then id (rows written in the same millisecond keep their insert order). */
export const byLogOrder = (a: { received_at: Date; id: number }, b: { received_at: Date; id: number }): number =>
  a.received_at.getTime() - b.received_at.getTime() || a.id - b.id

const before = (a: { at: Date; event_id: number }, b: { at: Date; event_id: number }): boolean =>
  a.at.getTime() < b.at.getTime() || (a.at.getTime() === b.at.getTime() && a.event_id < b.event_id)

const repoNames = (repos: ReadonlyArray<JsonObject>): ReadonlyArray<string> =>
  repos.map((r) => stringAt(r, "full_name")).filter((n) => n !== "")

const sorted = (names: Iterable<string>): ReadonlyArray<string> => [...new Set(names)].sort()
const orNull = <A>(value: A, missing: A): A | null => (value === missing ? null : value)

/** Folds the rows (any order; they are sorted here) into the installation's history. */
export const foldInstallationHistory = (rows: ReadonlyArray<HistoryRow>): InstallationHistory => {
  let state = emptyState
  const created: Array<CreatedMark> = []
  const deleted: Array<Mark> = []
  const suspends: Array<Mark> = []
  const added: Array<RepoChange> = []
  const removed: Array<RepoChange> = []
  const renames: Array<Rename> = []
  const authFailures: Array<AuthFailure> = []

  for (const row of [...rows].sort(byLogOrder)) {
    const payload = isJsonObject(row.payload) ? row.payload : undefined
    const installation = objectAt(payload, "installation")
    const at = row.received_at
    const mark: Mark = { event_id: row.id, at, installation_id: orNull(intAt(installation, "id"), 0) ?? row.installation_id }
    if (row.entity_name !== null) state = { ...state, entity_name: row.entity_name }
    if (row.entity_type !== null) state = { ...state, entity_type: row.entity_type }
    const [kind, action = ""] = splitEvent(row.event)

    // Any installation row but a deletion says the installation exists, and carries its current settings.
    if ((kind === "installation" && action !== "deleted") || kind === "installation_repositories") {
      state = {
        ...state,
        installed: true,
        installation_id: mark.installation_id ?? state.installation_id,
        app_id: orNull(intAt(installation, "app_id"), 0) ?? row.app_id ?? state.app_id,
        repository_selection: orNull(stringAt(payload, "repository_selection"), "") ??
          orNull(stringAt(installation, "repository_selection"), "") ?? state.repository_selection
      }
    }

    if (kind === "installation") {
      switch (action) {
        case "created": {
          state = {
            ...state,
            repos: sorted(repoNames(objectsAt(payload, "repositories"))),
            repos_known: payload !== undefined,
            suspended: false,
            suspended_at: null,
            installed_at: at,
            uninstalled_at: null
          }
          created.push({
            ...mark,
            app_id: state.app_id,
            repository_selection: state.repository_selection,
            target_type: orNull(stringAt(installation, "target_type"), "") ?? row.entity_type
          })
          break
        }
        case "deleted":
          state = { ...state, installed: false, repos: [], repos_known: true, suspended: false, suspended_at: null, uninstalled_at: at }
          deleted.push(mark)
          break
        case "suspend":
          state = { ...state, suspended: true, suspended_at: at }
          suspends.push(mark)
          break
        case "unsuspend":
          state = { ...state, suspended: false, suspended_at: null }
          break
      }
    } else if (kind === "installation_repositories") {
      const plus = repoNames(objectsAt(payload, "repositories_added"))
      const minus = new Set(repoNames(objectsAt(payload, "repositories_removed")))
      state = { ...state, repos: sorted([...state.repos, ...plus].filter((r) => !minus.has(r))) }
      if (plus.length > 0) added.push({ ...mark, repos: plus })
      if (minus.size > 0) removed.push({ ...mark, repos: [...minus] })
    } else if (kind === "installation_target" && action === "renamed") {
      const to = stringAt(objectAt(payload, "account"), "login") || row.entity_name || ""
      const from = stringAt(objectAt(objectAt(payload, "changes"), "login"), "from")
      if (to !== "") {
        state = { ...state, entity_name: to }
        renames.push({ event_id: row.id, at, from: orNull(from, ""), to })
      }
    } else if (kind === "auth_attempt") {
      const failure: AuthFailure = {
        event_id: row.id,
        at,
        not_found: action === "404",
        app_id: row.app_id ?? orNull(intAt(payload, "app_id"), 0),
        installation_id: row.installation_id ?? orNull(intAt(payload, "installation_id"), 0),
        repo: orNull(stringAt(objectAt(payload, "repository"), "full_name"), ""),
        job_id: orNull(intAt(objectAt(payload, "workflow_job"), "id"), 0),
        http_status: orNull(intAt(payload, "http_status"), 0),
        message: orNull(stringAt(payload, "error_message"), "")
      }
      authFailures.push(failure)
      state = {
        ...state,
        last_auth_failure: failure,
        auth_404_count: state.auth_404_count + (failure.not_found ? 1 : 0),
        auth_other_error_count: state.auth_other_error_count + (failure.not_found ? 0 : 1)
      }
    }
  }
  return { state, created, deleted, suspends, added, removed, renames, authFailures }
}

/** `installation_repositories.added` → ["installation_repositories", "added"]; an empty action stays "". */
const splitEvent = (event: string): [string, string] => {
  const dot = event.indexOf(".")
  return dot < 0 ? [event, ""] : [event.slice(0, dot), event.slice(dot + 1)]
}

// --- diagnoses ---------------------------------------------------------------------------------------------------

export type DiagnosisCode =
  | "uninstalled_before_auth_failure"
  | "uninstalled"
  | "suspended"
  | "repo_removed"
  | "repo_not_selected"
  | "renamed"
  | "app_id_mismatch"
  | "wrong_app_for_account_type"
  | "auth_failures"

export interface Diagnosis {
  readonly code: DiagnosisCode
  /** one sentence for a person, with the times and ids that support it */
  readonly message: string
  /** the log rows that support it, for `/trace/payload/:id` */
  readonly event_ids: ReadonlyArray<number>
}

export interface DiagnoseOptions {
  /** repositories whose jobs are in question, besides those named by the scheduler's auth failures */
  readonly repos?: ReadonlyArray<string>
  /** our two apps; with them, an installation of the wrong app for its account type is reported */
  readonly apps?: { readonly orgAppId: number; readonly personalAppId: number }
}

const iso = (d: Date): string => d.toISOString()
const inst = (id: number | null): string => (id === null ? "" : ` ${id}`)

/**
 * Every cause the seed README's table lists, checked against the history, in a fixed order. Each returned
 * diagnosis names the rows that support it.
 */
export const diagnoseInstallation = (history: InstallationHistory, options: DiagnoseOptions = {}): ReadonlyArray<Diagnosis> => {
  const { state } = history
  const out: Array<Diagnosis> = []
  const notFound = history.authFailures.filter((f) => f.not_found)
  const lastNotFound = notFound.at(-1)

  // User uninstalled between job submission and reconcile: a deletion precedes the auth 404.
  const deletionBefore404 = lastNotFound === undefined
    ? undefined
    : history.deleted.filter((d) =>
      before(d, lastNotFound) &&
      (d.installation_id === null || lastNotFound.installation_id === null || d.installation_id === lastNotFound.installation_id)
    ).at(-1)
  if (deletionBefore404 !== undefined && lastNotFound !== undefined) {
    const reinstalled = state.installed === true && state.installation_id !== deletionBefore404.installation_id
      ? ` It was installed again at ${iso(state.installed_at ?? deletionBefore404.at)} as installation${inst(state.installation_id)}; jobs queued before that carry the old id.`
      : ""
    out.push({
      code: "uninstalled_before_auth_failure",
      message: `The app was uninstalled at ${iso(deletionBefore404.at)} (installation${inst(deletionBefore404.installation_id)}), ` +
        `before the scheduler's failed lookup at ${iso(lastNotFound.at)}: that installation id is no longer valid.${reinstalled}`,
      event_ids: [deletionBefore404.event_id, lastNotFound.event_id]
    })
  } else if (state.installed === false) {
    const last = history.deleted.at(-1)
    out.push({
      code: "uninstalled",
      message: `The app was uninstalled at ${iso(state.uninstalled_at!)} (installation${inst(last?.installation_id ?? null)}); ` +
        `no installation is active for this account.`,
      event_ids: last === undefined ? [] : [last.event_id]
    })
  }

  // Admin suspended the installation: a suspend with no later unsuspend.
  if (state.suspended) {
    const last = history.suspends.at(-1)
    out.push({
      code: "suspended",
      message: `Installation${inst(state.installation_id)} is suspended since ${iso(state.suspended_at!)} and was not ` +
        `unsuspended; GitHub refuses tokens for a suspended installation.`,
      event_ids: last === undefined ? [] : [last.event_id]
    })
  }

  // The repositories in question: those the caller asks about and those the scheduler failed for.
  const inQuestion = sorted([...(options.repos ?? []), ...notFound.flatMap((f) => (f.repo === null ? [] : [f.repo]))])
  const current = new Set(state.repos)
  for (const repo of inQuestion) {
    if (current.has(repo) || state.installed === false) continue
    const removal = history.removed.filter((r) => r.repos.includes(repo)).at(-1)
    if (removal !== undefined) {
      out.push({
        code: "repo_removed",
        message: `Access to ${repo} was removed from installation${inst(removal.installation_id)} at ${iso(removal.at)} ` +
          `and not given back; its jobs cannot get a runner.`,
        event_ids: [removal.event_id]
      })
    } else if (state.repository_selection === "selected" && state.repos_known) {
      const start = history.created.at(-1)
      out.push({
        code: "repo_not_selected",
        message: `Installation${inst(state.installation_id)} covers selected repositories only, and ${repo} was never ` +
          `added to them.`,
        event_ids: start === undefined ? [] : [start.event_id]
      })
    }
  }

  // Account renamed: names cached on jobs and workers may be stale.
  const rename = history.renames.at(-1)
  if (rename !== undefined) {
    out.push({
      code: "renamed",
      message: `The account was renamed${rename.from === null ? "" : ` from ${rename.from}`} to ${rename.to} at ` +
        `${iso(rename.at)}; jobs and workers stored before carry the old name.`,
      event_ids: history.renames.map((r) => r.event_id)
    })
  }

  // JWT signed by the wrong app: the 404's app differs from the app the installation was created for.
  for (const failure of notFound) {
    const start = history.created.filter((c) => before(c, failure)).at(-1)
    if (start === undefined || start.app_id === null || failure.app_id === null || start.app_id === failure.app_id) continue
    out.push({
      code: "app_id_mismatch",
      message: `The scheduler looked up installation${inst(failure.installation_id)} with app ${failure.app_id} at ` +
        `${iso(failure.at)}, but it was created for app ${start.app_id} (${iso(start.at)}): the token was asked of the wrong app.`,
      event_ids: [start.event_id, failure.event_id]
    })
    break
  }

  // The wrong app variant for the account type (the org app on a personal account, or the reverse).
  if (options.apps !== undefined) {
    const start = history.created.at(-1)
    const expected = start?.target_type === "Organization"
      ? options.apps.orgAppId
      : start?.target_type === "User"
      ? options.apps.personalAppId
      : undefined
    if (start !== undefined && expected !== undefined && start.app_id !== null && start.app_id !== expected) {
      const which = start.app_id === options.apps.orgAppId ? "organization app" : start.app_id === options.apps.personalAppId ? "personal-account app" : `app ${start.app_id}`
      out.push({
        code: "wrong_app_for_account_type",
        message: `The ${which} was installed on ${start.target_type === "User" ? "a personal account" : "an organization"} ` +
          `at ${iso(start.at)}; this account type is served by app ${expected}.`,
        event_ids: [start.event_id]
      })
    }
  }

  if (lastNotFound !== undefined) {
    out.push({
      code: "auth_failures",
      message: `${notFound.length} auth_attempt.404 row(s): the scheduler's installation lookup failed, last at ` +
        `${iso(lastNotFound.at)} (installation${inst(lastNotFound.installation_id)}, app ${lastNotFound.app_id ?? "?"}).`,
      event_ids: [lastNotFound.event_id]
    })
  }
  return out
}
