import { Context, Effect, Layer, Ref } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import { Github } from "../../src/services/Github.ts"
import { makeCallCounter } from "./callCounter.ts"
import { makeGithubClient } from "./client.ts"
import { GithubMemoryControl, type GithubMemoryOptions, type RedeliveryRequest } from "./memoryControl.ts"
import { makeControlHandle } from "./memoryControlHandle.ts"
import { makeMemoryServer } from "./memoryServer.ts"
import { emptyState } from "./memoryState.ts"

/*
 * An in-memory GitHub: the same client as the live layer (`client.ts`), talking to an in-memory GitHub server
 * (`memoryServer.ts`) instead of api.github.com, plus the server's control handle for tests and the simulation.
 * Call counts and budget spending therefore mean what they mean against real GitHub. Everything is a Ref and
 * Effect's Clock and Random, so TestClock and a seeded Random make runs repeatable.
 */

export type {
  FaultOptions,
  GithubFault,
  GithubMemoryControlShape,
  GithubMemoryOptions,
  GithubMemorySnapshot,
  MemoryJob,
  DeliveryAttemptInput,
  MemoryDelivery,
  MemoryRun,
  RedeliveryRequest,
  MemoryRunner,
  MemoryRunnerGroup,
  MemoryRunnerScope
} from "./memoryControl.ts"
export { GithubMemoryControl } from "./memoryControl.ts"

const make = (options: GithubMemoryOptions) =>
  Effect.gen(function*() {
    const appIds: Record<EntityType, number> = {
      Organization: options.orgAppId ?? 2167633,
      User: options.personalAppId ?? 3131217
    }
    const defaultLimit = options.rateLimit ?? 5000
    const state = yield* Ref.make(emptyState)
    const counter = yield* makeCallCounter
    const listeners = yield* Ref.make<ReadonlyArray<(request: RedeliveryRequest) => Effect.Effect<void>>>([])
    const server = makeMemoryServer(state, counter, defaultLimit, listeners)
    const meter = options.meterServer
    const service = yield* makeGithubClient({
      transport: meter === undefined ? server : { request: (request) => meter(server.request(request)) },
      counter,
      appIds
    })
    return Context.make(Github, service).pipe(
      Context.add(GithubMemoryControl, makeControlHandle(state, counter, defaultLimit, listeners))
    )
  })

/** The in-memory GitHub with options (app ids, budget size). */
export const GithubMemoryWith = (options: GithubMemoryOptions = {}): Layer.Layer<Github | GithubMemoryControl> =>
  Layer.effectContext(make(options))

/** The in-memory GitHub: the Github service plus its control handle, sharing one state. */
export const GithubMemory: Layer.Layer<Github | GithubMemoryControl> = GithubMemoryWith()
