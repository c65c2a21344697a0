import { Deferred, type Duration, Effect, Exit, Fiber, FiberId, FiberRef, Option } from "effect"
import type Pg from "pg"
import { DbError } from "../../src/services/Db.ts"
import { deadlineExpiry } from "./deadlineClient.ts"
import { WAITS_BY_DESIGN } from "./timeouts.ts"

/**
 * The scheduler lock (design decision 3): a session-level advisory lock, `pg_advisory_lock(k1, k2)`, held on a
 * connection of its own for the length of one cycle. It replaces the original's `LOCK TABLE workers IN EXCLUSIVE
 * MODE`, which needed the whole cycle to be one transaction; here every step of the cycle commits on its own while
 * the lock is held on the side. PostgreSQL releases a session lock the moment its session ends, so a replica that
 * dies (SIGKILL, a lost node, a terminated backend) frees it at once, and the standby that waits on it goes on.
 *
 * What it promises: while a cycle runs, no other holder of the same key runs one. Each step checks, inside its own
 * transaction, that the lock's session still holds the lock (`pg_locks`, by the session's backend pid), and the
 * cycle is stopped (interrupted) as soon as the lock's connection is known to be lost: its socket closed or
 * errored, or a heartbeat went unanswered past the client's answer deadline. So after a loss no step commits and no
 * new GitHub or Kubernetes call starts. What it cannot promise: a step whose check passed a moment before the loss
 * still commits, and an API call already in flight still lands; a new holder's cycle copes with both as with a
 * crash (a row without its pod ends in phase 1, a pod's row exists before the pod).
 */

/** Our half of the lock key: "RISV" as an int4. */
const LOCK_NAMESPACE = 0x52495356

/** 31-bit FNV-1a: a stable, positive int4 for a name. */
const fnv31 = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h & 0x7fffffff
}

/** The advisory lock key of the scheduler in a schema: prod and staging share a server but not a lock. */
export const schedulerLockKey = (schema: string): readonly [number, number] => [LOCK_NAMESPACE, fnv31(`riscv-runner/scheduler/${schema}`)]

/** A lock held by the current cycle: the session's backend, and a signal that completes when the session is lost. */
interface Held {
  readonly pid: number
  readonly lost: Deferred.Deferred<string>
}

/** The lock the current fiber's cycle holds, if any: `step` checks it. */
const currentLock = FiberRef.unsafeMake<Held | undefined>(undefined)

interface Session {
  readonly client: Pg.Client
  readonly pid: number
  readonly lost: Deferred.Deferred<string>
}

export interface SchedulerLockOptions {
  /** a new, unconnected client; its server-side statement and lock timeouts must be off (the wait is by design) */
  readonly newClient: () => Pg.Client
  readonly key: readonly [number, number]
  /** how often the held lock's connection is checked during a cycle */
  readonly heartbeatEvery: Duration.DurationInput
}

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))
const lostLock = (message: string, cause?: unknown) => new DbError({ message: `scheduler lock: ${message}`, cause, unavailable: true })

export const makeSchedulerLock = (options: SchedulerLockOptions) =>
  Effect.gen(function*() {
    const [k1, k2] = options.key
    // One cycle at a time in this process too: a session lock is re-entrant within its own session.
    const inProcess = yield* Effect.makeSemaphore(1)
    let session: Session | undefined

    const drop = (s: Session) =>
      Effect.promise(() => {
        if (session === s) session = undefined
        s.client.removeAllListeners("end")
        return s.client.end().catch(() => undefined)
      }).pipe(Effect.timeoutOption("1 second"), Effect.asVoid)

    const connect = Effect.tryPromise({
      try: async () => {
        const client = options.newClient()
        const lost = Deferred.unsafeMake<string>(FiberId.none)
        const signal = (why: string) => Deferred.unsafeDone(lost, Exit.succeed(why))
        client.on("error", (cause) => {
          const expiry = deadlineExpiry(client)
          signal(expiry === undefined ? `connection lost: ${describe(cause)}` : `the connection check failed: ${expiry.message}`)
        })
        client.on("end", () => signal("connection closed"))
        await client.connect()
        const result = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")
        return { client, pid: Number(result.rows[0]!.pid), lost } satisfies Session
      },
      catch: (cause) => lostLock(`cannot connect: ${describe(cause)}`, cause)
    })

    /** The open session, or a new one when there is none or it was lost. */
    const acquireSession = Effect.suspend(() => {
      const s = session
      const fresh = Effect.tap(connect, (c) => Effect.sync(() => void (session = c)))
      if (s === undefined) return fresh
      return Effect.flatMap(Deferred.isDone(s.lost), (wasLost) => (wasLost ? Effect.zipRight(drop(s), fresh) : Effect.succeed(s)))
    })

    // The standby waits here for as long as the active replica's cycle runs: no answer deadline (`WAITS_BY_DESIGN`)
    // and no server timeouts on this connection. The wait is interruptible (SIGTERM stops a standby at once); the
    // session is then closed, so a lock granted meanwhile goes with it.
    const waitForLock = (s: Session) =>
      Effect.tryPromise({
        try: () => s.client.query(`${WAITS_BY_DESIGN} SELECT pg_advisory_lock($1, $2)`, [k1, k2]),
        catch: (cause) => lostLock(`waiting for the lock failed: ${describe(cause)}`, cause)
      }).pipe(
        Effect.tapError(() => drop(s)),
        Effect.onInterrupt(() => drop(s)),
        Effect.interruptible
      )

    const release = (s: Session) =>
      Effect.flatMap(Deferred.isDone(s.lost), (wasLost) =>
        wasLost
          ? drop(s)
          : Effect.tryPromise(() => s.client.query("SELECT pg_advisory_unlock($1, $2)", [k1, k2])).pipe(
            Effect.timeout("5 seconds"),
            // an unlock that fails leaves the session in doubt: closing it releases the lock for sure
            Effect.catchAll(() => drop(s))
          ))

    const heartbeat = (s: Session) =>
      Effect.tryPromise(() => s.client.query("SELECT 1")).pipe(
        Effect.delay(options.heartbeatEvery),
        Effect.forever,
        Effect.catchAll((e) => Deferred.succeed(s.lost, `the connection check failed: ${describe(e.error)}`)),
        Effect.interruptible
      )

    const withLock = <A, E, R>(cycle: Effect.Effect<A, E, R>): Effect.Effect<A, E | DbError, R> =>
      inProcess.withPermits(1)(
        Effect.acquireUseRelease(
          Effect.tap(acquireSession, waitForLock),
          (s) =>
            Effect.gen(function*() {
              const held: Held = { pid: s.pid, lost: s.lost }
              const beat = yield* Effect.fork(heartbeat(s))
              // The cycle runs as a child fiber that a lost lock interrupts. Only that interrupts it: the caller's own
              // interruption (SIGTERM, while the loop runs the cycle uninterruptibly) still lets it finish.
              const fiber = yield* Effect.fork(Effect.interruptible(Effect.locally(cycle, currentLock, held)))
              const watcher = yield* Effect.fork(Effect.interruptible(Effect.flatMap(Deferred.await(s.lost), () => Fiber.interrupt(fiber))))
              const exit = yield* Fiber.await(fiber).pipe(Effect.onInterrupt(() => Fiber.interrupt(fiber)))
              yield* Fiber.interrupt(watcher)
              yield* Fiber.interrupt(beat)
              const why = yield* Deferred.poll(s.lost)
              if (Exit.isInterrupted(exit) && Option.isSome(why)) {
                const reason = yield* why.value
                return yield* Effect.fail(lostLock(`${reason}; the cycle was stopped`))
              }
              return yield* exit
            }),
          release
        )
      )

    /**
     * Inside a step's transaction: does the cycle's session still hold the lock? Outside a cycle, nothing to check.
     * Fails (unavailable) when the lock is lost, and then the cycle is stopped too.
     */
    const fence = <E>(sql: (pid: number) => Effect.Effect<boolean, E>): Effect.Effect<void, E | DbError> =>
      Effect.flatMap(FiberRef.get(currentLock), (held) => {
        if (held === undefined) return Effect.void
        return Effect.flatMap(Deferred.poll(held.lost), (polled) =>
          Option.isSome(polled)
            ? Effect.flatMap(polled.value, (why) => Effect.fail(lostLock(`${why}; no step commits`)))
            : Effect.flatMap(sql(held.pid), (stillHeld) =>
              stillHeld
                ? Effect.void
                : Effect.zipRight(
                  Deferred.succeed(held.lost, "the lock is no longer held by its session"),
                  Effect.fail(lostLock("the lock is no longer held by its session; no step commits"))
                )))
      })

    const close = Effect.suspend(() => (session === undefined ? Effect.void : drop(session)))
    return { withLock, fence, key: options.key, close }
  })

export type SchedulerLock = Effect.Effect.Success<ReturnType<typeof makeSchedulerLock>>
