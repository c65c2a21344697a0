import { Duration, Effect, Layer, Random } from "effect"
import type { OwnerType } from "./payloads.ts"
import { SimWorld } from "./worldApi.ts"

/*
 * `--demo`: a steady mixed load from several entities, so `npm start -- --demo` shows the system busy without
 * anyone posting jobs. Arrivals are a Poisson process sized to keep the default four boards about three-quarters
 * busy; job durations are drawn between 30 s and 5 min (simulated).
 */

interface DemoEntity {
  readonly owner: string
  readonly ownerType: OwnerType
  readonly repos: ReadonlyArray<string>
  /** relative share of the arrivals */
  readonly weight: number
}

export const DEMO_ENTITIES: ReadonlyArray<DemoEntity> = [
  { owner: "acme", ownerType: "Organization", repos: ["acme/app", "acme/firmware"], weight: 4 },
  { owner: "globex", ownerType: "Organization", repos: ["globex/kernel"], weight: 2 },
  { owner: "initech", ownerType: "Organization", repos: ["initech/tps"], weight: 1 },
  { owner: "alice", ownerType: "User", repos: ["alice/dotfiles"], weight: 1 }
]

export interface DemoOptions {
  /** mean arrivals per simulated minute (each arrival posts one to three jobs) */
  readonly arrivalsPerMinute?: number
  /** wait this long (real) before the first arrival, so the service is listening */
  readonly startDelay?: Duration.DurationInput
}

const pick = <A extends { readonly weight: number }>(items: ReadonlyArray<A>, x: number): A => {
  const total = items.reduce((s, i) => s + i.weight, 0)
  let acc = 0
  for (const item of items) {
    acc += item.weight
    if (x * total < acc) return item
  }
  return items[items.length - 1]!
}

export const demoLoad = (options: DemoOptions = {}) =>
  Effect.gen(function*() {
    const world = yield* SimWorld
    const speed = world.options.speed > 0 ? world.options.speed : 1
    const perMinute = options.arrivalsPerMinute ?? 0.55
    yield* Effect.sleep(options.startDelay ?? Duration.seconds(2))
    yield* Effect.logInfo("demo load started").pipe(Effect.annotateLogs({ arrivalsPerMinute: perMinute }))
    while (true) {
      // exponential inter-arrival time, in simulated ms, then scaled to real time
      const gapMs = -Math.log(1 - (yield* Random.next)) * 60_000 / perMinute
      yield* Effect.sleep(Duration.millis(gapMs / speed))
      const entity = pick(DEMO_ENTITIES, yield* Random.next)
      const repo = entity.repos[Math.floor((yield* Random.next) * entity.repos.length)]!
      yield* world.submitJobs({
        owner: entity.owner,
        ownerType: entity.ownerType,
        repo,
        count: 1 + Math.floor((yield* Random.next) * 3),
        durationSeconds: 30 + Math.floor((yield* Random.next) * 270)
      }).pipe(Effect.catchAll((e) => Effect.logWarning("demo load: a submission was refused", e.message)))
    }
  })

/** The demo load as a background feature. */
export const SimDemoLoad = (options: DemoOptions = {}) => Layer.scopedDiscard(Effect.forkScoped(demoLoad(options)))
