import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import { DbError } from "../../src/services/Db.ts"
import type { DbSchema } from "./pgClient.ts"
import { WAITS_BY_DESIGN } from "./timeouts.ts"

export interface Migration {
  readonly id: number
  readonly name: string
  readonly sql: string
}

const MIGRATIONS_DIR = new URL("../../migrations/", import.meta.url)
const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/

/** Reads `migrations/NNNN_name.sql` in numeric order. */
export const loadMigrations = Effect.tryPromise({
  try: async (): Promise<ReadonlyArray<Migration>> => {
    const names = (await fs.readdir(MIGRATIONS_DIR)).filter((n) => FILE_NAME.test(n)).sort()
    return Promise.all(names.map(async (file) => {
      const [, id, name] = FILE_NAME.exec(file)!
      return { id: Number(id), name: name!, sql: await fs.readFile(new URL(file, MIGRATIONS_DIR), "utf8") }
    }))
  },
  catch: (cause) => new DbError({ message: `cannot read the migrations directory: ${String(cause)}`, cause })
})

// Any constant works; it only has to be the same for every replica running `migrate`.
const MIGRATION_LOCK_KEY = 727_274_001

/**
 * Applies every migration not yet recorded in `<schema>.schema_migrations`, in one transaction that holds an
 * advisory lock, so concurrent replicas run them once and a failure leaves the schema as it was.
 * Returns the names of the migrations applied by this call.
 */
export const migrate = (schema: DbSchema) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const migrations = yield* loadMigrations
    return yield* sql.withTransaction(Effect.gen(function*() {
      // Waiting for another replica's migrations, and a long migration, are by design: no timeouts for them.
      yield* sql`SET LOCAL lock_timeout = 0`
      yield* sql`SET LOCAL statement_timeout = 0`
      yield* sql`${sql.unsafe(WAITS_BY_DESIGN)} SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`
      yield* sql.unsafe(`SET LOCAL search_path TO ${schema}`)
      yield* sql`CREATE TABLE IF NOT EXISTS schema_migrations (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`
      const done = new Set((yield* sql<{ id: number }>`SELECT id FROM schema_migrations`).map((r) => Number(r.id)))
      const applied: Array<string> = []
      for (const m of migrations) {
        if (done.has(m.id)) continue
        yield* sql.unsafe(`${WAITS_BY_DESIGN}\n${m.sql}`)
        yield* sql`INSERT INTO schema_migrations (id, name) VALUES (${m.id}, ${m.name})`
        applied.push(`${String(m.id).padStart(4, "0")}_${m.name}`)
      }
      return applied as ReadonlyArray<string>
    }))
  }).pipe(
    Effect.mapError((e) => e instanceof DbError ? e : new DbError({ message: `migration failed: ${e.message}`, cause: e })),
    Effect.withSpan("Db.migrate")
  )
