/**
 * How long the service waits for PostgreSQL. A webhook delivery must be answered well within GitHub's 10 s, so
 * every wait on the database is bounded, on the server (`statement_timeout`, `lock_timeout`) and in the client
 * (a connect timeout, and an answer deadline after which the connection is given up: a frozen server never sends
 * the cancellation its own statement timeout would).
 */
export interface DbTimeouts {
  /** opening a connection, and waiting for a free one of the pool */
  readonly connectMs: number
  /** the server cancels a statement running longer (`statement_timeout`); 0 turns it off */
  readonly statementMs: number
  /** the server cancels a statement waiting longer for a lock (`lock_timeout`); 0 turns it off */
  readonly lockMs: number
}

export const defaultDbTimeouts: DbTimeouts = { connectMs: 5000, statementMs: 5000, lockMs: 3000 }

/**
 * The client waits this much longer than the server's statement timeout before it gives a connection up, so that
 * a live server's own cancellation (a clean error, the connection kept) normally comes first.
 */
export const ANSWER_GRACE_MS = 1000

/** The client's answer deadline for one statement (0: none). */
export const answerDeadlineMs = (t: DbTimeouts): number => (t.statementMs === 0 ? 0 : t.statementMs + ANSWER_GRACE_MS)

/**
 * A statement whose text holds this comment waits by design, without the client's answer deadline: the standby
 * scheduler's wait for its advisory lock (on a connection without server timeouts) and the migrations (whose
 * transaction turns the server's timeouts off as well).
 */
export const WAITS_BY_DESIGN = "/* riscv-runner: waits by design */"

/** The startup options that set the server-side timeouts of every connection of the pool. */
export const timeoutOptions = (t: DbTimeouts): string => `-c statement_timeout=${t.statementMs} -c lock_timeout=${t.lockMs}`

/**
 * SQLSTATE classes that mean the database is not answering in time or not there, rather than that a statement
 * is wrong: connection exceptions (08), operator intervention (57: admin shutdown, query cancelled by the
 * statement timeout, cannot connect now), insufficient resources (53: too many connections) and
 * lock_not_available (55P03, the lock timeout). An error without a SQLSTATE comes from the socket or the client
 * (refused, reset, terminated, the connect timeout, the answer deadline).
 */
export const isUnavailableCause = (pgError: unknown): boolean => {
  const code = typeof pgError === "object" && pgError !== null ? (pgError as { code?: unknown }).code : undefined
  // no SQLSTATE class starts with E; node's socket errors (ECONNREFUSED, EPIPE, ...) all do
  if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code) || code.startsWith("E")) return true
  return code.startsWith("08") || code.startsWith("57") || code.startsWith("53") || code === "55P03"
}
