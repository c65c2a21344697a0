import { it } from "@effect/vitest"
import { Effect } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { dbContract } from "./contracts/db.ts"

// A fresh in-memory store per case.
dbContract("memory", (title, body, clock) =>
  (clock === "test" ? it.effect : it.live)(title, () => Effect.provide(body, DbMemory)))
