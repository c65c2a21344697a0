import { Deferred, Effect, Either } from "effect"
import type { EntityType } from "../domain/Entity.ts"
import type { NewInstallationEvent } from "../domain/InstallationEvent.ts"
import { Db } from "../services/Db.ts"
import { Github, type GithubError, type InstallationRef } from "../services/Github.ts"
import { leanSpan } from "../services/leanSpan.ts"
import { SchedulerSettings } from "./settings.ts"

/** Whom the scheduler acts for, and on what, when it authenticates (the audit row says so). */
export interface AuthSubject {
  readonly installationId: number
  readonly entityType: EntityType
  readonly entityId: number
  readonly entityName: string
  readonly repoFullName?: string | null | undefined
  readonly jobId?: number | undefined
}

/** The HTTP status GitHub answered with, or undefined when there was no answer. */
export const httpStatusOf = (e: GithubError): number | undefined => {
  switch (e._tag) {
    case "GithubNotFound":
      return 404
    case "GithubBusy":
      return 422
    case "GithubRateLimited":
    case "GithubHttpError":
      return e.status
    case "GithubTransportError":
      return undefined
  }
}

/** The `installation_events` row for a failed authentication (reference §5, `ghAuthenticate`). */
export const authFailureEvent = (subject: AuthSubject, appId: number, error: GithubError, status: number): NewInstallationEvent => {
  const notFound = status === 404
  return {
    source: "scheduler",
    event: notFound ? "auth_attempt.404" : "auth_attempt.other_error",
    outcome: notFound ? "auth_404" : "auth_other_error",
    installation_id: subject.installationId,
    app_id: appId,
    entity_type: subject.entityType,
    entity_id: subject.entityId === 0 ? null : subject.entityId,
    entity_name: subject.entityName === "" ? null : subject.entityName,
    payload: {
      installation_id: subject.installationId,
      app_id: appId,
      entity_type: subject.entityType,
      ...(subject.entityId === 0 ? {} : { entity_id: subject.entityId }),
      ...(subject.entityName === "" ? {} : { entity_name: subject.entityName }),
      repository: subject.repoFullName ? { full_name: subject.repoFullName } : null,
      workflow_job: subject.jobId === undefined ? null : { id: subject.jobId },
      http_status: status,
      error_message: error.message
    },
    delivery_id: null
  }
}

export type Authenticate = (subject: AuthSubject) => Effect.Effect<InstallationRef, GithubError>

/**
 * Runs a database step alone: the cycle's writes (each its own short transaction) go one at a time, in the order
 * the cycle decided them, while GitHub and Kubernetes calls run concurrently around them.
 */
export type Serially = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/**
 * Authentication for one cycle. The token itself is cached by the Github layer (59 minutes), so a success costs
 * nothing; a failure is asked once per installation per cycle and answered from memory after that, so a removed
 * installation writes one audit row per cycle rather than one per job and per runner scope.
 *
 * A failure GitHub answered writes an `auth_attempt.*` row (404 → `auth_404`, anything else →
 * `auth_other_error`); no answer at all (a network error) writes none, as in the original. A failed insert is
 * logged only: the audit log must not stop the scheduler.
 */
export const makeCycleAuthenticator = Effect.fn("Scheduler.makeCycleAuthenticator")(function*(serially: Serially) {
  const github = yield* Github
  const db = yield* Db
  const settings = yield* SchedulerSettings
  // One answer per installation per cycle, shared by concurrent callers: the first asks, the others wait for it.
  const results = new Map<string, Deferred.Deferred<InstallationRef, GithubError>>()
  // the answers already given, served without a Deferred: a burst asks once per runner, nearly always again
  const settled = new Map<string, Either.Either<InstallationRef, GithubError>>()

  // Once per runner in a burst, so the repeat is a map look-up in one step, and only the first ask of an
  // installation is a generator with a span (untraced: no stack traces are taken per call).
  const ask = Effect.fnUntraced(function*(subject: AuthSubject, key: string) {
    const ref: InstallationRef = { installationId: subject.installationId, entityType: subject.entityType }
    const mine = yield* Deferred.make<InstallationRef, GithubError>()
    // No yield between the look-up and the insert, so two fibers cannot both become the asker.
    const known = results.get(key)
    if (known !== undefined) return yield* Deferred.await(known)
    results.set(key, mine)
    const outcome = yield* Effect.either(github.installationToken(ref))
    const result = Either.map(outcome, () => ref)
    if (Either.isLeft(outcome)) {
      const error = outcome.left
      const status = httpStatusOf(error)
      const appId = subject.entityType === "Organization" ? settings.runnerConfig.apps.orgAppId : settings.runnerConfig.apps.personalAppId
      yield* Effect.logWarning("GitHub authentication failed").pipe(
        Effect.annotateLogs({ installationId: subject.installationId, entityType: subject.entityType, entity: subject.entityName, entity_id: subject.entityId, error: error.message })
      )
      if (status !== undefined) {
        yield* serially(db.step(db.addInstallationEvent(authFailureEvent(subject, appId, error, status)))).pipe(
          Effect.catchAllCause((cause) => Effect.logError("could not record the failed authentication", cause))
        )
      }
    }
    settled.set(key, result)
    yield* Deferred.complete(mine, result)
    return yield* result
  }, leanSpan("Scheduler.authenticate"))
  const authenticate: Authenticate = (subject) =>
    Effect.suspend(() => {
      const key = `${subject.installationId}/${subject.entityType}`
      return settled.get(key) ?? ask(subject, key)
    })
  return authenticate
})
