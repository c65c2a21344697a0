import { Schema } from "effect"
import { sameLabelSet, toLabelSet } from "./Labels.ts"

/**
 * Which jobs a rule applies to. A job is in scope when its entity id is listed OR its repository is listed.
 * A job that is in the scope of any scoped rule is resolved only by scoped rules (this is how the original keeps
 * ggml-org's boards separate: its jobs never fall through to the general pool).
 */
export const RuleScope = Schema.Struct({
  entityIds: Schema.optionalWith(Schema.Array(Schema.Int), { default: () => [] }),
  repos: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
})

export const LabelRule = Schema.Struct({
  labels: Schema.NonEmptyArray(Schema.NonEmptyTrimmedString),
  /** `exact`: the job's label set equals `labels`. `contains`: the job's labels include all of `labels`. */
  match: Schema.optionalWith(Schema.Literal("exact", "contains"), { default: () => "exact" as const }),
  pool: Schema.NonEmptyTrimmedString,
  /** `{channel}` becomes `latest` in prod and `staging` otherwise. */
  image: Schema.NonEmptyTrimmedString,
  scope: Schema.optional(RuleScope)
})
export type LabelRule = typeof LabelRule.Type

export const EntityConfig = Schema.Struct({
  /** a note for people reading the file; not used for matching */
  name: Schema.optional(Schema.String),
  /** `null` means no limit; absent means the default. */
  maxWorkers: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.nonNegative()))),
  /** weight for the fair-share policy */
  weight: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 1 }),
  /** repository names (without the owner) whose webhooks prod forwards to staging */
  staging: Schema.optionalWith(Schema.Array(Schema.NonEmptyTrimmedString), { default: () => [] }),
  /** refused: its deliveries are answered and not stored, and its stored jobs get no runner (they fail) */
  banned: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type EntityConfig = typeof EntityConfig.Type

/** The original's registry, where its runner images live (the reference's pod spec). */
export const DEFAULT_IMAGE_REGISTRY = "rg.fr-par.scw.cloud/funcscwriseriscvrunnerappqdvknz9s"

/**
 * A registry host with an optional port and path, e.g. `ghcr.io/acme`, or "" for none (the rules' images are used
 * as written, e.g. images preloaded on the nodes).
 */
export const ImageRegistry = Schema.String.pipe(
  Schema.filter((s) => s === "" || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(s), {
    message: () => "must be a registry host with an optional port and path, like ghcr.io/acme (no https://, no trailing /), or empty"
  })
)

/**
 * Does the image name its registry? As Docker reads a reference: the part before the first `/` is a registry when
 * it has a `.` or a `:`, or is `localhost`. `riscv-runner:ubuntu-24.04-latest` has none, `ghcr.io/a/b:1` has one.
 */
export const hasRegistry = (image: string): boolean => {
  const slash = image.indexOf("/")
  if (slash < 0) return false
  const first = image.slice(0, slash)
  return first.includes(".") || first.includes(":") || first === "localhost"
}

/** The image a runner pod pulls: a rule's image without a registry gets `registry/` in front (none when ""). */
export const resolveImage = (image: string, registry: string): string =>
  registry === "" || hasRegistry(image) ? image : `${registry}/${image}`

/**
 * Board quarantine: `after` failures that point at a board (not at a job) within `withinMinutes` quarantine it for
 * `probationMinutes`; then it gets one runner as a trial, and a failed trial doubles the probation. `null` turns
 * quarantine off.
 */
export const QuarantineConfig = Schema.Struct({
  after: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 3 }),
  withinMinutes: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 60 }),
  probationMinutes: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 60 })
})
export type QuarantineConfig = typeof QuarantineConfig.Type

/** The longest cluster name: a DNS label's limit. */
export const CLUSTER_NAME_MAX = 63

/**
 * A cluster name is a DNS label (lower-case letters, digits and `-`, starting and ending with a letter or digit, at
 * most 63 characters): it is written to worker rows, shown in metric labels and on the dashboard, and may become
 * part of a Kubernetes object's name, so it stays within what each of them accepts unquoted.
 */
export const isClusterName = (name: string): boolean =>
  name.length <= CLUSTER_NAME_MAX && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)

/**
 * A cluster besides the default one (`KUBECONFIG` / `K8S_KUBECONFIG`): where its kubeconfig file is, which of its
 * contexts and namespace to use, and the pools whose boards live there. Pools no cluster names stay in the default
 * cluster, so a config without `clusters` drives one cluster, as before.
 */
export const ClusterConfig = Schema.Struct({
  name: Schema.String.pipe(
    Schema.filter((name) =>
      isClusterName(name) ||
      `cluster name ${JSON.stringify(name)} is not a DNS label: lower-case letters, digits and -, starting and ending with a letter or digit, at most ${CLUSTER_NAME_MAX} characters`
    )
  ),
  kubeconfig: Schema.NonEmptyTrimmedString,
  /** the kubeconfig's current context when absent */
  context: Schema.optional(Schema.NonEmptyTrimmedString),
  /** `default` when absent, as for the default cluster */
  namespace: Schema.optional(Schema.NonEmptyTrimmedString),
  pools: Schema.NonEmptyArray(Schema.NonEmptyTrimmedString)
})
export type ClusterConfig = typeof ClusterConfig.Type

/** The name a worker of the default cluster records (and every worker stored before clusters existed). */
export const DEFAULT_CLUSTER = "default"

const EntityIdKey = Schema.String.pipe(Schema.pattern(/^[1-9][0-9]*$/, { message: () => "entity keys must be numeric account ids" }))

export const RunnerConfig = Schema.Struct({
  apps: Schema.optionalWith(
    Schema.Struct({ orgAppId: Schema.Int.pipe(Schema.positive()), personalAppId: Schema.Int.pipe(Schema.positive()) }),
    { default: () => ({ orgAppId: 2167633, personalAppId: 3131217 }) }
  ),
  rules: Schema.Array(LabelRule),
  entities: Schema.optionalWith(Schema.Record({ key: EntityIdKey, value: EntityConfig }), { default: () => ({}) }),
  defaultMaxWorkers: Schema.optionalWith(Schema.NullOr(Schema.Int.pipe(Schema.nonNegative())), { default: () => 20 }),
  policy: Schema.optionalWith(Schema.Literal("fair", "fifo"), { default: () => "fair" as const }),
  /** GitHub logins (any case) or account ids whose deliveries are refused, whichever entity they are for */
  bannedSenders: Schema.optionalWith(Schema.Array(Schema.Union(Schema.Int.pipe(Schema.positive()), Schema.NonEmptyTrimmedString)), {
    default: () => []
  }),
  /** prefixed to the rules' images that name no registry (`resolveImage`); `RUNNER_IMAGE_REGISTRY` overrides it */
  imageRegistry: Schema.optionalWith(ImageRegistry, { default: () => DEFAULT_IMAGE_REGISTRY }),
  quarantine: Schema.optionalWith(Schema.NullOr(QuarantineConfig), {
    default: () => ({ after: 3, withinMinutes: 60, probationMinutes: 60 })
  }),
  /**
   * clusters besides the default one, each with its pools (`clusterProblems` checks them against the rules).
   * `exact`: JSON has no undefined, and without it a bad entry's message also carries "Expected undefined".
   */
  clusters: Schema.optionalWith(Schema.Array(ClusterConfig), { default: () => [], exact: true })
})
export type RunnerConfig = typeof RunnerConfig.Type
export type RunnerConfigInput = typeof RunnerConfig.Encoded

const GGML_ORG = 134263123
const RISEPROJECT_DEV = 152654596

/** The original's table, as data. Operators override it with `RUNNER_CONFIG`. */
export const defaultRunnerConfigInput: RunnerConfigInput = {
  apps: { orgAppId: 2167633, personalAppId: 3131217 },
  rules: [
    {
      labels: ["ubuntu-24.04-riscv"],
      pool: "cloudv10x-jupiter",
      image: "riscv-runner:ubuntu-24.04-{channel}",
      scope: {
        entityIds: [GGML_ORG],
        repos: ["riseproject-dev/llama.cpp", "riseproject-dev/llama.cpp-validation"]
      }
    },
    { labels: ["ubuntu-24.04-riscv"], pool: "scw-em-rv1", image: "riscv-runner:ubuntu-24.04-{channel}" }
  ],
  entities: {
    [RISEPROJECT_DEV]: { name: "riseproject-dev", maxWorkers: null, staging: ["riscv-runner-sample-staging"] },
    "21003710": { name: "pytorch", maxWorkers: 20 },
    [GGML_ORG]: { name: "ggml-org", maxWorkers: 20 },
    "660779": { name: "luhenry", maxWorkers: null }
  },
  defaultMaxWorkers: 20,
  policy: "fair",
  imageRegistry: DEFAULT_IMAGE_REGISTRY
}

export const defaultRunnerConfig: RunnerConfig = Schema.decodeUnknownSync(RunnerConfig)(defaultRunnerConfigInput)

export interface PoolTarget {
  readonly pool: string
  readonly image: string
}

const inScope = (rule: LabelRule, entityId: number, repoFullName: string): boolean =>
  rule.scope !== undefined && (rule.scope.entityIds.includes(entityId) || rule.scope.repos.includes(repoFullName))

const labelsMatch = (rule: LabelRule, labels: ReadonlyArray<string>): boolean =>
  rule.match === "exact" ? sameLabelSet(rule.labels, labels) : rule.labels.every((l) => labels.includes(l))

/** Resolves a job's labels to a board pool and runner image, or `undefined` when no rule accepts them. */
export const resolvePool = (
  config: RunnerConfig,
  job: { readonly entityId: number; readonly repoFullName: string; readonly labels: ReadonlyArray<string> },
  prod: boolean
): PoolTarget | undefined => {
  const scoped = config.rules.filter((r) => inScope(r, job.entityId, job.repoFullName))
  const candidates = scoped.length > 0 ? scoped : config.rules.filter((r) => r.scope === undefined)
  const labels = toLabelSet(job.labels)
  const rule = candidates.find((r) => labelsMatch(r, labels))
  return rule === undefined ? undefined : { pool: rule.pool, image: rule.image.replaceAll("{channel}", prod ? "latest" : "staging") }
}

/** The cap on active workers for an entity: its own `maxWorkers` when listed (null = none), else the default. */
export const maxWorkersFor = (config: RunnerConfig, entityId: number): number | null => {
  const entry = config.entities[String(entityId)]
  if (entry !== undefined && entry.maxWorkers !== undefined) return entry.maxWorkers
  return config.defaultMaxWorkers
}

export const weightFor = (config: RunnerConfig, entityId: number): number => config.entities[String(entityId)]?.weight ?? 1

/** Should prod forward this repository's workflow_job deliveries to staging? */
export const isStagingRepo = (config: RunnerConfig, entityId: number, repoFullName: string): boolean => {
  const entry = config.entities[String(entityId)]
  if (entry === undefined) return false
  const slash = repoFullName.indexOf("/")
  const repo = slash >= 0 ? repoFullName.slice(slash + 1) : repoFullName
  return entry.staging.includes(repo)
}

/** Is the entity banned in the config? */
export const isEntityBanned = (config: RunnerConfig, entityId: number): boolean => config.entities[String(entityId)]?.banned === true

/**
 * Why a delivery is refused, or undefined: its entity is banned, or its sender (by id, or by login in any case, as
 * GitHub logins are) is in `bannedSenders`. The text is what the delivery's answer says.
 */
export const banOf = (
  config: RunnerConfig,
  delivery: { readonly entityId: number; readonly entityName: string; readonly senderId: number | null; readonly senderLogin: string }
): string | undefined => {
  if (isEntityBanned(config, delivery.entityId)) return `entity ${delivery.entityName || delivery.entityId} is banned`
  const login = delivery.senderLogin.toLowerCase()
  const banned = config.bannedSenders.some((s) =>
    typeof s === "number" ? s === delivery.senderId : login !== "" && s.toLowerCase() === login
  )
  return banned ? `sender ${delivery.senderLogin || delivery.senderId} is banned` : undefined
}

/** The cluster a pool's boards live in: the cluster that names it, else the default cluster. */
export const clusterOfPool = (config: RunnerConfig, pool: string): string =>
  config.clusters.find((c) => c.pools.includes(pool))?.name ?? DEFAULT_CLUSTER

/**
 * What is wrong with the config's `clusters`, one sentence each: a name used twice (or the reserved `default`),
 * a pool in two clusters, a pool no rule routes to. The last is an error, not a warning: it is almost always a
 * misspelt pool, and a rule's pool that no cluster names silently falls to the default cluster, whose boards lack it.
 */
export const clusterProblems = (config: RunnerConfig): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const names = new Set<string>()
  const owner = new Map<string, string>()
  const rulePools = new Set(config.rules.map((r) => r.pool))
  config.clusters.forEach((cluster, i) => {
    if (cluster.name === DEFAULT_CLUSTER) problems.push(`clusters.${i}.name: "${DEFAULT_CLUSTER}" is the cluster of KUBECONFIG and needs no entry`)
    else if (names.has(cluster.name)) problems.push(`clusters.${i}.name: cluster "${cluster.name}" is listed twice`)
    names.add(cluster.name)
    for (const pool of cluster.pools) {
      const other = owner.get(pool)
      if (other !== undefined) problems.push(`clusters.${i}.pools: pool "${pool}" is already in cluster "${other}"; a pool lives in one cluster`)
      else owner.set(pool, cluster.name)
      if (!rulePools.has(pool)) problems.push(`clusters.${i}.pools: pool "${pool}" is in no rule`)
    }
  })
  return problems
}
