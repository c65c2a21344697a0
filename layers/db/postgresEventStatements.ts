/** The statements on the `installation_events` table: the webhook's record of what it received. */
import type { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import type { DbShape } from "../../src/services/Db.ts"
import { decodeSummaries, toDbError } from "./postgresRows.ts"
import { makeStatementHelpers, now } from "./postgresStatementHelpers.ts"

export type EventStatements = Pick<
  DbShape,
  "addInstallationEvent" | "getEventsByEntity" | "getEventPayload" | "getEntityIdForInstallation"
>

export const makeEventStatements = (sql: SqlClient.SqlClient): EventStatements => {
  const { jsonb, optionalNumber } = makeStatementHelpers(sql)

  return {
    addInstallationEvent: (e) =>
      Effect.gen(function*() {
        const at = yield* now
        const rows = yield* sql<{ id: number }>`
          INSERT INTO installation_events (source, event, outcome, installation_id, app_id, entity_type, entity_id,
                                           entity_name, payload, received_at, delivery_id)
          VALUES (${e.source}, ${e.event}, ${e.outcome}, ${e.installation_id}, ${e.app_id},
                  ${e.entity_type}::entity_type_enum, ${e.entity_id}, ${e.entity_name}, ${jsonb(e.payload ?? null)},
                  ${at}, ${e.delivery_id})
          RETURNING id`.pipe(Effect.mapError(toDbError("addInstallationEvent")))
        return rows[0]!.id
      }),

    getEventsByEntity: (entityId) =>
      sql`
        SELECT id, source, event, outcome, installation_id, app_id, entity_type::text AS entity_type, entity_id,
               entity_name, received_at, delivery_id,
               CASE WHEN event LIKE 'workflow_job.%' THEN payload -> 'workflow_job' ->> 'id' END AS job_id,
               CASE WHEN event LIKE 'workflow_job.%' THEN payload -> 'repository' ->> 'full_name' END AS repo_full_name
        FROM installation_events WHERE entity_id = ${entityId}
        ORDER BY received_at, id`.pipe(
        Effect.mapError(toDbError("getEventsByEntity")),
        Effect.flatMap((rows) => decodeSummaries(rows).pipe(Effect.mapError(toDbError("getEventsByEntity"))))
      ),

    getEventPayload: (eventId) =>
      sql<{ payload: unknown }>`SELECT payload FROM installation_events WHERE id = ${eventId}`.pipe(
        Effect.mapError(toDbError("getEventPayload")),
        Effect.map((rows) => rows.length === 0 ? Option.none() : Option.some(rows[0]!.payload))
      ),

    getEntityIdForInstallation: (installationId) =>
      optionalNumber(
        "getEntityIdForInstallation",
        sql<{ v: number | null }>`
          SELECT COALESCE(
            (SELECT entity_id FROM installation_events WHERE installation_id = ${installationId} AND entity_id IS NOT NULL
             ORDER BY received_at DESC, id DESC LIMIT 1),
            (SELECT entity_id FROM jobs WHERE installation_id = ${installationId} ORDER BY created_at DESC LIMIT 1)
          ) AS v`
      )
  }
}
