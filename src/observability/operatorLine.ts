import { Console, Effect, Logger, LogLevel } from "effect"

/** `LOG_FORMAT`: one JSON object per stdout line, or readable text. */
export type LogFormat = "json" | "pretty"

/**
 * A line written for the operator rather than logged by a program: the start-up banner, the simulation's event
 * lines (`main/appLayer.ts` hands this writer to `layers/sim/printer.ts`), `migrate`'s result. In pretty mode it is the text as it is. Under LOG_FORMAT=json it goes through the
 * logger as an INFO entry with `fields` as annotations, because a log shipper reads every stdout line as one JSON
 * object and a plain line in between is at best dropped. Either way it shows whatever LOG_LEVEL says (as the
 * plain text always did), so `--simulate`, which keeps the log to warnings, still prints its banner and events.
 */
export const operatorLine = (format: LogFormat) => (text: string, fields: Readonly<Record<string, unknown>> = {}): Effect.Effect<void> =>
  format === "json"
    ? Effect.logInfo(text).pipe(Effect.annotateLogs(fields), Logger.withMinimumLogLevel(LogLevel.Info))
    : Console.log(text)
