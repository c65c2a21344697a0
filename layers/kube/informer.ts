import { Duration, Effect, Fiber, Runtime, Scope } from "effect"
import { KubeError, type KubeOperation } from "../../src/services/Kube.ts"

/** How one watch request ended: by the server (or a silent connection), with 410 Gone, or with an error. */
export type WatchEnd = { readonly _tag: "Ended" } | { readonly _tag: "Gone" } | { readonly _tag: "Failed"; readonly error: KubeError }

/** A change as the informer hands it on, after its cache holds it. `Listed` follows every listing. */
export type InformerChange<A> =
  | { readonly _tag: "Added" | "Modified" | "Deleted"; readonly item: A }
  | { readonly _tag: "Listed" }

/** What an informer needs of the API: a listing with its resourceVersion, and one watch request from a version. */
export interface InformerSource<A> {
  /** what the logs call it: "pod", "node" */
  readonly kind: string
  /** the watch's operation, which names the error subscribers get should the informer stop on a defect */
  readonly operation: KubeOperation
  readonly keyOf: (item: A) => string
  /** which items the cache holds; the others are dropped as they arrive (runner pods: the unfinished ones) */
  readonly keep: (item: A) => boolean
  readonly list: Effect.Effect<{ readonly items: ReadonlyArray<A>; readonly version: string }, KubeError>
  /**
   * One watch request from `version`, until the API server ends it, it fails, or the scope closes. `opened` is
   * called once the server has answered (the watch is established), `onEvent` for every change, and `onVersion`
   * for every resourceVersion seen, bookmarks included, so the next request starts where this one stopped.
   */
  readonly watch: (
    version: string,
    handlers: {
      readonly opened: () => void
      readonly onEvent: (type: "Added" | "Modified" | "Deleted", item: A) => void
      readonly onVersion: (version: string) => void
    }
  ) => Effect.Effect<WatchEnd>
}

/**
 * A cache of one kind of object that follows the cluster: a listing, then a watch from the listing's
 * resourceVersion, opened again from the last version seen whenever it ends, and a new listing when that version
 * is too old (410 Gone). It is what client-go calls an informer, cut to what the service needs:
 *
 * - `current` is the cache while it follows the cluster (listed, and a watch established since), else undefined:
 *   a reader then lists instead, so a broken watch never serves a stale view for long.
 * - A subscriber gets every change after the cache has it, so what a subscriber acts on (a pod ended, a board
 *   free) is already in `current`: the scheduler woken by a pod's end reads that end in its capacity.
 * - `created` is read-your-writes for the service's own creations: the object the API server answered with
 *   counts until the watch reports it, unless the watch reported it first (then the watch's state, which is as new
 *   or newer, stands). Without it a cycle could read its own new pod as a free slot and plan another runner on it.
 *
 * It starts on first use (`read`, `ensure` or `subscribe`) in the layer's scope, so a process that never reads
 * the cluster opens no watch. A listing that fails stops it and fails its subscribers; the next use starts it again.
 */
export interface Informer<A> {
  readonly current: () => ReadonlyArray<A> | undefined
  /**
   * What the cluster holds: `current` while the cache follows the cluster, else the source's listing, which also
   * starts the informer from it (a cold read lists anyway).
   */
  readonly read: Effect.Effect<ReadonlyArray<A>, KubeError>
  /** Starts it, if it is not running, with a listing of its own. */
  readonly ensure: Effect.Effect<void>
  /**
   * Hands every change from now on to `onChange`; `Listed` first when the cache is already listed, since the
   * subscriber saw none of what came before. `onFail` ends the subscription when a listing fails.
   */
  readonly subscribe: (onChange: (change: InformerChange<A>) => void, onFail: (error: KubeError) => void) => Effect.Effect<() => void>
  /** Called before the service creates an object of `key`, and with its outcome after (undefined: no object). */
  readonly creating: (key: string) => void
  readonly created: (key: string, item: A | undefined) => void
}

interface Subscriber<A> {
  readonly onChange: (change: InformerChange<A>) => void
  readonly onFail: (error: KubeError) => void
}

/**
 * `runtime` is the layer's own (captured when it was built) and `scope` its scope: the informer's fiber runs with
 * the layer's context, not with that of whichever request first used it (a cycle's log annotations and span would
 * otherwise follow the watch for the life of the process), and stops when the layer does.
 */
export const makeInformer = <A>(source: InformerSource<A>, scope: Scope.Scope, runtime: Runtime.Runtime<never>): Informer<A> => {
  const store = new Map<string, A>()
  // our own creations the watch has not reported yet; `inFlight` marks those the watch reported while in flight
  const ours = new Map<string, A>()
  const inFlight = new Map<string, { seen: boolean }>()
  const subscribers = new Set<Subscriber<A>>()
  let running = false
  let listed = false
  let live = false
  let version = ""

  const publish = (change: InformerChange<A>) => {
    for (const s of subscribers) s.onChange(change)
  }

  const fill = (items: ReadonlyArray<A>, at: string) => {
    store.clear()
    ours.clear()
    // a creation in flight is in this listing, or comes after it on the watch: either way the cache learns of it
    for (const pending of inFlight.values()) pending.seen = true
    for (const item of items) if (source.keep(item)) store.set(source.keyOf(item), item)
    version = at
    listed = true
    live = false
    publish({ _tag: "Listed" })
  }

  const apply = (type: "Added" | "Modified" | "Deleted", item: A) => {
    const key = source.keyOf(item)
    ours.delete(key)
    const pending = inFlight.get(key)
    if (pending !== undefined) pending.seen = true
    if (type !== "Deleted" && source.keep(item)) store.set(key, item)
    else store.delete(key)
    publish({ _tag: type, item })
  }

  const follow = Effect.gen(function*() {
    let failures = 0
    while (true) {
      if (!listed) {
        const listing = yield* source.list
        fill(listing.items, listing.version)
      }
      let seen = 0
      const end = yield* source.watch(version, {
        opened: () => {
          live = true
        },
        onEvent: (type, item) => {
          seen += 1
          apply(type, item)
        },
        onVersion: (v) => {
          if (v !== "") version = v
        }
      })
      if (seen > 0) failures = 0
      if (end._tag === "Gone") {
        yield* Effect.logInfo(`the ${source.kind} watch's resourceVersion expired; listing again`)
        listed = false
        live = false
      } else if (end._tag === "Failed") {
        live = false
        failures += 1
        yield* Effect.logWarning(`the ${source.kind} watch failed; opening it again`).pipe(
          Effect.annotateLogs({ error: end.error.message, attempt: failures })
        )
        // Persistent failures start again from a listing, and a listing that fails stops the informer.
        if (failures >= 5) listed = false
        yield* Effect.sleep(Duration.millis(Math.min(5_000, 200 * 2 ** (failures - 1))))
      } else if (seen === 0) {
        // An end without a single event: do not hammer a server that closes every watch at once. The changes in
        // the pause are replayed from the version, so the cache stays usable meanwhile.
        yield* Effect.sleep("1 second")
      }
    }
  })

  const stop = (error: KubeError) =>
    Effect.sync(() => {
      running = false
      listed = false
      live = false
      const failed = [...subscribers]
      subscribers.clear()
      for (const s of failed) s.onFail(error)
    })

  const start = (seedWith?: { readonly items: ReadonlyArray<A>; readonly version: string }) =>
    Effect.suspend(() => {
      if (running) return Effect.void
      running = true
      if (seedWith !== undefined) fill(seedWith.items, seedWith.version)
      // a fiber of its own (not a child of the caller's, which may be in a region where interruption is off, as a
      // stream's acquire is), ended by the scope; on a scope already closed the finalizer runs at once, before the
      // fiber's first step (it yields first, since `runFork` runs a fiber at once up to its first pause)
      const fiber = Runtime.runFork(runtime)(Effect.zipRight(Effect.yieldNow(), follow).pipe(
        Effect.catchAll(stop),
        // a bug must not leave a frozen cache that says it is live: it stops the informer as a failed listing does
        Effect.catchAllDefect((defect) =>
          Effect.zipRight(
            Effect.logError(`the ${source.kind} informer stopped on an unexpected error`, defect),
            stop(new KubeError({ operation: source.operation, status: null, message: `the ${source.kind} watch stopped on an unexpected error` }))
          )),
        Effect.ensuring(Effect.sync(() => {
          running = false
          listed = false
          live = false
        }))
      ))
      return Scope.addFinalizer(scope, Fiber.interrupt(fiber))
    })

  const current = () => (live ? [...store.values(), ...ours.values()] : undefined)

  return {
    current,
    read: Effect.suspend(() => {
      const cached = current()
      return cached !== undefined
        ? Effect.succeed(cached)
        : Effect.map(Effect.tap(source.list, (l) => start({ items: l.items, version: l.version })), (l) => l.items.filter(source.keep))
    }),
    ensure: start(),
    subscribe: (onChange, onFail) =>
      Effect.flatMap(
        Effect.sync(() => {
          const subscriber: Subscriber<A> = { onChange, onFail }
          subscribers.add(subscriber)
          if (listed) onChange({ _tag: "Listed" })
          return () => void subscribers.delete(subscriber)
        }),
        (unsubscribe) => Effect.as(start(), unsubscribe)
      ),
    creating: (key) => void inFlight.set(key, { seen: false }),
    created: (key, item) => {
      const pending = inFlight.get(key)
      inFlight.delete(key)
      if (item === undefined || pending?.seen === true || !listed) return
      if (source.keep(item) && !store.has(key)) ours.set(key, item)
    }
  }
}
