import { Effect, Layer, Queue } from "effect"
import { describeEvent, eventFields, formatEvent } from "./events.ts"
import { SimWorld } from "./worldApi.ts"

/**
 * How a line reaches the operator: `main.ts` passes the one that writes its banner (plain text, or under
 * LOG_FORMAT=json a log entry carrying `fields`), so the event lines look like every other stdout line.
 */
export type LineWriter = (text: string, fields?: Readonly<Record<string, unknown>>) => Effect.Effect<void>

/**
 * Prints one line per notable event of the simulated world (job queued, runner provisioned, job started and
 * done, faults, failed deliveries) through `print`, next to the service's own log: readable text in pretty mode,
 * the event's short description with its fields under LOG_FORMAT=json.
 */
export const SimEventPrinter = (format: "json" | "pretty", print: LineWriter) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const world = yield* SimWorld
      const events = yield* world.subscribe
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
