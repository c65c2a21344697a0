import { Effect, Layer, Queue } from "effect"
import { type LogFormat, operatorLine } from "../../src/observability/operatorLine.ts"
import { describeEvent, eventFields, formatEvent } from "./events.ts"
import { SimWorld } from "./worldApi.ts"

/**
 * Prints one line per notable event of the simulated world (job queued, runner provisioned, job started and
 * done, faults, failed deliveries) on stdout, next to the service's own log: readable text in pretty mode, a JSON
 * log entry carrying the event's fields under LOG_FORMAT=json.
 */
export const SimEventPrinter = (format: LogFormat) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const world = yield* SimWorld
      const events = yield* world.subscribe
      const print = operatorLine(format)
      yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
        const event = yield* Queue.take(events)
        if (format === "json") {
          const line = describeEvent(event, world.options.speed)
          if (line !== undefined) yield* print(`${line.what} ${line.text}`, eventFields(event))
        } else {
          const line = formatEvent(event, world.options.speed)
          if (line !== undefined) yield* print(line)
        }
      })))
    })
  )
