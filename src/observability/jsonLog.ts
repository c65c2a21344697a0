import { Cause, FiberId, HashMap, Inspectable, List, Logger } from "effect"

/*
 * The LOG_FORMAT=json logger: the same object per line as Effect's `Logger.json` (message, logLevel, timestamp,
 * cause, annotations, spans, fiberId, in that order), but written once per event-loop turn instead of one
 * synchronous `console.log` per line. A stdout pipe is written synchronously on Linux, so every line was a
 * system call that woke the log reader; the webhook writes a line per delivery, and the deliveries answered in one
 * turn now share one write. Lines still buffered when the process exits (a SIGTERM, `process.exit` after a
 * failure, an uncaught exception) are written by the `exit` handler, before the process is gone.
 */

/** What `Logger.json` does to a value before it is serialised (`Inspectable.toJSON`, functions as their text). */
const structured = (u: unknown): unknown => {
  switch (typeof u) {
    case "bigint":
    case "function":
    case "symbol":
      return String(u)
    case "object":
      return Inspectable.toJSON(u)
    default:
      return u
  }
}

/** An error as `Logger.json` shows a message that is one: its own fields, with its name and message. */
const errorToJson = (u: unknown): unknown =>
  u instanceof Error && !("toJSON" in u) ? { ...u, name: u.name, message: u.message } : u

/**
 * One line of JSON: with only primitives in it (a delivery's line), one `JSON.stringify`; with objects, Effect's
 * own `stringifyCircular`, which drops cycles and redacts what asks to be redacted, as `Logger.json` does.
 */
export const formatJsonLine = (options: Logger.Logger.Options<unknown>): string => {
  const now = options.date.getTime()
  let plain = true
  const annotations: Record<string, unknown> = {}
  for (const [key, value] of options.annotations) {
    const v = structured(value)
    if (typeof v === "object" && v !== null) plain = false
    annotations[key] = v
  }
  const spans: Record<string, number> = {}
  if (List.isCons(options.spans)) for (const span of options.spans) spans[span.label] = now - span.startTime
  const parts: Array<unknown> = Array.isArray(options.message) ? options.message : [options.message]
  const messages = parts.map((m) => errorToJson(structured(m)))
  if (messages.some((m) => typeof m === "object" && m !== null)) plain = false
  const line = {
    message: messages.length === 1 ? messages[0] : messages,
    logLevel: options.logLevel.label,
    timestamp: options.date.toISOString(),
    cause: Cause.isEmpty(options.cause) ? undefined : Cause.pretty(options.cause, { renderErrorCause: true }),
    annotations: HashMap.size(options.annotations) > 0 ? annotations : {},
    spans,
    fiberId: FiberId.threadName(options.fiberId)
  }
  return plain ? JSON.stringify(line) : Inspectable.stringifyCircular(line)
}

/** Lines waiting for the end of the turn, and whether their write is scheduled. */
const waiting: Array<string> = []
let flushScheduled = false
let exitHooked = false

const flush = () => {
  flushScheduled = false
  if (waiting.length === 0) return
  const text = waiting.join("\n") + "\n"
  waiting.length = 0
  process.stdout.write(text)
}

const later: (f: () => void) => void = typeof setImmediate === "function" ? (f) => void setImmediate(f) : (f) => void setTimeout(f, 0)

const append = (line: string) => {
  if (!exitHooked) {
    exitHooked = true
    // `exit` handlers run synchronously as the process ends, whatever ended it; stdout to a pipe or a file is
    // written synchronously there, so nothing buffered is lost
    process.on("exit", flush)
  }
  waiting.push(line)
  if (!flushScheduled) {
    flushScheduled = true
    later(flush)
  }
}

/** `Logger.json`'s lines, written once per event-loop turn; installed in place of the default logger. */
export const bufferedJsonLogger = Logger.make((options) => append(formatJsonLine(options)))

/** The layer `main.ts` installs for LOG_FORMAT=json. */
export const BufferedJsonLog = Logger.replace(Logger.defaultLogger, bufferedJsonLogger)
