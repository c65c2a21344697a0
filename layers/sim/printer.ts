import { Console, Effect, Layer, Queue } from "effect"
import { formatEvent } from "./events.ts"
import { SimWorld } from "./worldApi.ts"

/**
 * Prints one line per notable event of the simulated world (job queued, runner provisioned, job started and
 * done, faults, failed deliveries) on stdout, next to the service's own log.
 */
export const SimEventPrinter = Layer.scopedDiscard(
  Effect.gen(function*() {
    const world = yield* SimWorld
    const events = yield* world.subscribe
    yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      const event = yield* Queue.take(events)
      const line = formatEvent(event, world.options.speed)
      if (line !== undefined) yield* Console.log(line)
    })))
  })
)
