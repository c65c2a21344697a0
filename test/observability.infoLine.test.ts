import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { logInfoWith } from "../src/observability/infoLine.ts"

/*
 * `logInfoWith` must write the very line `Effect.annotateLogs(Effect.logInfo(...))` writes, and only skip the work
 * when the level drops the line anyway.
 */

interface Line {
  readonly message: unknown
  readonly logLevel: string
  readonly annotations: Record<string, unknown>
  readonly spans: unknown
}

const capture = (lines: Array<Line>) =>
  Logger.replace(Logger.defaultLogger, Logger.map(Logger.jsonLogger, (text) => {
    const { fiberId: _f, timestamp: _t, ...rest } = JSON.parse(text) as Line & { fiberId: unknown; timestamp: unknown }
    lines.push(rest)
  }))

describe("logInfoWith", () => {
  it.effect("writes the line annotateLogs + logInfo writes, with the annotations around it untouched", () => {
    const ours: Array<Line> = []
    const theirs: Array<Line> = []
    const fields = () => ({ job_id: 7, pod: "p-1", entity: "acme", entity_id: 1001, pool: "scw-em-rv1" })
    const around = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(Effect.zipRight(Effect.logInfo("after")), Effect.annotateLogs({ cycle: 3, pod: "outer" }), Effect.withLogSpan("cycle"))
    return Effect.gen(function*() {
      yield* around(logInfoWith("runner provisioned", fields)).pipe(Effect.provide(capture(ours)))
      yield* around(Effect.annotateLogs(Effect.logInfo("runner provisioned"), fields())).pipe(Effect.provide(capture(theirs)))
      expect(ours).toHaveLength(2)
      expect(ours.map((l) => ({ ...l, spans: Object.keys(l.spans as object) }))).toEqual(
        theirs.map((l) => ({ ...l, spans: Object.keys(l.spans as object) }))
      )
      expect(ours[0]!.annotations).toEqual({ cycle: 3, job_id: 7, pod: "p-1", entity: "acme", entity_id: 1001, pool: "scw-em-rv1" })
      expect(ours[1]!.annotations).toEqual({ cycle: 3, pod: "outer" })
    })
  })

  it.effect("below the minimum level: no line, and the annotations are not even built", () => {
    const lines: Array<Line> = []
    let built = 0
    return Effect.gen(function*() {
      yield* logInfoWith("runner provisioned", () => {
        built++
        return { job_id: 7 }
      }).pipe(Logger.withMinimumLogLevel(LogLevel.Warning), Effect.provide(capture(lines)))
      expect(lines).toEqual([])
      expect(built).toBe(0)
      yield* logInfoWith("runner provisioned", () => {
        built++
        return { job_id: 7 }
      }).pipe(Logger.withMinimumLogLevel(LogLevel.Info), Effect.provide(capture(lines)))
      expect(lines).toHaveLength(1)
      expect(built).toBe(1)
    })
  })
})
