import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll } from "vitest"
import { type Bundle, buildBundle, freePort, type Running, startEntrypoint } from "./entrypoint.ts"
import { freshDatabase } from "./postgres.ts"

/** What a test file that runs the bundled entrypoint as child processes shares. */
export interface ProcessSuite {
  /** the bundle `npm run build` makes, built once before the file's first test */
  readonly bundle: () => Bundle
  /** closed when the file's tests end (fresh databases extended into it are dropped then) */
  readonly scope: Scope.Scope
  /** the children to stop when the file's tests end: push each one started */
  readonly children: Array<Running>
  /** more to undo when the file's tests end, after the children have stopped and the scope has closed */
  readonly onEnd: (cleanup: () => void) => void
}

/**
 * Builds the bundle before the file's tests and, after them, stops every child (SIGTERM as Kubernetes sends it,
 * SIGKILL after `stopGraceMs`), closes the scope and removes the bundle: the set-up every process test repeated.
 */
export const processSuite = (options: { readonly stopGraceMs?: number } = {}): ProcessSuite => {
  let bundle: Bundle | undefined
  const scope = Effect.runSync(Scope.make())
  const children: Array<Running> = []
  const cleanups: Array<() => void> = []
  // building takes seconds, and tens of them on a loaded machine
  beforeAll(() => {
    bundle = buildBundle()
  }, 120_000)
  afterAll(async () => {
    await Promise.all(children.map((c) => c.stop(options.stopGraceMs)))
    await Effect.runPromise(Scope.close(scope, Exit.void))
    for (const cleanup of cleanups) cleanup()
    bundle?.remove()
  }, 60_000)
  return {
    bundle: () => {
      if (bundle === undefined) throw new Error("the bundle is built in beforeAll: use it inside a test or hook")
      return bundle
    },
    scope,
    children,
    onEnd: (cleanup) => void cleanups.push(cleanup)
  }
}

/** A running `all --simulate` of the bundled entrypoint, and where it listens. */
export interface Simulated {
  readonly child: Running
  /** the fresh database it runs on, dropped when the file's tests end */
  readonly databaseUrl: string
  readonly port: number
  readonly schedulerPort: number
  readonly simPort: number
  /** base URLs on 127.0.0.1: the webhook (`PORT`), the scheduler's routes and the simulation's control API */
  readonly webhook: string
  readonly scheduler: string
  readonly control: string
}

/**
 * Starts `all --simulate` of the suite's bundle on a fresh database (named after `label`) and three free ports,
 * with `env` over those settings, and resolves once its banner names the control API: the banner is printed
 * when every server listens. The child is stopped, and the database dropped, when the file's tests end.
 */
export const startSimulated = async (
  suite: ProcessSuite,
  label: string,
  env: Record<string, string | undefined> = {},
  options: { readonly startTimeoutMs?: number } = {}
): Promise<Simulated> => {
  const db = await Effect.runPromise(freshDatabase(label).pipe(Scope.extend(suite.scope)))
  const [port, schedulerPort, simPort] = [await freePort(), await freePort(), await freePort()]
  const child = startEntrypoint(suite.bundle(), ["all", "--simulate"], {
    POSTGRES_URL: db.url,
    PORT: String(port),
    SCHEDULER_PORT: String(schedulerPort),
    SIM_PORT: String(simPort),
    ...env
  })
  suite.children.push(child)
  // start-up migrates the database and builds the simulated cluster: tens of seconds on a loaded machine
  await child.waitForLine((l) => l.includes(`localhost:${simPort}/`), options.startTimeoutMs ?? 90_000)
  return {
    child,
    databaseUrl: db.url,
    port,
    schedulerPort,
    simPort,
    webhook: `http://127.0.0.1:${port}`,
    scheduler: `http://127.0.0.1:${schedulerPort}`,
    control: `http://127.0.0.1:${simPort}`
  }
}
