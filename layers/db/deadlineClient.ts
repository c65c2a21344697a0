import Pg from "pg"
import { WAITS_BY_DESIGN } from "./timeouts.ts"

/** What a statement that got no answer in time fails with; its connection is closed. */
export class AnswerDeadlineExceeded extends Error {
  override readonly name = "AnswerDeadlineExceeded"
  constructor(readonly deadlineMs: number) {
    super(`PostgreSQL did not answer within ${deadlineMs} ms; the connection was closed`)
  }
}

const expired = new WeakMap<Pg.Client, AnswerDeadlineExceeded>()

/**
 * Why the connection of `client` was closed, when its answer deadline did it. The client's 'error' event only
 * says "Connection terminated unexpectedly"; this tells a frozen server from a terminated backend.
 */
export const deadlineExpiry = (client: Pg.Client): AnswerDeadlineExceeded | undefined => expired.get(client)

type Callback = (err: Error | null, result?: unknown) => void

const textOf = (config: unknown): string =>
  typeof config === "string" ? config : typeof config === "object" && config !== null ? String((config as { text?: unknown }).text ?? "") : ""

/**
 * A `pg` Client whose statements have an answer deadline. pg's own `query_timeout` fails the call but leaves the
 * connection busy with the statement, so the next statement on it queues behind one that may never finish (a
 * frozen server, a silent network partition). Here the socket is destroyed instead: the statement fails with
 * `AnswerDeadlineExceeded`, the client emits 'error', and the pool drops the connection. Statements marked
 * `WAITS_BY_DESIGN` and cursors (portals read in rounds) have no deadline.
 */
export const deadlineClient = (deadlineMs: number): typeof Pg.Client => {
  if (deadlineMs <= 0) return Pg.Client
  class DeadlineClient extends Pg.Client {
    // pg's query takes (text | config | submittable, values?, callback?) with a callback or a promise; only the
    // completion is wrapped, the call itself goes through unchanged
    override query(...args: Array<any>): any {
      const [config] = args
      if (typeof config?.submit === "function" || textOf(config).includes(WAITS_BY_DESIGN)) return (super.query as any)(...args)
      let late = false
      const timer = setTimeout(() => {
        late = true
        expired.set(this, new AnswerDeadlineExceeded(deadlineMs))
        ;(this as unknown as { connection: { stream: { destroy: () => void } } }).connection.stream.destroy()
      }, deadlineMs)
      const settle = (err: Error | null): Error | null => {
        clearTimeout(timer)
        return late && err !== null ? new AnswerDeadlineExceeded(deadlineMs) : err
      }
      const at = args.findIndex((a, i) => i > 0 && typeof a === "function")
      if (at > 0) {
        const callback = args[at] as Callback
        args[at] = ((err, result) => callback(settle(err), result)) satisfies Callback
        return (super.query as any)(...args)
      }
      if (typeof config?.callback === "function") {
        const callback = config.callback as Callback
        config.callback = ((err, result) => callback(settle(err), result)) satisfies Callback
        return (super.query as any)(...args)
      }
      return ((super.query as any)(...args) as Promise<unknown>).then(
        (result) => (settle(null), result),
        (err: Error) => Promise.reject(settle(err))
      )
    }
  }
  return DeadlineClient
}
