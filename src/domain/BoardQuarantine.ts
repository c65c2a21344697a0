/**
 * The standing of a board the scheduler stopped trusting, as the database keeps it (`board_states`), and the
 * record of each change (`board_events`), which an operator reads with its evidence: the failed workers.
 */

/**
 * `quarantined`: no capacity, and runner pods avoid the node until `until`. `trial`: released after its
 * probation, it gets one runner; `healthy`: trusted again, and only failures after `since` count against it.
 */
export type BoardStanding = "quarantined" | "trial" | "healthy"

export interface BoardState {
  readonly node: string
  readonly pool: string
  readonly state: BoardStanding
  /** when this standing began */
  readonly since: Date
  /** quarantined: when the probation ends; null otherwise */
  readonly until: Date | null
  /** the probation of the latest quarantine, doubled by each failed trial */
  readonly probation_seconds: number
}

/** One failed worker that counted against the board. */
export interface BoardEvidence {
  readonly pod_name: string
  readonly reason: string
  /** RFC 3339 */
  readonly at: string
}

export type BoardEventKind = "quarantined" | "released" | "trial_passed" | "operator_release"

export interface NewBoardEvent {
  readonly node: string
  readonly pool: string
  readonly kind: BoardEventKind
  readonly at: Date
  /** the probation a quarantine set; null for the other kinds */
  readonly probation_seconds: number | null
  readonly evidence: ReadonlyArray<BoardEvidence>
}

export interface BoardEvent extends NewBoardEvent {
  readonly id: number
}

/** How a worker that ran on a node ended, as the quarantine rule reads it from the `workers` table. */
export interface NodeOutcome {
  readonly pod_name: string
  readonly node: string
  readonly pool: string
  readonly image: string
  readonly status: "completed" | "failed"
  /** `failure_info.reason` of a v2 failure; null otherwise */
  readonly reason: string | null
  readonly at: Date
}
