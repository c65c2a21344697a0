/** The statements of board quarantine: `board_states`, `board_events`, and the node outcomes read from `workers`. */
import type { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { DbShape } from "../../src/services/Db.ts"
import { toDbError } from "./postgresRows.ts"
import { makeStatementHelpers } from "./postgresStatementHelpers.ts"

export type BoardStatements = Pick<DbShape, "getBoardStates" | "getNodeOutcomes" | "recordBoardTransition" | "listBoardEvents">

const BoardStateRow = Schema.Struct({
  node: Schema.String,
  pool: Schema.String,
  state: Schema.Literal("quarantined", "trial", "healthy"),
  since: Schema.DateFromSelf,
  until: Schema.NullOr(Schema.DateFromSelf),
  probation_seconds: Schema.Number
})
const Evidence = Schema.Array(Schema.Struct({ pod_name: Schema.String, reason: Schema.String, at: Schema.String }))
const BoardEventRow = Schema.Struct({
  id: Schema.Number,
  node: Schema.String,
  pool: Schema.String,
  kind: Schema.Literal("quarantined", "released", "trial_passed", "operator_release"),
  at: Schema.DateFromSelf,
  probation_seconds: Schema.NullOr(Schema.Number),
  evidence: Evidence
})
const NodeOutcomeRow = Schema.Struct({
  pod_name: Schema.String,
  node: Schema.String,
  pool: Schema.String,
  image: Schema.String,
  status: Schema.Literal("completed", "failed"),
  reason: Schema.NullOr(Schema.String),
  at: Schema.DateFromSelf
})
const decodeStates = Schema.decodeUnknown(Schema.Array(BoardStateRow))
const decodeEvents = Schema.decodeUnknown(Schema.Array(BoardEventRow))
const decodeOutcomes = Schema.decodeUnknown(Schema.Array(NodeOutcomeRow))

export const makeBoardStatements = (sql: SqlClient.SqlClient): BoardStatements => {
  const { jsonb } = makeStatementHelpers(sql)
  return {
    getBoardStates: sql`
      SELECT node, pool, state, since, until, probation_seconds FROM board_states ORDER BY node`.pipe(
      Effect.flatMap(decodeStates),
      Effect.mapError(toDbError("getBoardStates"))
    ),

    getNodeOutcomes: (since) =>
      sql`
        SELECT pod_name, k8s_node AS node, k8s_pool AS pool, k8s_image AS image, status::text AS status,
               CASE WHEN (failure_info ->> 'version') = '2' THEN failure_info ->> 'reason' END AS reason,
               completed_at AS at
        FROM workers
        WHERE k8s_node IS NOT NULL AND completed_at IS NOT NULL AND completed_at >= ${since}
          AND status IN ('completed', 'failed')
        ORDER BY completed_at, pod_name`.pipe(
        Effect.flatMap(decodeOutcomes),
        Effect.mapError(toDbError("getNodeOutcomes"))
      ),

    // Both or neither: a transaction of its own, or a savepoint inside the caller's step.
    recordBoardTransition: (state, event) =>
      sql.withTransaction(Effect.gen(function*() {
        yield* sql`
          INSERT INTO board_states (node, pool, state, since, until, probation_seconds)
          VALUES (${state.node}, ${state.pool}, ${state.state}, ${state.since}, ${state.until}, ${state.probation_seconds})
          ON CONFLICT (node) DO UPDATE SET pool = EXCLUDED.pool, state = EXCLUDED.state, since = EXCLUDED.since,
            until = EXCLUDED.until, probation_seconds = EXCLUDED.probation_seconds`
        const rows = yield* sql<{ id: number }>`
          INSERT INTO board_events (node, pool, kind, at, probation_seconds, evidence)
          VALUES (${event.node}, ${event.pool}, ${event.kind}, ${event.at}, ${event.probation_seconds}, ${jsonb(event.evidence)})
          RETURNING id::integer AS id`
        return rows[0]!.id
      })).pipe(Effect.mapError(toDbError("recordBoardTransition"))),

    listBoardEvents: (limit, node) =>
      sql`
        SELECT id::integer AS id, node, pool, kind, at, probation_seconds, evidence FROM board_events
        WHERE ${node === undefined ? sql`TRUE` : sql`node = ${node}`}
        ORDER BY at DESC, id DESC LIMIT ${limit}`.pipe(
        Effect.flatMap(decodeEvents),
        Effect.mapError(toDbError("listBoardEvents"))
      )
  }
}
