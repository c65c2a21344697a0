import type { V1Affinity, V1Pod } from "@kubernetes/client-node"
import { Redacted } from "effect"
import { RUNNER_CONTAINER } from "../../src/domain/Pod.ts"
import type { RunnerPodRequest } from "../../src/services/Kube.ts"
import type { Toleration } from "./capacity.ts"

/** Labels and resource names shared by the runner pods, the nodes and the capacity count. */
export const APP_LABEL = "app"
export const APP_VALUE = "rise-riscv-runner"
export const RUNNER_SELECTOR = `${APP_LABEL}=${APP_VALUE}`
export const BOARD_LABEL = "riseproject.dev/board"
export const ENTITY_ID_LABEL = "riseproject.dev/entity_id"
export const ENTITY_NAME_LABEL = "riseproject.dev/entity_name"
export const INSTALLATION_ID_LABEL = "riseproject.dev/installation_id"
/** The device-plugin resource: one per RISC-V board slot. */
export const RUNNER_RESOURCE = "riseproject.com/runner"

/** A year of minutes: long enough for 24 h in the queue plus 5 days of job, and an upper bound on a leaked pod. */
export const ACTIVE_DEADLINE_SECONDS = 525600

/**
 * The runner pod's tolerations: none. The capacity count reads the same list, so a board whose taint the pod
 * does not tolerate is never counted as capacity.
 */
export const RUNNER_TOLERATIONS: ReadonlyArray<Toleration> = []

/**
 * Keeps the pod off the listed nodes (quarantined boards). `matchFields` on `metadata.name` names nodes exactly
 * and needs no label on them, so quarantine needs no node write (and no RBAC beyond today's).
 */
export const avoidNodesAffinity = (nodes: ReadonlyArray<string>): V1Affinity | undefined =>
  nodes.length === 0 ? undefined : {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "NotIn", values: [...nodes].sort() }] }]
      }
    }
  }

/** The nodes a manifest's affinity keeps its pod off, as `avoidNodesAffinity` writes them. */
export const avoidedNodes = (pod: V1Pod): ReadonlyArray<string> =>
  pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms.flatMap((t) =>
    (t.matchFields ?? []).flatMap((f) => (f.key === "metadata.name" && f.operator === "NotIn" ? f.values ?? [] : []))
  ) ?? []

/** Scaleway Elastic Metal boards have small root disks, so their runners get a bounded scratch space. */
const needsEphemeralStorageLimit = (pool: string): boolean => pool.startsWith("scw-em-")

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

export const isValidLabelValue = (value: string): boolean => value.length <= 63 && LABEL_VALUE.test(value)

/**
 * Turns any text into a valid label value (at most 63 of `[A-Za-z0-9-_.]`, alphanumeric at both ends). GitHub
 * logins are valid already; this guards against whatever an entity name may become, because one bad label
 * would make the API server refuse the whole pod.
 */
export const sanitizeLabelValue = (value: string): string => {
  const cleaned = value.replace(/[^A-Za-z0-9\-_.]/g, "_").slice(0, 63)
  return cleaned.replace(/^[^A-Za-z0-9]+/, "").replace(/[^A-Za-z0-9]+$/, "")
}

/** The pod's labels; the memory cluster uses them too, so both layers select and count pods the same way. */
export const runnerPodLabels = (request: RunnerPodRequest): Record<string, string> => ({
  [APP_LABEL]: APP_VALUE,
  [ENTITY_ID_LABEL]: String(request.entity.id),
  [ENTITY_NAME_LABEL]: sanitizeLabelValue(request.entity.name),
  [INSTALLATION_ID_LABEL]: String(request.installationId),
  // The pool is not sanitised: it is also the node selector, so it must be a valid label value already, and
  // a changed copy here would make the capacity count miss the pod.
  [BOARD_LABEL]: request.pool
})

/**
 * The runner pod, as the original creates it. One privileged container (its dockerd needs that) runs the image's
 * entrypoint, which reads the JIT config from the env. This is the only place the JIT config is revealed.
 */
export const runnerPodManifest = (request: RunnerPodRequest, namespace: string): V1Pod => {
  const affinity = avoidNodesAffinity(request.avoidNodes ?? [])
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: request.name, namespace, labels: runnerPodLabels(request) },
    spec: {
      nodeSelector: { [BOARD_LABEL]: request.pool },
      ...(affinity === undefined ? {} : { affinity }),
      activeDeadlineSeconds: ACTIVE_DEADLINE_SECONDS,
      restartPolicy: "Never",
      hostNetwork: true,
      containers: [
        {
          name: RUNNER_CONTAINER,
          image: request.image,
          imagePullPolicy: "IfNotPresent",
          securityContext: { privileged: true },
          env: [
            { name: "RUNNER_WAIT_FOR_DOCKER_IN_SECONDS", value: "60" },
            { name: "RUNNER_JITCONFIG", value: Redacted.value(request.jitConfig) }
          ],
          resources: {
            limits: {
              [RUNNER_RESOURCE]: "1",
              ...(needsEphemeralStorageLimit(request.pool) ? { "ephemeral-storage": "90Gi" } : {})
            }
          },
          volumeMounts: [
            { name: "docker-graph", mountPath: "/var/lib/docker" },
            { name: "k0s", mountPath: "/var/lib/k0s" }
          ]
        }
      ],
      volumes: [
        { name: "docker-graph", emptyDir: {} },
        { name: "k0s", emptyDir: {} }
      ]
    }
  }
}
