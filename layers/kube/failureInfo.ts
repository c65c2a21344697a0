import { Cause, Effect, Either } from "effect"
import { failureV2, type FailureInfoV2, type FailureReason } from "../../src/domain/FailureInfo.ts"
import { buildFailureInfo, hasStarted, type Pod, type PodEvent } from "../../src/domain/Pod.ts"
import type { KubeError } from "../../src/services/Kube.ts"

/** The two reads failure collection needs; each layer passes its own. */
export interface FailureSources {
  readonly podEvents: (podName: string) => Effect.Effect<ReadonlyArray<PodEvent>, KubeError>
  readonly containerLogs: (podName: string, container: string) => Effect.Effect<string, KubeError>
}

/**
 * Collects `failure_info` v2 for a pod, shared by both layers so they describe failures identically. Reads run
 * concurrently; each one that fails is named in `collect_error` and the rest is still returned. Even a defect
 * ends as a minimal v2 record, because a worker must be marked failed whether or not diagnostics could be read.
 */
export const collectFailureInfoWith = (sources: FailureSources) =>
  Effect.fn("Kube.collectFailureInfo")(function*(pod: Pod, reason: FailureReason) {
    const started = [...pod.initContainers, ...pod.containers].filter(hasStarted)
    const [events, logs] = yield* Effect.all(
      [
        Effect.either(sources.podEvents(pod.name)),
        Effect.forEach(started, (c) =>
          Effect.either(sources.containerLogs(pod.name, c.name)).pipe(Effect.map((r) => [c.name, r] as const)), {
          concurrency: "unbounded"
        })
      ],
      { concurrency: "unbounded" }
    )
    const errors: Array<string> = []
    if (Either.isLeft(events)) errors.push(`events: ${events.left.message}`)
    const logMap = new Map<string, string>()
    for (const [name, r] of logs) {
      if (Either.isRight(r)) logMap.set(name, r.right)
      else errors.push(`logs of ${name}: ${r.left.message}`)
    }
    return buildFailureInfo(pod, reason, {
      events: Either.isRight(events) ? events.right : [],
      logs: logMap,
      errors
    })
  }, (effect, _pod, reason) =>
    effect.pipe(
      Effect.catchAllCause((cause): Effect.Effect<FailureInfoV2> =>
        Effect.succeed(failureV2(reason, { collect_error: `collect failed: ${Cause.pretty(cause).split("\n")[0]}` }))
      )
    ))
