/*
 * What happens in the simulated world, as data: the event printer turns these into the lines `npm start` shows,
 * and the simulation tests compute waits, board time and fault counts from them. No event ever holds a secret
 * (runner names and job ids only; never a JIT config or token).
 */

export type SimEvent =
  | { readonly _tag: "InstallationCreated"; readonly at: number; readonly owner: string; readonly ownerType: string; readonly installationId: number }
  | {
    readonly _tag: "JobQueued"
    readonly at: number
    readonly jobId: number
    readonly owner: string
    readonly repo: string
    readonly labels: ReadonlyArray<string>
    readonly durationMs: number
  }
  | {
    readonly _tag: "RunnerProvisioned"
    readonly at: number
    readonly pod: string
    readonly owner: string
    readonly entityId: number
    readonly pool: string
  }
  | { readonly _tag: "RunnerOnline"; readonly at: number; readonly pod: string; readonly node: string | null }
  | { readonly _tag: "JobStarted"; readonly at: number; readonly jobId: number; readonly pod: string; readonly owner: string; readonly waitedMs: number }
  | {
    readonly _tag: "JobDone"
    readonly at: number
    readonly jobId: number
    readonly pod: string | null
    readonly owner: string
    readonly conclusion: string
    readonly waitedMs: number
    readonly ranMs: number
  }
  | { readonly _tag: "PodEnded"; readonly at: number; readonly pod: string; readonly phase: string; readonly reason: string }
  | { readonly _tag: "DeliveryFailed"; readonly at: number; readonly event: string; readonly jobId: number | null; readonly status: number; readonly body: string }
  | { readonly _tag: "Fault"; readonly at: number; readonly kind: string; readonly detail: string }

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`

const clock = (at: number) => new Date(at).toISOString().slice(11, 19)

/** What a notable event says, without the clock: its kind (`queued`, `done`, ...) and the rest of its line. */
export interface EventLine {
  readonly what: string
  readonly text: string
}

/**
 * One line per notable event, or none for the ones `npm start` keeps quiet about. Waits and run times are
 * simulated seconds (`speed` turns the measured real durations back into simulated ones), so a job asked to run
 * 60 s shows "ran 60 s" at any speed.
 */
export const describeEvent = (event: SimEvent, speed: number): EventLine | undefined => {
  const sim = (ms: number) => seconds(ms * speed)
  const line = (what: string, text: string): EventLine => ({ what, text })
  switch (event._tag) {
    case "InstallationCreated":
      return line("installed", `${event.owner} (${event.ownerType}) installed the app, installation ${event.installationId}`)
    case "JobQueued":
      return line("queued", `job ${event.jobId}  ${event.repo}  [${event.labels.join(", ")}]  runs ${seconds(event.durationMs)}`)
    case "RunnerProvisioned":
      return line("provisioned", `${event.pod}  for ${event.owner} on ${event.pool}`)
    case "RunnerOnline":
      return undefined
    case "JobStarted":
      return line("started", `job ${event.jobId}  on ${event.pod}  after ${sim(event.waitedMs)} queued`)
    case "JobDone":
      return line("done", `job ${event.jobId}  ${event.conclusion}  (waited ${sim(event.waitedMs)}, ran ${sim(event.ranMs)})`)
    case "PodEnded":
      return event.phase === "Succeeded" || event.phase === "deleted"
        ? undefined
        : line("pod " + event.phase.toLowerCase(), `${event.pod}${event.reason === "" ? "" : `  (${event.reason})`}`)
    case "DeliveryFailed":
      return line("webhook", `${event.event}${event.jobId === null ? "" : ` job ${event.jobId}`} answered ${event.status}: ${event.body.slice(0, 120)}`)
    case "Fault":
      return line("fault", `${event.kind}: ${event.detail}`)
  }
}

/** The line `npm start` prints: the real clock, the kind padded to a column, the rest. */
export const formatEvent = (event: SimEvent, speed: number): string | undefined => {
  const line = describeEvent(event, speed)
  return line === undefined ? undefined : `${clock(event.at)}  ${line.what.padEnd(11)} ${line.text}`
}

/**
 * The event as log annotations for LOG_FORMAT=json: its tag as `event` and its own fields, so a log pipeline can
 * filter by job or pod. `at` is left out: the log entry's timestamp is the same moment. Events hold no secret.
 */
export const eventFields = (event: SimEvent): Record<string, unknown> => {
  const { _tag, at: _at, ...fields } = event
  return { event: _tag, ...fields }
}
