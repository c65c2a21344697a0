import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll } from "vitest"
import { type Bundle, buildBundle, type Running } from "./entrypoint.ts"

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
