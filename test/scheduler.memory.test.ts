import { Effect } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { boardScenarios } from "./support/boardScenarios.ts"
import { schedulerScenarios } from "./support/schedulerScenarios.ts"
import { worldLayer } from "./support/schedulerWorld.ts"

// A fresh in-memory store, GitHub and cluster per scenario.
schedulerScenarios("in memory", (body, options) => Effect.provide(body, worldLayer(DbMemory, options)))
boardScenarios("in memory", (body, options) => Effect.provide(body, worldLayer(DbMemory, options)))
