import { Config, Context, Duration, Layer } from "effect"

/**
 * The knobs of the two recovery passes beside the scheduler loop (issue 12): how often the redelivery pass reads
 * the apps' delivery logs and how much it may ask for at once, and how often the sweep looks for jobs nobody
 * announced. A tag of its own so the cycle's settings stay as they are.
 */
export interface RecoverySettingsShape {
  /** the redelivery pass runs this often, per app */
  readonly redeliveryInterval: Duration.Duration
  /** at most this many redeliveries asked for per pass and app, oldest first; the rest wait for the next pass */
  readonly maxRedeliveriesPerPass: number
  /** deliveries older than this are not looked at: GitHub redelivers only the last three days */
  readonly redeliveryLookback: Duration.Duration
  /** the sweep for unannounced jobs runs this often */
  readonly sweepInterval: Duration.Duration
  /** the sweep looks at repositories that had a job within this */
  readonly sweepLookback: Duration.Duration
  /** how long a replica holds a pass's lease when it dies mid-pass (a pass that ends frees it at once) */
  readonly passLease: Duration.Duration
}

export class RecoverySettings extends Context.Tag("riscv-runner/RecoverySettings")<RecoverySettings, RecoverySettingsShape>() {}

export const defaultRecoverySettings: RecoverySettingsShape = {
  redeliveryInterval: Duration.minutes(2),
  maxRedeliveriesPerPass: 50,
  redeliveryLookback: Duration.days(3),
  sweepInterval: Duration.minutes(10),
  sweepLookback: Duration.hours(6),
  passLease: Duration.minutes(5)
}

export const RecoverySettingsLive = (input: Partial<RecoverySettingsShape> = {}) =>
  Layer.succeed(RecoverySettings, { ...defaultRecoverySettings, ...input })

const positive = { message: "must be positive", validation: (d: Duration.Duration) => Duration.toMillis(d) > 0 }

/** `SCHEDULER_REDELIVERY_INTERVAL`, `SCHEDULER_MAX_REDELIVERIES_PER_PASS`, `SCHEDULER_SWEEP_INTERVAL`. */
export const recoverySettingsConfig = Config.all({
  redeliveryInterval: Config.duration("SCHEDULER_REDELIVERY_INTERVAL").pipe(
    Config.validate(positive),
    Config.withDefault(defaultRecoverySettings.redeliveryInterval)
  ),
  maxRedeliveriesPerPass: Config.integer("SCHEDULER_MAX_REDELIVERIES_PER_PASS").pipe(
    Config.validate({ message: "must be positive", validation: (n) => n > 0 }),
    Config.withDefault(defaultRecoverySettings.maxRedeliveriesPerPass)
  ),
  sweepInterval: Config.duration("SCHEDULER_SWEEP_INTERVAL").pipe(
    Config.validate(positive),
    Config.withDefault(defaultRecoverySettings.sweepInterval)
  )
})

export const recoverySettingsFromEnv = Layer.effect(
  RecoverySettings,
  Config.map(recoverySettingsConfig, (env): RecoverySettingsShape => ({ ...defaultRecoverySettings, ...env }))
)
