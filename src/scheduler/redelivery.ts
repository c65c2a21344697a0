import { Clock, Duration, Effect, Metric } from "effect"
import type { EntityType } from "../domain/Entity.ts"
import type { NewInstallationEvent } from "../domain/InstallationEvent.ts"
import { redeliveries, tagged } from "../observability/metrics.ts"
import { Db } from "../services/Db.ts"
import { Github } from "../services/Github.ts"
import { examinedAttempts, nextCursor, planRedeliveries, type RedeliveryCandidate, undeliveredGuids } from "./redeliveryDecision.ts"
import { RecoverySettings } from "./recoverySettings.ts"
import { SchedulerSettings } from "./settings.ts"

/*
 * The redelivery pass (issue 12): GitHub never sends a failed webhook again by itself, so the scheduler reads each
 * app's delivery log and asks for the events our endpoint never took. Run with the app's JWT, it costs no
 * installation's budget. One replica runs it at a time (a row lease), and where it got to is kept in the database.
 */

/** `org` or `personal`, the `app` label of the metric. */
const appLabel = (app: EntityType) => (app === "Organization" ? "org" : "personal")

export const redeliveryPassName = (app: EntityType) => `redelivery:${app}`

export interface RedeliveryOutcome {
  /** false when another replica held the pass */
  readonly ran: boolean
  readonly examined: number
  readonly requested: number
  readonly failed: number
  readonly deferred: number
}

const auditRow = (
  app: EntityType,
  appId: number,
  candidate: RedeliveryCandidate,
  entityId: number | null,
  outcome: "redelivery_requested" | "redelivery_failed",
  error?: string
): NewInstallationEvent => ({
  source: "scheduler",
  event: "redelivery.requested",
  outcome,
  installation_id: candidate.installationId,
  app_id: appId,
  entity_type: app,
  entity_id: entityId,
  entity_name: null,
  // The guid goes in the payload, never in `delivery_id`: that column says "our endpoint took this delivery".
  payload: {
    guid: candidate.guid,
    attempt_id: candidate.attemptId,
    event: candidate.event,
    action: candidate.action,
    ...(error === undefined ? {} : { error_message: error })
  },
  delivery_id: null
})

/** One pass for one app. Failures of the listing or of a request are logged and left for the next pass. */
export const redeliveryPass = Effect.fn("Scheduler.redeliveryPass")(function*(app: EntityType, holder: string) {
  const db = yield* Db
  const settings = yield* RecoverySettings
  const { runnerConfig } = yield* SchedulerSettings
  const appId = app === "Organization" ? runnerConfig.apps.orgAppId : runnerConfig.apps.personalAppId
  const pass = redeliveryPassName(app)
  yield* Effect.annotateCurrentSpan({ app: appLabel(app) })

  const claim = yield* db.claimPass(pass, holder, Duration.toMillis(settings.passLease))
  if (!claim.claimed) return { ran: false, examined: 0, requested: 0, failed: 0, deferred: 0 } satisfies RedeliveryOutcome
  // A pass that fails frees its lease and keeps the cursor it started from, so the next pass begins there.
  return yield* passBody(app, appId, pass, holder, claim.cursor).pipe(
    Effect.tapErrorCause(() => db.finishPass(pass, holder, claim.cursor).pipe(Effect.ignore))
  )
})

const passBody = (app: EntityType, appId: number, pass: string, holder: string, stored: string | null) =>
  Effect.gen(function*() {
    const db = yield* Db
    const github = yield* Github
    const settings = yield* RecoverySettings
    const cursor = stored === null ? null : Number(stored)
    const now = yield* Clock.currentTimeMillis
    const oldestAllowed = now - Duration.toMillis(settings.redeliveryLookback)

    const attempts = yield* github.listHookDeliveries(
      app,
      (d) => (cursor !== null && d.id <= cursor) || Date.parse(d.delivered_at) < oldestAllowed
    )
    const examinedGuids = undeliveredGuids(examinedAttempts(attempts, cursor, oldestAllowed))
    const recorded = yield* db.knownDeliveryIds(examinedGuids)
    const plan = planRedeliveries({ attempts, cursor, oldestAllowed, recorded, max: settings.maxRedeliveriesPerPass })

    const failed: Array<RedeliveryCandidate> = []
    for (const candidate of plan.redeliver) {
      const result = yield* Effect.either(github.redeliverHookDelivery(app, candidate.attemptId))
      const entityId = candidate.installationId === null
        ? null
        : yield* db.getEntityIdForInstallation(candidate.installationId).pipe(
          Effect.map((o) => (o._tag === "Some" ? o.value : null)),
          Effect.orElseSucceed(() => null)
        )
      if (result._tag === "Left") {
        failed.push(candidate)
        yield* Metric.increment(tagged(redeliveries, { app: appLabel(app), result: "failed" }))
        yield* Effect.logWarning("could not ask GitHub to redeliver a webhook; the next pass tries again").pipe(
          Effect.annotateLogs({ app: appLabel(app), guid: candidate.guid, attempt_id: candidate.attemptId, error: result.left.message })
        )
      } else {
        yield* Metric.increment(tagged(redeliveries, { app: appLabel(app), result: "requested" }))
        yield* Effect.logInfo("asked GitHub to redeliver a webhook our endpoint never took").pipe(
          Effect.annotateLogs({ app: appLabel(app), guid: candidate.guid, attempt_id: candidate.attemptId, event: candidate.event, action: candidate.action })
        )
      }
      // The entity's trace timeline shows the pass; a failed audit write must not stop it.
      yield* db.addInstallationEvent(
        auditRow(app, appId, candidate, entityId, result._tag === "Left" ? "redelivery_failed" : "redelivery_requested", result._tag === "Left" ? result.left.message : undefined)
      ).pipe(Effect.catchAllCause((cause) => Effect.logError("could not record a redelivery", cause)))
    }

    const cursorAfter = nextCursor(plan, [...plan.deferred, ...failed], cursor)
    yield* db.finishPass(pass, holder, cursorAfter === null ? null : String(cursorAfter))
    const outcome: RedeliveryOutcome = {
      ran: true,
      examined: plan.examined,
      requested: plan.redeliver.length - failed.length,
      failed: failed.length,
      deferred: plan.deferred.length
    }
    yield* Effect.annotateCurrentSpan({ ...outcome })
    if (plan.redeliver.length > 0 || plan.deferred.length > 0) {
      yield* Effect.logInfo("redelivery pass done").pipe(Effect.annotateLogs({ app: appLabel(app), ...outcome, cursor: cursorAfter }))
    }
    return outcome
  })
