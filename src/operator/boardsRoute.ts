import { HttpApiBuilder, HttpServerRequest } from "@effect/platform"
import { Clock, Effect, Either, Layer, Option, Redacted } from "effect"
import { InternalError, NotFound, Unauthorized, Unavailable } from "../observability/apiErrors.ts"
import { trustedCapacity } from "../scheduler/quarantine.ts"
import { SchedulerSettings } from "../scheduler/settings.ts"
import { Db } from "../services/Db.ts"
import { Kube } from "../services/Kube.ts"
import { SchedulerApi } from "./Api.ts"
import { OperatorAuth } from "./BoardsApi.ts"
import { timingSafeEqual } from "node:crypto"

/** How many quarantine records `/boards.json` shows. */
const EVENTS_SHOWN = 50

const internal = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, InternalError, R> =>
  Effect.catchAll(effect, (e) => Effect.zipRight(Effect.logError("boards route failed", e), Effect.fail(new InternalError({ message: "internal error" }))))

/** Equal-length constant-time comparison, so the answer's timing says nothing about the secret. */
const sameSecret = (given: string, secret: string): boolean => {
  const a = Buffer.from(given)
  const b = Buffer.from(secret)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Passes when `Authorization` is exactly `Bearer <TRACE_API_SECRET>`; 503 while none is configured. */
export const OperatorAuthLive = Layer.effect(
  OperatorAuth,
  Effect.map(SchedulerSettings, (settings) =>
    Effect.gen(function*() {
      const secret = Option.filter(settings.operatorSecret, (s) => Redacted.value(s) !== "")
      if (Option.isNone(secret)) {
        yield* Effect.logWarning("operator write refused: TRACE_API_SECRET is not set").pipe(Effect.annotateLogs({ status: 503 }))
        return yield* new Unavailable({ message: "operator routes disabled: TRACE_API_SECRET is not set" })
      }
      const request = yield* HttpServerRequest.HttpServerRequest
      const given = request.headers["authorization"] ?? ""
      if (!given.startsWith("Bearer ") || !sameSecret(given.slice("Bearer ".length), Redacted.value(secret.value))) {
        yield* Effect.logWarning("operator write refused: Unauthorized").pipe(Effect.annotateLogs({ status: 401 }))
        return yield* new Unauthorized({ message: "Unauthorized" })
      }
    }))
)

/** `GET /boards.json`: one capacity reading, the standings and the latest records. */
export const boardsData = Effect.gen(function*() {
  const db = yield* Db
  const kube = yield* Kube
  const now = yield* Clock.currentTimeMillis
  const [states, events, reading] = yield* Effect.all([db.getBoardStates, db.listBoardEvents(EVENTS_SHOWN), Effect.either(kube.capacity)])
  const byNode = new Map(states.map((s) => [s.node, s]))
  const capacity = Either.isRight(reading) ? [...trustedCapacity(reading.right, states).values()] : []
  return {
    generated_at: new Date(now).toISOString(),
    capacity_error: Either.isLeft(reading) ? "cannot read the cluster's capacity" : null,
    pools: capacity.map((c) => ({ pool: c.pool, cluster: kube.clusterOf(c.pool), total: c.total, usable: c.usable, busy: c.active, free: c.available })),
    boards: capacity.flatMap((c) =>
      c.boards.map((b) => {
        const s = byNode.get(b.name)
        return {
          node: b.name,
          pool: b.pool,
          cluster: kube.clusterOf(b.pool),
          slots: b.slots,
          busy: b.busy,
          usable: b.unusable === null,
          why_unusable: b.unusable,
          ready: b.ready,
          standing: s?.state ?? null,
          quarantined_until: s?.state === "quarantined" && s.until !== null ? s.until.toISOString() : null
        }
      })
    ),
    events: events.map((e) => ({ ...e, at: e.at.toISOString() }))
  }
})

/** `POST /boards/{node}/release`: the operator trusts the board again at once; the release is recorded. */
export const releaseBoard = Effect.fn("Operator.releaseBoard")(function*(node: string) {
  const db = yield* Db
  const states = yield* internal(db.getBoardStates)
  const s = states.find((x) => x.node === node)
  if (s === undefined || s.state === "healthy") return yield* new NotFound({ message: "Board not quarantined" })
  const at = new Date(yield* Clock.currentTimeMillis)
  const eventId = yield* internal(db.recordBoardTransition(
    { ...s, state: "healthy", since: at, until: null },
    { node: s.node, pool: s.pool, kind: "operator_release", at, probation_seconds: null, evidence: [] }
  ))
  yield* Effect.logWarning("board released by an operator").pipe(Effect.annotateLogs({ node: s.node, pool: s.pool }))
  return { node: s.node, pool: s.pool, standing: "healthy" as const, event_id: eventId }
})

export const BoardsHttp = HttpApiBuilder.group(SchedulerApi, "boards", (handlers) =>
  handlers
    .handle("boards", () => internal(boardsData))
    .handle("release", ({ path }) => releaseBoard(path.node))
).pipe(Layer.provide(OperatorAuthLive))
