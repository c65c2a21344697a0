/**
 * `Db` on PostgreSQL: the statement groups (`postgres*Statements.ts`) over one client, with the LISTEN connection
 * for wake-ups and the scheduler lock's session of their own.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { Db, type DbShape } from "../../src/services/Db.ts"
import { deadlineClient } from "./deadlineClient.ts"
import { listenResilient } from "./listener.ts"
import { migrate } from "./migrate.ts"
import { makeDemandStatements } from "./postgresDemandStatements.ts"
import { makeDeliveryStatements } from "./postgresDeliveryStatements.ts"
import { makeBoardStatements } from "./postgresBoardStatements.ts"
import { makeEventStatements } from "./postgresEventStatements.ts"
import { makeJobStatements } from "./postgresJobStatements.ts"
import { makeQueueStatements } from "./postgresQueueStatements.ts"
import { makeReportStatements } from "./postgresReportStatements.ts"
import { makeRecoveryStatements } from "./postgresRecoveryStatements.ts"
import { isSqlError, toDbError } from "./postgresRows.ts"
import { makeWorkerStatements } from "./postgresWorkerStatements.ts"
import { makeSchedulerLock, schedulerLockKey } from "./schedulerLock.ts"
import { type DbSchema, pgClientLayer, type PgConnectionOptions } from "./pgClient.ts"
import { answerDeadlineMs, type DbTimeouts, defaultDbTimeouts } from "./timeouts.ts"

/** How often the LISTEN connection is checked for a death no socket event reports. */
const LISTEN_CHECK_EVERY = "5 seconds"
/** How often the scheduler lock's connection is checked while a cycle holds it. */
const LOCK_CHECK_EVERY = "2 seconds"

export const makeDbPostgres = (schema: DbSchema, timeouts: DbTimeouts = defaultDbTimeouts) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const channel = `${schema}_queue_event`
    // The LISTEN connection is one of our own, not the PgClient's shared one: that one swallows its connection's
    // errors, so a terminated backend or a restarted server left the scheduler without wake-ups and nothing said so.
    const ListenClient = deadlineClient(answerDeadlineMs(timeouts))
    // A dedicated connection to the pool's server, named so it can be told apart in pg_stat_activity.
    const ownConnection = (applicationName: string, extra: { readonly options?: string; readonly keepAliveInitialDelayMillis?: number } = {}) =>
      new ListenClient({
        connectionString: sql.config.url === undefined ? undefined : Redacted.value(sql.config.url),
        host: sql.config.host,
        port: sql.config.port,
        database: sql.config.database,
        user: sql.config.username,
        password: sql.config.password === undefined ? undefined : Redacted.value(sql.config.password),
        ssl: sql.config.ssl,
        application_name: applicationName,
        connectionTimeoutMillis: timeouts.connectMs,
        keepAlive: true,
        ...extra
      })
    const newListenClient = () => ownConnection("riscv-runner-listen")
    // The scheduler lock's session: a connection of its own, without the server's statement and lock timeouts (the
    // standby's wait on it is by design); its heartbeat has the client's answer deadline.
    const lock = yield* Effect.acquireRelease(
      makeSchedulerLock({
        key: schedulerLockKey(schema),
        heartbeatEvery: LOCK_CHECK_EVERY,
        newClient: () =>
          ownConnection("riscv-runner-scheduler-lock", {
            options: "-c statement_timeout=0 -c lock_timeout=0",
            keepAliveInitialDelayMillis: 5_000
          })
      }),
      (l) => l.close
    )
    const [lockK1, lockK2] = lock.key
    const lockStillHeld = (pid: number) =>
      sql<{ held: boolean }>`
        SELECT EXISTS (
          SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = ${pid} AND granted
            AND classid = ${lockK1}::oid AND objid = ${lockK2}::oid AND objsubid = 2
        ) AS held`.pipe(
        Effect.mapError(toDbError("scheduler lock check")),
        Effect.map((rows) => rows[0]?.held === true)
      )

    const db: DbShape = {
      ...makeJobStatements(sql, channel),
      ...makeQueueStatements(sql),
      // after the queue statements: the scheduler's demand, with personal accounts matched per repository
      ...makeDemandStatements(sql),
      ...makeWorkerStatements(sql),
      ...makeEventStatements(sql),
      ...(yield* makeDeliveryStatements(sql, channel)),
      ...makeReportStatements(sql),
      ...makeRecoveryStatements(sql),
      ...makeBoardStatements(sql),

      ping: sql`SELECT 1`.pipe(Effect.asVoid, Effect.mapError(toDbError("ping"))),

      wakeups: listenResilient({ newClient: newListenClient, channel, checkEvery: LISTEN_CHECK_EVERY }),

      // The scheduler lock is a session advisory lock on its own connection (`schedulerLock.ts`); no transaction
      // spans the cycle, so every step below commits on its own and is visible to other connections at once.
      withWorkerLock: (cycle) => lock.withLock(cycle),

      // A transaction of its own (a SAVEPOINT only when nested in another step). Inside a cycle it first checks,
      // in the same transaction, that the cycle's session still holds the scheduler lock.
      step: (effect) =>
        sql.withTransaction(Effect.zipRight(lock.fence(lockStillHeld), effect)).pipe(
          Effect.mapError((e) => (isSqlError(e) ? toDbError("step")(e) : e))
        )
    }
    return db
  })

/** `Db` on PostgreSQL, for an existing client. */
export const DbPostgresFromClient = (schema: DbSchema, timeouts?: DbTimeouts) => Layer.scoped(Db, makeDbPostgres(schema, timeouts))

/**
 * `Db` on PostgreSQL at `url`, inside `schema`. With `migrate`, pending migrations are applied first (what
 * `npm start` does); deployments run `migrate` as its own step instead.
 */
export const DbPostgres = (options: PgConnectionOptions & { readonly migrate?: boolean }) =>
  Layer.scoped(
    Db,
    Effect.gen(function*() {
      if (options.migrate === true) {
        const applied = yield* migrate(options.schema)
        if (applied.length > 0) yield* Effect.logInfo("migrations applied").pipe(Effect.annotateLogs("migrations", applied.join(",")))
      }
      return yield* makeDbPostgres(options.schema, options.timeouts)
    })
  ).pipe(Layer.provide(pgClientLayer(options)))
