import type { AllocationFailureStreak } from "../services/Db.ts"
import { groupKey } from "./demandPlan.ts"

/**
 * Provisioning back-off per matching group (`groupKey`: (entity, exact label set), and the repository for a
 * personal account). A permanent error (a JIT config GitHub refuses, an image
 * the cluster rejects) would otherwise write one failed worker per cycle per job. After `n` consecutive
 * allocation failures the group waits `base * 2^(n-1)`, at most `max`, from its latest failure.
 *
 * The streaks are read from the workers table (`Db.getAllocationFailures`) rather than kept in memory: a
 * restarted scheduler, or the replica that takes over the lock, backs off exactly as the previous one would
 * have, and two replicas that alternate cycles do not each make their own attempts.
 */
export const backoffDelayMs = (failures: number, baseMs: number, maxMs: number): number =>
  failures <= 0 ? 0 : Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 30))

export const blockedGroups = (
  streaks: ReadonlyArray<AllocationFailureStreak>,
  nowMs: number,
  baseMs: number,
  maxMs: number
): ReadonlyMap<string, Date> => {
  const blocked = new Map<string, Date>()
  for (const s of streaks) {
    const until = s.lastFailureAt.getTime() + backoffDelayMs(s.failures, baseMs, maxMs)
    if (nowMs < until) blocked.set(groupKey(s.entityId, s.labels, s.repoFullName), new Date(until))
  }
  return blocked
}

/**
 * How far back the streaks must be read so that a long streak still reaches the maximum delay: enough failures
 * to double up to `max`, each at most `max` apart, plus slack.
 */
export const streakLookbackMs = (baseMs: number, maxMs: number): number => {
  let steps = 1
  while (baseMs * 2 ** (steps - 1) < maxMs && steps < 31) steps++
  return (steps + 1) * maxMs
}
