import { Context, Effect, Layer, Redacted } from "effect"
import Pg from "pg"
import { inject } from "vitest"
import { DbPostgres } from "../../layers/db/postgres.ts"
import type { DbSchema } from "../../layers/db/pgClient.ts"
import type { Db } from "../../src/services/Db.ts"

const adminUrl = (): string => inject("postgresUrl")

const withAdmin = <A>(f: (client: Pg.Client) => Promise<A>): Promise<A> => {
  const client = new Pg.Client({ connectionString: adminUrl() })
  return client.connect().then(() => f(client)).finally(() => client.end())
}

/** The URL of `database` on the shared test server. */
export const databaseUrl = (database: string): string => {
  const url = new URL(adminUrl())
  url.pathname = `/${database}`
  return url.toString()
}

/** A new, empty database on the shared test server for one suite; dropped when the scope closes. */
export const freshDatabase = (label: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const name = `t_${label.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${Math.random().toString(36).slice(2, 10)}`
      await withAdmin((c) => c.query(`CREATE DATABASE ${name}`))
      return { name, url: databaseUrl(name) }
    }),
    ({ name }) => Effect.promise(() => withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => undefined))
  )

/** `Db` on a fresh, migrated database of the shared test server. */
export const testDbPostgres = (label: string, schema: DbSchema = "staging") =>
  Layer.unwrapScoped(
    Effect.map(freshDatabase(label), ({ url }) => DbPostgres({ url: Redacted.make(url), schema, migrate: true }))
  )

/** The database a suite's layer created, for the SQL a case runs under the service. */
export class SuiteDatabase extends Context.Tag("test/SuiteDatabase")<SuiteDatabase, { readonly name: string; readonly url: string }>() {}

/**
 * For `layer(...)` / `it.layer(...)`: a fresh, migrated database on the test run's server with `DbPostgres` on it,
 * shared by every case of the suite and dropped when the suite ends.
 */
export const suiteDbPostgres = (label: string, schema: DbSchema = "staging") =>
  Layer.unwrapScoped(
    Effect.map(freshDatabase(label), (database) =>
      Layer.merge(DbPostgres({ url: Redacted.make(database.url), schema, migrate: true }), Layer.succeed(SuiteDatabase, database)))
  ) satisfies Layer.Layer<Db | SuiteDatabase, unknown>

/** Runs plain SQL against a database of the shared test server (for assertions that look under the service). */
export const query = async <R extends Record<string, unknown>>(url: string, text: string, params: Array<unknown> = []): Promise<Array<R>> => {
  const client = new Pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text, params)).rows as Array<R>
  } finally {
    await client.end()
  }
}

/**
 * Empties a migrated schema between cases: every table the migrations made, read from the catalog so that a table
 * a later migration adds is never left holding the previous case's rows, except the migrations' own record. The
 * weekly usage roll-up's mark is a single row the migration inserts: it is kept and set back to "nothing folded".
 */
export const emptyStore = (url: string, schema = "staging"): Promise<unknown> =>
  query(url, `
    DO $$ DECLARE tables text; BEGIN
      SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') INTO tables
        FROM pg_tables WHERE schemaname = '${schema}' AND tablename NOT IN ('schema_migrations', 'weekly_usage_fold');
      EXECUTE 'TRUNCATE ' || tables || ' RESTART IDENTITY';
    END $$;
    UPDATE ${schema}.weekly_usage_fold SET folded_until = NULL`)
