/** The pieces of statement that the job, worker, queue and event statements share, over one `SqlClient`. */
import type { SqlClient, SqlError, Statement } from "@effect/sql"
import { Clock, Effect, Option } from "effect"
import type { DbError, PageRequest } from "../../src/services/Db.ts"
import { toDbError } from "./postgresRows.ts"

/** The clock's time as a `Date`, the value the statements store. */
export const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

export const makeStatementHelpers = (sql: SqlClient.SqlClient) => {
  const jsonb = (value: unknown) => sql`${JSON.stringify(value)}::jsonb`

  const page = <A>(
    what: string,
    table: "jobs" | "workers",
    cols: Statement.Fragment,
    decode: (rows: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<A>, DbError>,
    req: PageRequest
  ) =>
    Effect.gen(function*() {
      const where = sql.and([
        ...(req.start ? [sql`created_at >= ${req.start}`] : []),
        ...(req.end ? [sql`created_at < ${req.end}`] : [])
      ])
      const [count] = yield* sql<{ total: number }>`SELECT count(*) AS total FROM ${sql(table)} WHERE ${where}`.pipe(
        Effect.mapError(toDbError(what))
      )
      const rows = yield* sql`
        SELECT ${cols} FROM ${sql(table)} WHERE ${where}
        ORDER BY created_at DESC, ${sql(table === "jobs" ? "job_id" : "pod_name")} DESC LIMIT ${req.perPage} OFFSET ${req.page * req.perPage}`.pipe(
        Effect.mapError(toDbError(what)),
        Effect.flatMap(decode)
      )
      return { rows, total: count?.total ?? 0 }
    })

  const optionalNumber = (what: string, rows: Effect.Effect<ReadonlyArray<{ readonly v: number | null }>, SqlError.SqlError>) =>
    rows.pipe(
      Effect.mapError(toDbError(what)),
      Effect.map((r) => Option.fromNullable(r[0]?.v))
    )

  return { jsonb, page, optionalNumber }
}
