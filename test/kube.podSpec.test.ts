import { describe, expect, it } from "@effect/vitest"
import { Redacted } from "effect"
import { Pod as PodModel } from "kubernetes-models/v1/Pod"
import type { RunnerPodRequest } from "../src/services/Kube.ts"
import { avoidedNodes, isValidLabelValue, runnerPodManifest, sanitizeLabelValue } from "../layers/kube/podSpec.ts"

const JIT = "base64-jit-config-secret"

const request = (over: Partial<RunnerPodRequest> = {}): RunnerPodRequest => ({
  name: "rise-riscv-runner-k3j9x0a2b",
  jitConfig: Redacted.make(JIT),
  image: "rg.fr-par.scw.cloud/reg/riscv-runner:ubuntu-24.04-latest",
  pool: "scw-em-rv1",
  entity: { type: "Organization", id: 152654596, name: "riseproject-dev" },
  installationId: 48213977,
  ...over
})

describe("runner pod manifest", () => {
  it("is the original's pod, exactly, with the installation label added", () => {
    expect(runnerPodManifest(request(), "default")).toEqual({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "rise-riscv-runner-k3j9x0a2b",
        namespace: "default",
        labels: {
          app: "rise-riscv-runner",
          "riseproject.dev/entity_id": "152654596",
          "riseproject.dev/entity_name": "riseproject-dev",
          // ours, not the original's: which installation's runner this is
          "riseproject.dev/installation_id": "48213977",
          "riseproject.dev/board": "scw-em-rv1"
        }
      },
      spec: {
        nodeSelector: { "riseproject.dev/board": "scw-em-rv1" },
        activeDeadlineSeconds: 525600,
        restartPolicy: "Never",
        hostNetwork: true,
        containers: [
          {
            name: "runner",
            image: "rg.fr-par.scw.cloud/reg/riscv-runner:ubuntu-24.04-latest",
            imagePullPolicy: "IfNotPresent",
            securityContext: { privileged: true },
            env: [
              { name: "RUNNER_WAIT_FOR_DOCKER_IN_SECONDS", value: "60" },
              { name: "RUNNER_JITCONFIG", value: JIT }
            ],
            resources: { limits: { "riseproject.com/runner": "1", "ephemeral-storage": "90Gi" } },
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
    })
  })

  it("limits ephemeral storage only on scw-em- pools", () => {
    const limits = (pool: string) => runnerPodManifest(request({ pool }), "default").spec?.containers[0]?.resources?.limits
    expect(limits("scw-em-rv2")).toEqual({ "riseproject.com/runner": "1", "ephemeral-storage": "90Gi" })
    expect(limits("cloudv10x-jupiter")).toEqual({ "riseproject.com/runner": "1" })
    expect(limits("xscw-em-rv1")).toEqual({ "riseproject.com/runner": "1" })
  })

  it("uses the namespace it is given", () => {
    expect(runnerPodManifest(request(), "runners").metadata?.namespace).toBe("runners")
  })

  it("validates against the Kubernetes schema, for both pool kinds", () => {
    for (const pool of ["scw-em-rv1", "cloudv10x-jupiter"]) {
      expect(() => new PodModel(runnerPodManifest(request({ pool }), "default") as never).validate()).not.toThrow()
    }
  })

  it("keeps off quarantined boards by node name, and has no affinity without any", () => {
    expect(runnerPodManifest(request(), "default").spec?.affinity).toBeUndefined()
    expect(runnerPodManifest(request({ avoidNodes: [] }), "default").spec?.affinity).toBeUndefined()
    const manifest = runnerPodManifest(request({ avoidNodes: ["n9", "n1"] }), "default")
    expect(avoidedNodes(manifest)).toEqual(["n1", "n9"])
    expect(() => new PodModel(manifest as never).validate()).not.toThrow()
  })

  it("carries the JIT config only in the runner's env", () => {
    const manifest = runnerPodManifest(request(), "default")
    const { containers, ...restOfSpec } = manifest.spec!
    const { env, ...restOfContainer } = containers[0]!
    expect(JSON.stringify({ ...manifest, spec: restOfSpec })).not.toContain(JIT)
    expect(JSON.stringify(restOfContainer)).not.toContain(JIT)
    expect(env?.filter((e) => e.value === JIT).map((e) => e.name)).toEqual(["RUNNER_JITCONFIG"])
  })
})

describe("entity name label", () => {
  it.each([
    ["riseproject-dev", "riseproject-dev"],
    ["luhenry", "luhenry"],
    ["Weird Name!", "Weird_Name"],
    ["-dash-first-", "dash-first"],
    ["émile", "mile"],
    ["a".repeat(80), "a".repeat(63)],
    ["x".repeat(62) + "-y", "x".repeat(62)],
    ["", ""],
    ["!!!", ""]
  ])("%s -> %s", (input, expected) => {
    const value = sanitizeLabelValue(input)
    expect(value).toBe(expected)
    expect(isValidLabelValue(value)).toBe(true)
  })

  it("is what the manifest carries", () => {
    const labels = runnerPodManifest(request({ entity: { type: "User", id: 1, name: "Some User." } }), "default").metadata?.labels
    expect(labels?.["riseproject.dev/entity_name"]).toBe("Some_User")
  })
})
