import { failureV2, type ContainerFailure, type FailureInfoV2, type FailureReason, type PodEventInfo } from "./FailureInfo.ts"

/**
 * What the scheduler needs to know about a runner pod, read from the cluster. Deliberately narrower than the
 * Kubernetes object: no spec, and above all no env, so the JIT config a pod carries can never leak through it.
 */

export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown"

/** The state of one container as the kubelet last reported it. */
export type ContainerState =
  | { readonly _tag: "Waiting"; readonly reason: string; readonly message: string }
  | { readonly _tag: "Running"; readonly startedAt: Date | null }
  | {
    readonly _tag: "Terminated"
    readonly exitCode: number
    readonly reason: string
    readonly message: string
    readonly startedAt: Date | null
    readonly finishedAt: Date | null
  }

export interface ContainerStatus {
  readonly name: string
  readonly state: ContainerState
}

export interface Pod {
  readonly name: string
  readonly phase: PodPhase
  /** null until the scheduler binds the pod */
  readonly nodeName: string | null
  /** `status.reason`, e.g. `DeadlineExceeded`; empty when Kubernetes gives none */
  readonly reason: string
  readonly message: string
  readonly creationTime: Date
  readonly labels: Readonly<Record<string, string>>
  readonly containers: ReadonlyArray<ContainerStatus>
  readonly initContainers: ReadonlyArray<ContainerStatus>
  /** when the Ready condition last turned True; null while the pod is not ready */
  readonly readyTransition: Date | null
}

/** One (aggregated) Kubernetes event about a pod. */
export interface PodEvent {
  /** `Normal` or `Warning` */
  readonly type: string
  readonly reason: string
  readonly message: string
  readonly count: number
  readonly firstSeen: Date | null
  readonly lastSeen: Date | null
}

/** The name of the one container of a runner pod; its start is when the runner starts. */
export const RUNNER_CONTAINER = "runner"

/** Pods in these phases hold a board slot (or are about to); the others do not. */
export const holdsSlot = (phase: PodPhase): boolean => phase === "Pending" || phase === "Running"

export const isTerminal = (phase: PodPhase): boolean => phase === "Succeeded" || phase === "Failed"

/** The latest time any main or init container terminated, or null when none has. */
export const finishedAt = (pod: Pod): Date | null => {
  let latest: Date | null = null
  for (const c of [...pod.containers, ...pod.initContainers]) {
    if (c.state._tag === "Terminated" && c.state.finishedAt !== null) {
      if (latest === null || c.state.finishedAt.getTime() > latest.getTime()) latest = c.state.finishedAt
    }
  }
  return latest
}

/**
 * When the runner started: the start of the `runner` container (running or ended), else the moment the pod became Ready.
 * The second case covers statuses that report a running container without a start time.
 */
export const runnerStartedAt = (pod: Pod): Date | null => {
  const runner = pod.containers.find((c) => c.name === RUNNER_CONTAINER)
  if (runner !== undefined && runner.state._tag === "Running" && runner.state.startedAt !== null) {
    return runner.state.startedAt
  }
  // an ended runner still says when it started (a finished pod's Ready transition is its end, not its start)
  if (runner !== undefined && runner.state._tag === "Terminated" && runner.state.startedAt !== null) {
    return runner.state.startedAt
  }
  return pod.readyTransition
}

/** The waiting reasons of a container whose image the node cannot pull (or whose image name is not valid). */
export const IMAGE_PULL_REASONS: ReadonlyArray<string> = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"]

/**
 * The first container (init containers first) waiting because its image cannot be pulled, as `reason: message`;
 * undefined when none is. No retry of the kubelet's will pull an image that does not exist or that it may not
 * read, so the first such report is enough to give up on the pod.
 */
export const imagePullFailure = (pod: Pod): string | undefined => {
  for (const c of [...pod.initContainers, ...pod.containers]) {
    if (c.state._tag === "Waiting" && IMAGE_PULL_REASONS.includes(c.state.reason)) {
      return c.state.message === "" ? c.state.reason : `${c.state.reason}: ${c.state.message}`
    }
  }
  return undefined
}

/** A container has logs to read once it has started; asking earlier only earns a 400 from the API server. */
export const hasStarted = (c: ContainerStatus): boolean => c.state._tag !== "Waiting"

/** RFC 3339 at second precision, as Kubernetes and the original write event times. */
const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, "Z")

/** Oldest first by last sighting (first sighting when there is no last); events without times go first. */
export const sortEvents = (events: ReadonlyArray<PodEvent>): ReadonlyArray<PodEvent> => {
  const key = (e: PodEvent) => (e.lastSeen ?? e.firstSeen)?.getTime() ?? Number.NEGATIVE_INFINITY
  // Array.prototype.sort is stable, so events seen in the same second keep the API's order.
  return [...events].sort((a, b) => key(a) - key(b))
}

const containerFailure = (c: ContainerStatus, logs: string | undefined): ContainerFailure => {
  const s = c.state
  let exit_code: number | null = null
  let reason = ""
  let message = ""
  if (s._tag === "Terminated") {
    exit_code = s.exitCode
    reason = s.reason
    message = s.message
  } else if (s._tag === "Waiting") {
    // A container that never ran says why only through its waiting state (ErrImagePull and the like).
    reason = s.reason
    message = s.message
  }
  return logs === undefined ? { exit_code, reason, message } : { exit_code, reason, message, logs }
}

const eventInfo = (e: PodEvent): PodEventInfo => ({
  type: e.type,
  reason: e.reason,
  message: e.message,
  count: e.count,
  ...(e.firstSeen === null ? {} : { first_seen: rfc3339(e.firstSeen) }),
  ...(e.lastSeen === null ? {} : { last_seen: rfc3339(e.lastSeen) })
})

/**
 * Assembles `failure_info` v2 from what could be collected. `containers` and `events` are always written (an
 * empty list says "we looked"); `pod_reason`, `pod_message` and `collect_error` only when there is something to say.
 */
export const buildFailureInfo = (
  pod: Pod,
  reason: FailureReason,
  collected: {
    readonly events: ReadonlyArray<PodEvent>
    readonly logs: ReadonlyMap<string, string>
    readonly errors: ReadonlyArray<string>
  }
): FailureInfoV2 => {
  const containers: Record<string, ContainerFailure> = {}
  for (const c of [...pod.initContainers, ...pod.containers]) containers[c.name] = containerFailure(c, collected.logs.get(c.name))
  // An image that cannot be pulled is told only by its container's waiting state: that is the pod's message then.
  const podMessage = pod.message !== "" ? pod.message : reason === "image_pull_failed" ? (imagePullFailure(pod) ?? "") : ""
  return failureV2(reason, {
    ...(pod.reason === "" ? {} : { pod_reason: pod.reason }),
    ...(podMessage === "" ? {} : { pod_message: podMessage }),
    containers,
    events: sortEvents(collected.events).map(eventInfo),
    ...(collected.errors.length === 0 ? {} : { collect_error: collected.errors.join("; ") })
  })
}
