import { SqlClient } from "@effect/sql"
import { Effect, Redacted } from "effect"
import { migrate } from "../../layers/db/migrate.ts"
import { type DbSchema, pgClientLayer } from "../../layers/db/pgClient.ts"
import type { DbTimeouts } from "../../layers/db/timeouts.ts"
import { StartupError } from "../config/StartupError.ts"

/**
 * `main.ts migrate`: applies the pending migrations and says which. A database it cannot reach (refused, unknown
 * host, no answer within the connect timeout, a wrong password or database name) is a start-up problem the
 * operator fixes in POSTGRES_URL or the network: one line naming where it tried and why it failed, status 2, not
 * a stack trace. The password never appears in it. A migration that fails once connected keeps its whole cause.
 */
export const runMigrations = (url: Redacted.Redacted<string>, schema: DbSchema, timeouts: DbTimeouts) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`SELECT 1`.pipe(
      Effect.mapError((e) => new StartupError({ message: `cannot reach the database of POSTGRES_URL (${whereOf(url)}): ${rootMessage(e)}; check POSTGRES_URL and that PostgreSQL accepts connections` }))
    )
    return yield* migrate(schema)
  }).pipe(
    // migrations may wait on locks by design (WAITS_BY_DESIGN); only the connect timeout matters here
    Effect.provide(pgClientLayer({ url, schema, timeouts }))
  )

/** host:port/database of a connection URL, without its user or password. */
export const whereOf = (url: Redacted.Redacted<string>): string => {
  try {
    const u = new URL(Redacted.value(url))
    return `${u.hostname || "localhost"}:${u.port || "5432"}${u.pathname === "/" ? "" : u.pathname}`
  } catch {
    return "an unparsable URL"
  }
}

/** The innermost cause's own words (a refused connection to two addresses is an AggregateError of both). */
export const rootMessage = (error: unknown): string => {
  let e: unknown = error
  for (let depth = 0; depth < 10; depth++) {
    const next = (e as { cause?: unknown } | null)?.cause
    if (next === undefined || next === null) break
    e = next
  }
  if (e instanceof AggregateError && e.errors.length > 0) e = e.errors[0]
  const code = (e as { code?: unknown } | null)?.code
  const message = e instanceof Error ? e.message : String(e)
  return typeof code === "string" && !message.includes(code) ? `${code} ${message}`.trim() : message || "no reason given"
}
