import { Duration, Effect, Schedule, Stream } from "effect"
import type Pg from "pg"
import { DbError } from "../../src/services/Db.ts"
import { deadlineExpiry } from "./deadlineClient.ts"

/** The element a listener emits after it listens again: notifications sent while it was away are lost. */
export const RELISTENED = "relistened"

export interface ListenOptions {
  /** a new, unconnected client with the deployment's connection settings (and answer deadline) */
  readonly newClient: () => Pg.Client
  readonly channel: string
  /** how often the connection is checked with `SELECT 1`, for a death that no socket event reports */
  readonly checkEvery: Duration.DurationInput
  /** the waits between attempts while the database is away; reset by the next element */
  readonly backoff?: Schedule.Schedule<unknown, unknown> | undefined
}

const lost = (message: string, cause?: unknown) => new DbError({ message, cause, unavailable: true })

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/**
 * One LISTEN session on a connection of its own: its notifications, until the connection is lost. The loss is a
 * failure of the stream, whether the socket reports it ('error', 'end': a terminated backend, a restart) or the
 * periodic check does not come back (a frozen server, a silent network).
 */
const session = (options: ListenOptions, again: boolean) =>
  Stream.asyncPush<string, DbError>((emit) =>
    Effect.gen(function*() {
      const client = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const client = options.newClient()
            // an 'error' without a listener would crash the process; before `connect` the promise reports it
            client.on("error", () => undefined)
            await client.connect()
            return client
          },
          catch: (cause) => lost(`LISTEN ${options.channel}: cannot connect: ${describe(cause)}`, cause)
        }),
        (client) =>
          Effect.promise(() => {
            client.removeAllListeners("end")
            client.removeAllListeners("notification")
            return client.end().catch(() => undefined)
          }).pipe(Effect.timeoutOption("1 second"))
      )
      client.on("error", (cause) => {
        const why = deadlineExpiry(client)
        emit.fail(
          why === undefined
            ? lost(`LISTEN ${options.channel}: connection lost: ${describe(cause)}`, cause)
            : lost(`LISTEN ${options.channel}: the connection check failed: ${why.message}`, why)
        )
      })
      client.on("end", () => emit.fail(lost(`LISTEN ${options.channel}: connection closed`)))
      client.on("notification", (msg) => {
        // One notification per commit lists the commit's new job ids, comma-separated: one element per id.
        if (msg.channel === options.channel && msg.payload !== undefined) emit.array(msg.payload.split(","))
      })
      yield* Effect.tryPromise({
        try: () => client.query(`LISTEN "${options.channel.replace(/"/g, "\"\"")}"`),
        catch: (cause) => lost(`LISTEN ${options.channel}: ${describe(cause)}`, cause)
      })
      if (again) emit.single(RELISTENED)
      yield* Effect.tryPromise(() => client.query("SELECT 1")).pipe(
        Effect.delay(options.checkEvery),
        Effect.forever,
        Effect.catchAll((e) => Effect.sync(() => emit.fail(lost(`LISTEN ${options.channel}: the connection check failed: ${describe(e.cause)}`, e)))),
        Effect.forkScoped
      )
    }), { bufferSize: "unbounded" })

/**
 * The notifications of `channel`, on a dedicated connection that is opened again whenever it is lost: each loss
 * is logged as a warning, the attempts back off while the database is away, and after listening again one
 * `RELISTENED` element says that notifications may have been missed. The stream itself never fails.
 */
export const listenResilient = (options: ListenOptions): Stream.Stream<string> => {
  const backoff = options.backoff ??
    Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("10 seconds")))
  return Stream.unwrap(Effect.sync(() => {
    // per subscription: its first session is not a re-listen
    let sessions = 0
    return Stream.suspend(() => session(options, sessions++ > 0)).pipe(
      Stream.tapError((e) => Effect.logWarning(`${e.message}; listening again`)),
      Stream.retry(backoff),
      Stream.catchAll(() => Stream.empty)
    )
  }))
}
