import { Schema } from "effect"

/**
 * Every value written to `installation_events.outcome`. The column is TEXT so new values need no migration, but
 * everything we write comes from this list.
 */
export const WebhookOutcome = Schema.Literal(
  "ok",
  "job_stored",
  "job_already_exists",
  "job_marked_running",
  "job_marked_completed",
  "job_not_found",
  "ignored_action",
  "ignored_no_label",
  "ignored_event",
  "ignored_banned",
  "proxied_to_staging",
  "auth_404",
  "auth_other_error"
)
export type WebhookOutcome = typeof WebhookOutcome.Type
export const WEBHOOK_OUTCOMES: ReadonlyArray<WebhookOutcome> = WebhookOutcome.literals

/** `source` column of an installation event. */
export const EventSource = Schema.Literal("webhook", "scheduler")
export type EventSource = typeof EventSource.Type
