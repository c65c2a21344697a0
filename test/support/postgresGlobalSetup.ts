import type {} from "vitest"
import { Effect, Exit, Scope } from "effect"
import type { TestProject } from "vitest/node"
import { startEmbeddedPostgres, tempDataDir } from "../../src/embedded/embeddedPostgres.ts"

declare module "vitest" {
  export interface ProvidedContext {
    /** admin URL of the PostgreSQL server the suites share; each suite creates its own database on it */
    postgresUrl: string
  }
}

/**
 * One real PostgreSQL server for the whole test run: `POSTGRES_URL` when set, otherwise an embedded server in a
 * temporary directory that is removed afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.POSTGRES_URL
  if (given !== undefined && given !== "") {
    project.provide("postgresUrl", given)
    return async () => undefined
  }
  const scope = Effect.runSync(Scope.make())
  const dataDir = await tempDataDir("riscv-runner-test-pg-")
  const running = await Effect.runPromise(
    startEmbeddedPostgres({ dataDir, persistent: false }).pipe(Scope.extend(scope))
  )
  project.provide("postgresUrl", running.url)
  return async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
