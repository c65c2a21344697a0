import { type InstallationHistory, sortedNames } from "./installationHistory.ts"

/*
 * The diagnoses of an installation history (see `installationHistory.ts` for the fold): every cause the seed
 * README's table lists for "why did this entity's jobs stop being picked up", each with the log rows that support
 * it. Pure functions over the folded history.
 */

/** Log order of two moments: earlier time, then lower row id. */
const before = (a: { at: Date; event_id: number }, b: { at: Date; event_id: number }): boolean =>
  a.at.getTime() < b.at.getTime() || (a.at.getTime() === b.at.getTime() && a.event_id < b.event_id)

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
  const inQuestion = sortedNames([...(options.repos ?? []), ...notFound.flatMap((f) => (f.repo === null ? [] : [f.repo]))])
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
