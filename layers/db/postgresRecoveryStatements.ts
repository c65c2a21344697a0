/** The statements of the scheduler's recovery passes: delivery ids already recorded, pass leases, recent repositories. */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { DbShape, PassClaim, RecentRepository } from "../../src/services/Db.ts"
import { toDbError } from "./postgresRows.ts"
import { now } from "./postgresStatementHelpers.ts"

export type RecoveryStatements = Pick<DbShape, "knownDeliveryIds" | "claimPass" | "finishPass" | "getRecentRepositories">

export const makeRecoveryStatements = (sql: SqlClient.SqlClient): RecoveryStatements => ({
  knownDeliveryIds: (ids) =>
    ids.length === 0
      ? Effect.succeed(new Set<string>())
      : sql<{ delivery_id: string }>`
          SELECT DISTINCT delivery_id FROM installation_events WHERE delivery_id IN ${sql.in([...new Set(ids)])}`.pipe(
          Effect.mapError(toDbError("knownDeliveryIds")),
          Effect.map((rows) => new Set(rows.map((r) => r.delivery_id)))
        ),

  claimPass: (pass, holder, leaseMillis) =>
    Effect.gen(function*() {
      const at = yield* now
      const until = new Date(at.getTime() + leaseMillis)
      // One statement: of two replicas claiming at once, the row lock lets one update and the other see its lease.
      const rows = yield* sql<{ cursor: string | null }>`
        INSERT INTO scheduler_passes (pass, holder, lease_until, updated_at) VALUES (${pass}, ${holder}, ${until}, ${at})
        ON CONFLICT (pass) DO UPDATE SET holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until, updated_at = EXCLUDED.updated_at
        WHERE scheduler_passes.lease_until <= ${at} OR scheduler_passes.holder = EXCLUDED.holder
        RETURNING cursor`.pipe(Effect.mapError(toDbError("claimPass")))
      return rows.length === 0 ? { claimed: false } : { claimed: true, cursor: rows[0]!.cursor } satisfies PassClaim as PassClaim
    }),

  finishPass: (pass, holder, cursor) =>
    Effect.gen(function*() {
      const at = yield* now
      yield* sql`
        UPDATE scheduler_passes SET cursor = ${cursor}, lease_until = ${at}, updated_at = ${at}
        WHERE pass = ${pass} AND holder = ${holder}`.pipe(Effect.mapError(toDbError("finishPass")))
    }),

  getRecentRepositories: (since) =>
    sql<RecentRepository>`
      SELECT DISTINCT ON (lower(repo_full_name)) repo_full_name, installation_id, entity_type::text AS entity_type, entity_id, entity_name
      FROM jobs WHERE created_at >= ${since}
      ORDER BY lower(repo_full_name), created_at DESC, job_id DESC`.pipe(
      Effect.mapError(toDbError("getRecentRepositories")),
      Effect.map((rows) => rows.map((r) => ({ ...r, installation_id: Number(r.installation_id), entity_id: Number(r.entity_id) })))
    )
})
