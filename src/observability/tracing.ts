/**
 * OTLP/HTTP export of the spans (every `Effect.fn` is one) through `@effect/opentelemetry`'s own exporter, which
 * needs no OpenTelemetry SDK. Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
 * is set; then, and only then, the exporter's modules are imported, so an unset endpoint costs no start-up time.
 * The variables are OpenTelemetry's standard ones (see docs/configuration.md).
 */
import { FetchHttpClient } from "@effect/platform"
import { Config, ConfigError, Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import * as os from "node:os"

export type OtlpProtocol = "http/protobuf" | "http/json"

export interface TracingSettings {
  /** where spans are posted: the traces endpoint itself */
  readonly url: string
  readonly protocol: OtlpProtocol
  /** `OTEL_EXPORTER_OTLP_HEADERS` (an API key, say): never logged */
  readonly headers: Redacted.Redacted<Record<string, string>>
  readonly serviceName: string
  readonly attributes: Readonly<Record<string, string>>
  readonly exportInterval: Duration.Duration
}

/** `k=v,k2=v2` with URL-encoded values, as OpenTelemetry writes headers and resource attributes. */
export const parseKeyValues = (text: string): Either.Either<Record<string, string>, string> => {
  const out: Record<string, string> = {}
  for (const part of text.split(",")) {
    if (part.trim() === "") continue
    const eq = part.indexOf("=")
    if (eq <= 0) return Either.left(`"${part.trim()}" is not key=value`)
    try {
      out[decodeURIComponent(part.slice(0, eq).trim())] = decodeURIComponent(part.slice(eq + 1).trim())
    } catch {
      return Either.left(`"${part.slice(0, eq).trim()}" has a badly encoded value`)
    }
  }
  return Either.right(out)
}

const keyValues = (name: string) =>
  Config.string(name).pipe(
    Config.withDefault(""),
    Config.mapOrFail((text) =>
      Either.mapLeft(parseKeyValues(text), (why) => ConfigError.InvalidData([name], `${why}; expected key=value pairs separated by commas`))
    )
  )

/** The service name of a role: one per process kind, so a backend tells the webhook's spans from the scheduler's. */
export const serviceNameFor = (role: string): string => `riscv-runner-${role}`

/**
 * The settings from the environment, or none when no endpoint is set. `OTEL_EXPORTER_OTLP_ENDPOINT` is a base
 * URL (`/v1/traces` is appended); `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as given.
 */
export const tracingSettings = (role: string, deployment: { readonly prod: boolean; readonly simulate: boolean }) =>
  Effect.gen(function*() {
    const base = yield* Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT"))
    const traces = yield* Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    const url = Option.orElse(traces, () => Option.map(base, (b) => `${b.replace(/\/+$/, "")}/v1/traces`))
    if (Option.isNone(url)) return Option.none<TracingSettings>()
    const protocol = yield* Config.literal("http/protobuf", "http/json")("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").pipe(
      Config.orElse(() => Config.literal("http/protobuf", "http/json")("OTEL_EXPORTER_OTLP_PROTOCOL")),
      Config.withDefault("http/protobuf" as const)
    )
    const headers = yield* Config.redacted(keyValues("OTEL_EXPORTER_OTLP_HEADERS"))
    const serviceName = yield* Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault(serviceNameFor(role)))
    const extra = yield* keyValues("OTEL_RESOURCE_ATTRIBUTES")
    const delayMs = yield* Config.integer("OTEL_BSP_SCHEDULE_DELAY").pipe(
      Config.validate({ message: "a positive number of milliseconds", validation: (n) => n > 0 }),
      Config.withDefault(5000)
    )
    return Option.some<TracingSettings>({
      url: url.value,
      protocol,
      headers,
      serviceName,
      // the deployment's own attributes first; the operator's OTEL_RESOURCE_ATTRIBUTES may override them
      attributes: {
        "service.namespace": "riscv-runner",
        "service.instance.id": os.hostname(),
        "deployment.environment.name": deployment.prod ? "prod" : "staging",
        "riscv_runner.role": role,
        "riscv_runner.simulated": String(deployment.simulate),
        ...extra
      },
      exportInterval: Duration.millis(delayMs)
    })
  })

/**
 * The tracer for these settings: a layer that installs the OTLP exporter, which batches spans and posts them every
 * `exportInterval` and once more when the layer's scope closes (the process stopping).
 */
export const otlpTracerLayer = (settings: TracingSettings) =>
  Layer.unwrapEffect(Effect.promise(async () => {
    const [OtlpTracer, OtlpSerialization] = await Promise.all([
      import("@effect/opentelemetry/OtlpTracer"),
      import("@effect/opentelemetry/OtlpSerialization")
    ])
    return OtlpTracer.layer({
      url: settings.url,
      resource: { serviceName: settings.serviceName, attributes: settings.attributes },
      headers: Redacted.value(settings.headers),
      exportInterval: settings.exportInterval,
      shutdownTimeout: "3 seconds"
    }).pipe(
      Layer.provide(settings.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf),
      Layer.provide(FetchHttpClient.layer)
    )
  }))

/** Tracing as the environment says: the OTLP exporter when an endpoint is set, else nothing at all. */
export const tracingLayer = (role: string, deployment: { readonly prod: boolean; readonly simulate: boolean }) =>
  Layer.unwrapEffect(Effect.map(tracingSettings(role, deployment), Option.match({ onNone: () => Layer.empty, onSome: otlpTracerLayer })))
