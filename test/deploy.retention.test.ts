/**
 * JOB_RETENTION_DAYS: the scheduler's hourly deletion of old completed jobs (src/scheduler/retention.ts), on the
 * in-memory store with TestClock. The Db contract covers which rows the deletion takes on both stores.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Option, TestClock } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { pruneCompletedJobs } from "../src/scheduler/retention.ts"
import { makeSchedulerState } from "../src/scheduler/state.ts"
import { Db } from "../src/services/Db.ts"
import { newJob } from "./support/dbFixtures.ts"

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE
const withRetention = (days: string) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["JOB_RETENTION_DAYS", days]])))

describe("job retention", () => {
  it.effect("deletes completed jobs past JOB_RETENTION_DAYS, at most once an hour", () =>
    Effect.gen(function*() {
      const db = yield* Db
      const state = yield* makeSchedulerState
      yield* db.addJob(newJob(1))
      yield* db.markJobCompleted(1, "r")
      const kept = (id: number) => Effect.map(db.getJob(id), Option.isSome)

      yield* TestClock.setTime(DAY - 10 * MINUTE)
      yield* pruneCompletedJobs(state).pipe(withRetention("1")) // not a day old yet
      expect(yield* kept(1)).toBe(true)

      yield* TestClock.setTime(DAY + 10 * MINUTE)
      yield* pruneCompletedJobs(state).pipe(withRetention("1")) // old enough, but the last run was 20 min ago
      expect(yield* kept(1)).toBe(true)

      yield* TestClock.setTime(DAY + 50 * MINUTE)
      yield* pruneCompletedJobs(state).pipe(withRetention("1"))
      expect(yield* kept(1)).toBe(false)
    }).pipe(Effect.provide(DbMemory)))

  it.effect("defaults to 15 days, and an invalid setting deletes nothing", () =>
    Effect.gen(function*() {
      const db = yield* Db
      yield* db.addJob(newJob(1))
      yield* db.markJobCompleted(1, "r")
      const unset = Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
      yield* TestClock.setTime(14 * DAY)
      yield* pruneCompletedJobs(yield* makeSchedulerState).pipe(unset)
      expect(Option.isSome(yield* db.getJob(1))).toBe(true)
      yield* TestClock.setTime(15 * DAY + MINUTE)
      const invalid = yield* Effect.either(pruneCompletedJobs(yield* makeSchedulerState).pipe(withRetention("0")))
      expect(Either.isLeft(invalid)).toBe(true)
      expect(Option.isSome(yield* db.getJob(1))).toBe(true)
      yield* pruneCompletedJobs(yield* makeSchedulerState).pipe(unset)
      expect(Option.isNone(yield* db.getJob(1))).toBe(true)
    }).pipe(Effect.provide(DbMemory)))
})
