import { Effect } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { dbContract } from "./db.contract.ts"

// A fresh in-memory store per case.
dbContract("memory", (body) => Effect.provide(body, DbMemory))
