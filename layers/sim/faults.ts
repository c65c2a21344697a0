import { Schema } from "effect"

/*
 * The faults the simulated world can inject, as shares (0..1) of the events they hit. The control API
 * (`POST /sim/faults`), the demo and the deterministic simulation tests all set the same record; every draw comes
 * from Effect's Random, so a seeded run injects the same faults at the same moments.
 */

const Share = Schema.Number.pipe(Schema.between(0, 1))

const faultFields = {
  /** GitHub API calls answered 502 */
  githubErrors: Share,
  /** GitHub API calls answered 429 with Retry-After (a secondary rate limit) */
  githubRateLimits: Share,
  /** webhook deliveries lost on the way: GitHub's delivery log shows them failed (no answer), and never retries */
  dropWebhooks: Share,
  /** webhook deliveries GitHub never makes at all: nothing in its log (only the scheduler's sweep finds the job) */
  unsentWebhooks: Share,
  /** deliveries sent twice (GitHub's at-least-once delivery) */
  duplicateWebhooks: Share,
  /** deliveries held back for up to a minute, so they arrive after later ones */
  reorderWebhooks: Share,
  /** new runner pods the cluster never places (FailedScheduling) */
  stuckPending: Share,
  /** new runner pods whose image pull keeps failing (ImagePullBackOff) */
  imagePullFailures: Share,
  /** runners that start but never register with GitHub */
  neverRegister: Share,
  /** runners that stay busy after their job (GitHub answers 422 to their deletion) for a while */
  stuckBusy: Share,
  /** expected node losses per simulated hour (the node comes back after a while) */
  nodeLossPerHour: Schema.Number.pipe(Schema.nonNegative())
}

export const FaultSettings = Schema.Struct(faultFields)
export type FaultSettings = typeof FaultSettings.Type

export const noFaults: FaultSettings = {
  githubErrors: 0,
  githubRateLimits: 0,
  dropWebhooks: 0,
  unsentWebhooks: 0,
  duplicateWebhooks: 0,
  reorderWebhooks: 0,
  stuckPending: 0,
  imagePullFailures: 0,
  neverRegister: 0,
  stuckBusy: 0,
  nodeLossPerHour: 0
}

/**
 * `POST /sim/faults`: any subset of the settings; `off: true` first turns every fault off; `loseNodes` drops nodes
 * now; `webhookOutage` makes our endpoint answer 503 for that many simulated seconds (an outage `off` does not end).
 */
export const FaultPatch = Schema.Struct({
  githubErrors: Schema.optional(faultFields.githubErrors),
  githubRateLimits: Schema.optional(faultFields.githubRateLimits),
  dropWebhooks: Schema.optional(faultFields.dropWebhooks),
  unsentWebhooks: Schema.optional(faultFields.unsentWebhooks),
  duplicateWebhooks: Schema.optional(faultFields.duplicateWebhooks),
  reorderWebhooks: Schema.optional(faultFields.reorderWebhooks),
  stuckPending: Schema.optional(faultFields.stuckPending),
  imagePullFailures: Schema.optional(faultFields.imagePullFailures),
  neverRegister: Schema.optional(faultFields.neverRegister),
  stuckBusy: Schema.optional(faultFields.stuckBusy),
  nodeLossPerHour: Schema.optional(faultFields.nodeLossPerHour),
  off: Schema.optional(Schema.Boolean),
  /** our webhook endpoint answers 503 for this many simulated seconds, from now */
  webhookOutage: Schema.optional(Schema.Number.pipe(Schema.positive())),
  loseNodes: Schema.optional(Schema.Int.pipe(Schema.nonNegative()))
})
export type FaultPatch = typeof FaultPatch.Type

/** Counts of the faults injected so far, by kind. */
export interface FaultCounts {
  readonly dropped: number
  /** deliveries never made (nothing in GitHub's log) */
  readonly unsent: number
  /** outages of our endpoint started */
  readonly webhookOutages: number
  /** deliveries our endpoint answered 503 during an outage */
  readonly outageRefused: number
  readonly duplicated: number
  readonly reordered: number
  readonly stuckPending: number
  readonly imagePullFailures: number
  readonly neverRegistered: number
  readonly stuckBusy: number
  readonly nodesLost: number
  /** runners that came up on a faulty board and never registered */
  readonly boardSilentRunners: number
  /** times a faulty board went NotReady */
  readonly boardsNotReady: number
}

export const zeroFaultCounts: FaultCounts = {
  dropped: 0,
  unsent: 0,
  webhookOutages: 0,
  outageRefused: 0,
  duplicated: 0,
  reordered: 0,
  stuckPending: 0,
  imagePullFailures: 0,
  neverRegistered: 0,
  stuckBusy: 0,
  nodesLost: 0,
  boardSilentRunners: 0,
  boardsNotReady: 0
}
