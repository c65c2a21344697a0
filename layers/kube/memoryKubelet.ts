import { Effect } from "effect"
import { holdsSlot, RUNNER_CONTAINER } from "../../src/domain/Pod.ts"
import type { NodeLoss } from "./memoryModel.ts"
import {
  type Changes,
  type ClusterState,
  kubeletUp,
  mutate,
  type PodRecord,
  record,
  setPhase,
  targets,
  toBoardNode,
  toPod
} from "./memoryState.ts"
import { RUNNER_RESOURCE } from "./podSpec.ts"

/**
 * The simulated scheduler and kubelet: a pod's lifecycle from placement through the image pull (with its
 * back-off) to running, its active deadline, the runner's exit, and what a lost node does to its pods.
 */

const DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
export const FIRST_PULL_BACKOFF_MS = 10_000
const MAX_PULL_BACKOFF_MS = 300_000
/** 128 + SIGKILL: what a container killed at its deadline exits with. */
const KILLED_EXIT_CODE = 137

const usedSlots = (s: ClusterState, node: string) => {
  let used = 0
  for (const p of s.pods.values()) if (p.nodeName === node && holdsSlot(p.phase)) used += 1
  return used
}

const isHeld = (s: ClusterState, name: string, r: PodRecord) =>
  targets(s.held, "pod", name) || targets(s.held, "pool", r.pool)
const pullFails = (s: ClusterState, name: string, r: PodRecord) =>
  targets(s.failingPulls, "pod", name) || targets(s.failingPulls, "pool", r.pool)

const schedule = (s: ClusterState, name: string, r: PodRecord, now: number) => {
  const all = [...s.nodes.values()]
  const matching = all.filter((n) => n.pool === r.pool)
  // What the real scheduler filters out: unusable nodes (not ready, cordoned, a taint the pod does not
  // tolerate) and the nodes the pod's affinity avoids.
  const refused = matching.filter((n) => toBoardNode(n)?.unusable !== null)
  const avoided = matching.filter((n) => !refused.includes(n) && r.avoid.has(n.name))
  const candidates = matching.filter((n) => !refused.includes(n) && !avoided.includes(n))
  const free = isHeld(s, name, r) ? undefined : candidates.find((n) => n.slots - usedSlots(s, n.name) > 0)
  if (free === undefined) {
    const mismatch = all.length - matching.length + avoided.length
    const parts = [
      ...(isHeld(s, name, r) ? [`${matching.length} node(s) were unschedulable`] : []),
      ...(!isHeld(s, name, r) && refused.length > 0 ? [`${refused.length} node(s) had untolerated taint or were unschedulable`] : []),
      ...(!isHeld(s, name, r) && candidates.length > 0 ? [`${candidates.length} Insufficient ${RUNNER_RESOURCE}`] : []),
      ...(mismatch > 0 ? [`${mismatch} node(s) didn't match Pod's node affinity/selector`] : [])
    ]
    record(s, name, now, "Warning", "FailedScheduling", `0/${all.length} nodes are available: ${parts.join(", ")}.`)
    return
  }
  r.nodeName = free.name
  r.startTime = now
  record(s, name, now, "Normal", "Scheduled", `Successfully assigned ${s.namespace}/${name} to ${free.name}`)
  startPull(s, name, r, now)
}

const startPull = (s: ClusterState, name: string, r: PodRecord, now: number) => {
  r.pullStartedAt = now
  r.pullRetryAt = null
  // A retry keeps showing the back-off reason until the pull settles, as `kubectl get pods` does.
  const shown = r.runner._tag === "Waiting" && r.runner.reason !== "" ? r.runner.reason : "ContainerCreating"
  r.runner = { _tag: "Waiting", reason: shown, message: "" }
  record(s, name, now, "Normal", "Pulling", `Pulling image "${r.request.image}"`)
}

const finishPull = (s: ClusterState, name: string, r: PodRecord, now: number, changes: Changes) => {
  const image = r.request.image
  r.pullStartedAt = null
  if (pullFails(s, name, r)) {
    const detail = `failed to pull and unpack image "${image}": failed to resolve reference "${image}": not found`
    record(s, name, now, "Warning", "Failed", `Failed to pull image "${image}": ${detail}`)
    record(s, name, now, "Warning", "Failed", "Error: ErrImagePull")
    r.runner = { _tag: "Waiting", reason: "ErrImagePull", message: detail }
    r.pullRetryAt = now + r.pullBackoffMs
    r.pullBackoffMs = Math.min(r.pullBackoffMs * 2, MAX_PULL_BACKOFF_MS)
    return
  }
  record(s, name, now, "Normal", "Pulled", `Successfully pulled image "${image}" in ${Math.round((s.pullMs) / 1000)}s`)
  record(s, name, now, "Normal", "Created", `Created container: ${RUNNER_CONTAINER}`)
  record(s, name, now, "Normal", "Started", `Started container ${RUNNER_CONTAINER}`)
  r.runner = { _tag: "Running", startedAt: new Date(now) }
  r.readyAt = now
  setPhase(changes, name, r, now, "Running")
}

const terminate = (r: PodRecord, now: number, exitCode: number, reason: string) => {
  if (r.runner._tag === "Running") {
    r.runner = {
      _tag: "Terminated",
      exitCode,
      reason,
      message: "",
      startedAt: r.runner.startedAt,
      finishedAt: new Date(now)
    }
  }
  r.readyAt = null
  r.pullStartedAt = null
  r.pullRetryAt = null
}

const step = (s: ClusterState, now: number, changes: Changes) => {
  // Oldest first, as the scheduler's queue orders pods of equal priority.
  const queue = [...s.pods.entries()].sort(([, a], [, b]) => a.seq - b.seq)
  for (const [name, r] of queue) {
    // A lost kubelet acts on nothing: no start, no deadline, no confirmation of a deletion.
    if (r.nodeName !== null && !kubeletUp(s, r.nodeName)) continue
    if (r.terminating) {
      s.pods.delete(name)
      s.events.delete(name)
      changes.push({ name, from: r.phase, to: null, at: new Date(now), pod: toPod(name, r) })
      continue
    }
    if (!holdsSlot(r.phase)) continue
    if (r.nodeName === null) {
      schedule(s, name, r, now)
      if (r.nodeName === null) continue
    }
    // The kubelet enforces the active deadline on every pod it admitted, started or not.
    if (r.startTime !== null && now - r.startTime >= r.deadlineSeconds * 1000) {
      if (r.runner._tag === "Running") record(s, name, now, "Normal", "Killing", `Stopping container ${RUNNER_CONTAINER}`)
      record(s, name, now, "Warning", "DeadlineExceeded", DEADLINE_MESSAGE)
      terminate(r, now, KILLED_EXIT_CODE, "Error")
      r.reason = "DeadlineExceeded"
      r.message = DEADLINE_MESSAGE
      setPhase(changes, name, r, now, "Failed")
      continue
    }
    if (r.phase !== "Pending") continue
    if (r.pullRetryAt !== null && now >= r.pullRetryAt) startPull(s, name, r, now)
    if (r.pullStartedAt !== null && now >= r.pullStartedAt + s.pullMs) finishPull(s, name, r, now, changes)
    else if (r.pullRetryAt !== null && r.runner._tag === "Waiting") {
      // Between attempts the kubelet reports the back-off, as `kubectl get pods` shows ImagePullBackOff.
      const image = r.request.image
      record(s, name, now, "Normal", "BackOff", `Back-off pulling image "${image}"`)
      if (r.runner.reason !== "ImagePullBackOff") record(s, name, now, "Warning", "Failed", "Error: ImagePullBackOff")
      r.runner = { _tag: "Waiting", reason: "ImagePullBackOff", message: `Back-off pulling image "${image}"` }
    }
  }
}

/** One pass of the scheduler and kubelet at the current Clock time. */
export const reconcile = (s: ClusterState) =>
  mutate(s, (now, changes) => step(s, now, changes)).pipe(Effect.withSpan("KubeMemory.reconcile"))

/** The runner process exits: Running -> Succeeded (0) or Failed. False when the pod is not Running. */
export const finishPod = (s: ClusterState, name: string, exitCode: number) =>
  mutate(s, (now, changes) => {
    const r = s.pods.get(name)
    if (r === undefined || r.phase !== "Running") return false
    terminate(r, now, exitCode, exitCode === 0 ? "Completed" : "Error")
    setPhase(changes, name, r, now, exitCode === 0 ? "Succeeded" : "Failed")
    return true
  })

/** The node disappears; its pods end as `podsBecome` says (default Failed, reason NodeLost). */
export const removeNode = (s: ClusterState, nodeName: string, podsBecome: NodeLoss = "Failed") =>
  mutate(s, (now, changes) => {
    if (!s.nodes.delete(nodeName)) return
    for (const [name, r] of [...s.pods.entries()]) {
      if (r.nodeName !== nodeName || !holdsSlot(r.phase)) continue
      if (podsBecome === "Deleted") {
        s.pods.delete(name)
        s.events.delete(name)
        changes.push({ name, from: r.phase, to: null, at: new Date(now), pod: toPod(name, r) })
        continue
      }
      // Nobody is left to report how the containers ended, so their last known state stays.
      record(s, name, now, "Warning", "NodeNotReady", "Node is not ready")
      r.reason = "NodeLost"
      r.message = `Node ${nodeName} which was running pod ${name} is unresponsive`
      r.readyAt = null
      r.pullStartedAt = null
      r.pullRetryAt = null
      setPhase(changes, name, r, now, podsBecome)
    }
  })
