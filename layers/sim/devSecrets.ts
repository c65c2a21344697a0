import { Effect, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"

/**
 * The webhook secret of `--simulate` runs when GHAPP_WEBHOOK_SECRET is unset: the simulated GitHub signs its
 * deliveries with it. It protects nothing and must never be used outside a simulation.
 */
export const SIMULATION_WEBHOOK_SECRET = "riscv-runner-simulation"

/** A development secret generated for this run. */
export interface DevSecret {
  /** the environment variable it stands in for */
  readonly variable: "GHAPP_WEBHOOK_SECRET" | "TRACE_API_SECRET"
  readonly value: Redacted.Redacted<string>
}

const generate = (prefix: string) => Redacted.make(`${prefix}${randomBytes(18).toString("base64url")}`)

/**
 * What `--simulate` changes in the environment it was given, and nothing else:
 * the webhook secret and the trace API secret are generated when unset, so the simulated GitHub can sign its
 * deliveries and the trace API is usable; a configured secret is always kept. The generated ones are listed in
 * `devSecrets` for the start-up banner, the only place they are ever printed. (That an unset LOG_LEVEL means
 * warnings only under `--simulate` is the environment's own default, in `src/config/env.ts`.)
 * Without `simulate` the environment is returned as it is.
 */
export const withDevSecrets = <E extends {
  readonly webhookSecret: Option.Option<Redacted.Redacted<string>>
  readonly traceSecret: Option.Option<Redacted.Redacted<string>>
}>(env: E, simulate: boolean): Effect.Effect<E & { readonly devSecrets: ReadonlyArray<DevSecret> }> =>
  Effect.gen(function*() {
    if (!simulate) return { ...env, devSecrets: [] }
    const devSecrets: Array<DevSecret> = []
    const fill = (current: Option.Option<Redacted.Redacted<string>>, variable: DevSecret["variable"], prefix: string) =>
      Option.orElse(current, () => {
        const value = generate(prefix)
        devSecrets.push({ variable, value })
        return Option.some(value)
      })
    const webhookSecret = fill(env.webhookSecret, "GHAPP_WEBHOOK_SECRET", "dev-whsec-")
    const traceSecret = fill(env.traceSecret, "TRACE_API_SECRET", "dev-trace-")
    return { ...env, webhookSecret, traceSecret, devSecrets }
  })
