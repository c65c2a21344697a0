import { Effect, Layer, Redacted } from "effect"
import Pg from "pg"
import { inject } from "vitest"
import { DbPostgres } from "../../layers/db/postgres.ts"
import type { DbSchema } from "../../layers/db/pgClient.ts"

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
