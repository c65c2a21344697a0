import { Effect, Layer } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { loopScenarios } from "./support/schedulerLoopScenarios.ts"
import { boardScenarios } from "./support/boardScenarios.ts"
import { schedulerScenarios } from "./support/schedulerScenarios.ts"
import { worldLayer } from "./support/schedulerWorld.ts"

// A fresh in-memory store, GitHub and cluster per scenario.
schedulerScenarios("in memory", (body, options) => Effect.provide(body, worldLayer(DbMemory, options)))

// The loop's wake-ups on a fresh in-memory store per case.
loopScenarios("in memory", Effect.succeed(Layer.fresh(DbMemory)))
boardScenarios("in memory", (body, options) => Effect.provide(body, worldLayer(DbMemory, options)))
