import type { EntityType } from "./Entity.ts"
import { intAt, isJsonObject, type JsonObject, objectAt, objectsAt, stringAt } from "./jsonPayload.ts"

/*
 * The installation history of one entity, rebuilt from its `installation_events` rows (the seed README's "State
 * reconstruction"): the fold. `installationDiagnoses.ts` reads the history it returns and explains why the entity's
 * jobs stopped being picked up. Pure functions: the trace API loads the rows, these decide.
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

/**
 * The rows whose payload changes the fold. Others (workflow_job, ping, ...) lend their entity name only to a log
 * without installation rows.
 */
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
  /** the latest login of the installation rows (renames included); job and scheduler rows only when there are none */
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

const repoNames = (repos: ReadonlyArray<JsonObject>): ReadonlyArray<string> =>
  repos.map((r) => stringAt(r, "full_name")).filter((n) => n !== "")

/** Each name once, sorted. */
export const sortedNames = (names: Iterable<string>): ReadonlyArray<string> => [...new Set(names)].sort()
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
  let namedByInstallation = false

  for (const row of [...rows].sort(byLogOrder)) {
    const payload = isJsonObject(row.payload) ? row.payload : undefined
    const installation = objectAt(payload, "installation")
    const at = row.received_at
    const mark: Mark = { event_id: row.id, at, installation_id: orNull(intAt(installation, "id"), 0) ?? row.installation_id }
    const [kind, action = ""] = splitEvent(row.event)
    // Only installation rows name the account (the seed's fold table): scheduler and job rows carry the login we
    // had stored when they were written, which after a rename is the old one. They name it only while no
    // installation row has, so a log of job rows alone still says whose it is.
    const fromInstallation = kind === "installation" || kind === "installation_repositories" || kind === "installation_target"
    if (row.entity_name !== null && (fromInstallation || !namedByInstallation)) state = { ...state, entity_name: row.entity_name }
    if (row.entity_name !== null && fromInstallation) namedByInstallation = true
    if (row.entity_type !== null) state = { ...state, entity_type: row.entity_type }

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
            repos: sortedNames(repoNames(objectsAt(payload, "repositories"))),
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
      state = { ...state, repos: sortedNames([...state.repos, ...plus].filter((r) => !minus.has(r))) }
      if (plus.length > 0) added.push({ ...mark, repos: plus })
      if (minus.size > 0) removed.push({ ...mark, repos: [...minus] })
    } else if (kind === "installation_target" && action === "renamed") {
      const to = stringAt(objectAt(payload, "account"), "login") || row.entity_name || ""
      const from = stringAt(objectAt(objectAt(payload, "changes"), "login"), "from")
      if (to !== "") {
        state = { ...state, entity_name: to }
        namedByInstallation = true
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
