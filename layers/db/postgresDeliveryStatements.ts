/**
 * `storeDelivery` on PostgreSQL: a webhook delivery's job row (for `queued`) and its `installation_events` row
 * in one statement, both or neither, with concurrent deliveries written together (`groupCommit.ts`) and one
 * NOTIFY per batch, sent by the same statement.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option, type Scope } from "effect"
import { encodeLabelSet } from "../../src/domain/Labels.ts"
import type { Status } from "../../src/domain/Status.ts"
import type { DbError, DbShape, DeliveryStored, DeliveryWrite, Transition } from "../../src/services/Db.ts"
import { makeGroupCommit } from "./groupCommit.ts"
import { toDbError } from "./postgresRows.ts"
import { now } from "./postgresStatementHelpers.ts"

/** A delivery as the batch statement reads it: one element of the JSON array bound as its only parameter. */
interface InputRow {
  readonly ord: number
  readonly at: string
  readonly source: string
  readonly event: string
  readonly outcome: string
  readonly outcome_if_exists: string | null
  readonly installation_id: number | null
  readonly app_id: number | null
  readonly entity_type: string | null
  readonly entity_id: number | null
  readonly entity_name: string | null
  readonly payload: unknown
  readonly delivery_id: string | null
  readonly job_id: number | null
  readonly j_provider: string | null
  readonly j_entity_id: number | null
  readonly j_entity_name: string | null
  readonly j_entity_type: string | null
  readonly j_repo_full_name: string | null
  readonly j_installation_id: number | null
  readonly j_labels: string | null
  readonly j_pool: string | null
  readonly j_image: string | null
  readonly j_html_url: string | null
}

interface Timed {
  readonly write: DeliveryWrite
  readonly at: Date
}

const inputRow = ({ at, write }: Timed, ord: number): InputRow => {
  const e = write.event
  const j = write.job?.row
  return {
    ord,
    at: at.toISOString(),
    source: e.source,
    event: e.event,
    outcome: e.outcome,
    outcome_if_exists: write.job?.outcomeIfExists ?? null,
    installation_id: e.installation_id,
    app_id: e.app_id,
    entity_type: e.entity_type,
    entity_id: e.entity_id,
    entity_name: e.entity_name,
    payload: e.payload ?? null,
    delivery_id: e.delivery_id,
    job_id: j?.job_id ?? null,
    j_provider: j?.provider ?? null,
    j_entity_id: j?.entity_id ?? null,
    j_entity_name: j?.entity_name ?? null,
    j_entity_type: j?.entity_type ?? null,
    j_repo_full_name: j?.repo_full_name ?? null,
    j_installation_id: j?.installation_id ?? null,
    j_labels: j === undefined ? null : encodeLabelSet(j.job_labels),
    j_pool: j?.k8s_pool ?? null,
    j_image: j?.k8s_image ?? null,
    j_html_url: j?.html_url ?? null
  }
}

/** How many batches may be written at once; the pool keeps its other connections for everything else. */
const WRITERS = 4
/** A batch's NOTIFY payload lists its new job ids; 200 of them stay well inside PostgreSQL's 8000 bytes. */
const MAX_BATCH = 200

export const makeDeliveryStatements = (
  sql: SqlClient.SqlClient,
  channel: string
): Effect.Effect<Pick<DbShape, "storeDelivery" | "storeTransition">, never, Scope.Scope> =>
  Effect.gen(function*() {
    /**
     * One statement for the batch. Among deliveries of the same job, the first (lowest `ord`) is the one that may
     * create it. Jobs are inserted in job id order, so two batches that share jobs wait for each other in the same
     * order and cannot deadlock. The event ids are drawn in the statement so each row's id is known without relying on the order
     * RETURNING reports them in. The batch's new job ids are NOTIFYed by the same statement, so the wake-up is
     * delivered exactly when the rows commit (and never for a batch rolled back), without a second round trip: a
     * notifying commit is serialised with the database's other notifying commits, which costs one lock per batch,
     * not per delivery.
     */
    const writeRows = (rows: ReadonlyArray<InputRow>) =>
      sql<{ ord: number; id: number; created: boolean }>`
        WITH input AS (
          SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS i(
            ord int, at timestamptz, source text, event text, outcome text, outcome_if_exists text,
            installation_id bigint, app_id bigint, entity_type text, entity_id bigint, entity_name text,
            payload jsonb, delivery_id text, job_id bigint, j_provider text, j_entity_id bigint, j_entity_name text,
            j_entity_type text, j_repo_full_name text, j_installation_id bigint, j_labels text, j_pool text,
            j_image text, j_html_url text)
        ),
        candidates AS (
          SELECT DISTINCT ON (job_id) * FROM input WHERE job_id IS NOT NULL ORDER BY job_id, ord
        ),
        new_jobs AS (
          INSERT INTO jobs (job_id, provider, entity_id, entity_name, entity_type, repo_full_name, installation_id,
                            job_labels, k8s_pool, k8s_image, html_url, created_at, updated_at)
          SELECT job_id, j_provider::provider_enum, j_entity_id, j_entity_name, j_entity_type, j_repo_full_name,
                 j_installation_id, j_labels::jsonb, j_pool, j_image, j_html_url, at, at
          FROM candidates ORDER BY job_id
          ON CONFLICT (job_id) DO NOTHING
          RETURNING job_id
        ),
        decided AS (
          SELECT i.*, nextval(pg_get_serial_sequence('installation_events', 'id')) AS id,
                 (c.ord = i.ord AND n.job_id IS NOT NULL) IS TRUE AS created
          FROM input i
          LEFT JOIN candidates c ON c.job_id = i.job_id
          LEFT JOIN new_jobs n ON n.job_id = i.job_id
        ),
        new_events AS (
          INSERT INTO installation_events (id, source, event, outcome, installation_id, app_id, entity_type, entity_id,
                                           entity_name, payload, received_at, delivery_id)
          SELECT id, source, event, CASE WHEN job_id IS NULL OR created THEN outcome ELSE outcome_if_exists END,
                 installation_id, app_id, entity_type::entity_type_enum, entity_id, entity_name, payload, at, delivery_id
          FROM decided ORDER BY ord
          RETURNING id
        ),
        notified AS (
          SELECT pg_notify(${channel}, string_agg(job_id::text, ',' ORDER BY job_id)) FROM new_jobs HAVING count(*) > 0
        )
        SELECT d.ord, d.id, d.created, (SELECT count(*) FROM notified) AS notified
        FROM decided d JOIN new_events e ON e.id = d.id ORDER BY d.ord`

    const writeBatch = (batch: ReadonlyArray<Timed>): Effect.Effect<ReadonlyArray<DeliveryStored>, DbError> =>
      writeRows(batch.map(inputRow)).pipe(
        Effect.mapError(toDbError("storeDelivery")),
        Effect.flatMap((rows) =>
          rows.length === batch.length
            ? Effect.succeed(rows.map((r): DeliveryStored => ({ eventId: Number(r.id), jobCreated: r.created })))
            : Effect.fail(toDbError("storeDelivery")({ message: `expected ${batch.length} rows, got ${rows.length}` }))
        ),
        Effect.withSpan("Db.storeDeliveries", { attributes: { deliveries: batch.length }, captureStackTrace: false })
      )

    const grouped = yield* makeGroupCommit({
      writers: WRITERS,
      maxBatch: MAX_BATCH,
      write: writeBatch,
      // A statement the server refused may be one delivery's fault; a database that does not answer is everyone's.
      retryAlone: (e) => e.unavailable !== true
    })

    /**
     * A job's move and its audit row in one statement: the row is locked, moved when its status allows it, and
     * the audit row is inserted only when the job exists; the previous status comes back (as `transitionJob`).
     */
    const storeTransition: DbShape["storeTransition"] = (w) =>
      Effect.flatMap(now, (at) => {
        const e = w.event
        const from = w.to === "running" ? ["pending"] : ["pending", "running"]
        return sql<{ previous: string; changed: boolean }>`
          WITH prev AS (SELECT job_id, status FROM jobs WHERE job_id = ${w.jobId} FOR UPDATE),
          upd AS (
            UPDATE jobs SET status = ${w.to}::status_enum, k8s_pod = COALESCE(jobs.k8s_pod, NULLIF(${w.runnerName ?? ""}, '')),
                            updated_at = ${at}
            FROM prev WHERE jobs.job_id = prev.job_id AND prev.status::text IN ${sql.in(from)}
            RETURNING jobs.job_id
          ),
          ev AS (
            INSERT INTO installation_events (source, event, outcome, installation_id, app_id, entity_type, entity_id,
                                             entity_name, payload, received_at, delivery_id)
            SELECT ${e.source}, ${e.event}, ${e.outcome}, ${e.installation_id}, ${e.app_id},
                   ${e.entity_type}::entity_type_enum, ${e.entity_id}, ${e.entity_name},
                   ${JSON.stringify(e.payload ?? null)}::jsonb, ${at}, ${e.delivery_id}
            FROM prev
            RETURNING id
          )
          SELECT prev.status::text AS previous, EXISTS (SELECT 1 FROM upd) AS changed, (SELECT count(*) FROM ev) AS logged
          FROM prev`.pipe(
          Effect.mapError(toDbError("storeTransition")),
          Effect.map((rows): Transition => {
            const row = rows[0]
            return row === undefined ? { found: false } : { found: true, previous: row.previous as Status, changed: row.changed }
          })
        )
      })

    return {
      storeTransition,
      storeDelivery: (write) =>
        Effect.flatMap(now, (at) =>
          // Inside a transaction (a `step`) the write must be part of it, so it does not join a batch.
          Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (tx) => {
            if (Option.isNone(tx)) return grouped({ write, at })
            return Effect.map(writeBatch([{ write, at }]), (r) => r[0]!)
          }))
    }
  })
