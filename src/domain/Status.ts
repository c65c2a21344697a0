import { Schema } from "effect"

/** Lifecycle of a job or a worker row. Shared by both tables (`status_enum`). */
export const Status = Schema.Literal("pending", "running", "completed", "failed")
export type Status = typeof Status.Type

export const TERMINAL_STATUSES: ReadonlyArray<Status> = ["completed", "failed"]
export const ACTIVE_STATUSES: ReadonlyArray<Status> = ["pending", "running"]

export const isTerminal = (s: Status): boolean => s === "completed" || s === "failed"
export const isActive = (s: Status): boolean => s === "pending" || s === "running"

/**
 * Transitions only move forward: pending -> running -> (completed | failed), and pending may skip straight to a
 * terminal state. A terminal state never changes again, so a late or duplicated webhook is a no-op.
 */
export const canTransition = (from: Status, to: Status): boolean => {
  switch (from) {
    case "pending":
      return to === "running" || to === "completed" || to === "failed"
    case "running":
      return to === "completed" || to === "failed"
    case "completed":
    case "failed":
      return false
  }
}

/** The statuses a row must currently hold for a move to `to` to be allowed (used to build WHERE clauses). */
export const allowedSources = (to: Status): ReadonlyArray<Status> =>
  (["pending", "running", "completed", "failed"] as const).filter((from) => canTransition(from, to))

export const Provider = Schema.Literal("github", "gitlab", "azdo")
export type Provider = typeof Provider.Type
