import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import Pg from "pg"
import { deadlineClient } from "./deadlineClient.ts"
import { answerDeadlineMs, type DbTimeouts, defaultDbTimeouts, timeoutOptions } from "./timeouts.ts"

/** The two deployments share one database and are isolated by schema. */
export type DbSchema = "prod" | "staging"

export interface PgConnectionOptions {
  readonly url: Redacted.Redacted<string>
  readonly schema: DbSchema
  readonly maxConnections?: number | undefined
  /** connect, statement and lock timeouts; `defaultDbTimeouts` when absent */
  readonly timeouts?: DbTimeouts | undefined
}

const INT8_OID = 20

/**
 * GitHub ids and counts arrive as BIGINT. They are all far below 2^53, so they are read as plain numbers rather
 * than the driver's default strings; every other type keeps the driver's parser.
 */
const types: Pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID ? (value: string) => Number(value) : Pg.types.getTypeParser(oid, format as "text")) as Pg.CustomTypesConfig["getTypeParser"]
}

/**
 * A PgClient whose every connection, the LISTEN connection included, starts with `search_path` set to the
 * deployment's schema, so the seed DDL's unqualified names (tables and enum types) resolve to that schema, and
 * with the server-side statement and lock timeouts. The client side is bounded too: opening a connection or
 * waiting for a free one gives up after the connect timeout, and a statement that gets no answer by its deadline
 * closes its connection (`deadlineClient`), which a frozen server otherwise keeps forever.
 */
export const pgClientLayer = (options: PgConnectionOptions) => {
  const timeouts = options.timeouts ?? defaultDbTimeouts
  return PgClient.layerFromPool({
    acquire: Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new Pg.Pool({
          connectionString: Redacted.value(options.url),
          options: `-c search_path=${options.schema} ${timeoutOptions(timeouts)}`,
          max: options.maxConnections ?? 10,
          application_name: "riscv-runner",
          connectionTimeoutMillis: timeouts.connectMs,
          // a peer that vanished without a reset is noticed on idle connections too
          keepAlive: true,
          keepAliveInitialDelayMillis: 10_000,
          Client: deadlineClient(answerDeadlineMs(timeouts)),
          types
        })
        // An idle pooled connection that the server closes (a restart, or the embedded server stopping first on
        // Ctrl-C) is reported as a pool 'error' event, which would crash the process without a listener. The pool
        // drops that connection by itself, and the next query opens a new one or fails with a DbError.
        pool.on("error", () => undefined)
        return pool
      }),
      (pool) => Effect.promise(() => pool.end().catch(() => undefined))
    ),
    applicationName: "riscv-runner",
    types
  })
}

export type PgClientLayer = Layer.Layer<PgClient.PgClient, unknown>
