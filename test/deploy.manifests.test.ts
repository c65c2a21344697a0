/**
 * The Kubernetes manifests in deploy/kubernetes: every document validates against the Kubernetes schema
 * (kubernetes-models), the kustomization lists them, and the RBAC rules grant exactly the calls the Kube layer
 * makes (derived from layers/kube/client.ts and `kubeOperations`, so a new call or a new rule fails here).
 */
import * as k8s from "@kubernetes/client-node"
// js-yaml (a dependency of @kubernetes/client-node) gives the documents as written; client-node's own loadAllYaml
// would turn them into its model objects, renaming fields and dropping the ones it does not know.
import yaml from "js-yaml"
import { describe, expect, it } from "vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Deployment } from "kubernetes-models/apps/v1"
import { Job } from "kubernetes-models/batch/v1"
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1"
import { PodDisruptionBudget } from "kubernetes-models/policy/v1"
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1"
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from "kubernetes-models/v1"
import { Effect } from "effect"
import { decodeRunnerConfig } from "../src/config/runnerConfig.ts"
import { kubeOperations, type KubeOperation } from "../src/services/Kube.ts"

const root = path.resolve(import.meta.dirname, "..")
const dir = path.join(root, "deploy/kubernetes")
/** the remote cluster's side (applied there) and the scheduler's side of it (an overlay of the base) */
const remoteDir = path.join(dir, "remote-cluster")
const overlayDir = path.join(root, "deploy/overlays/remote-cluster")

interface Manifest {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> }
  readonly [field: string]: unknown
}

const models: Record<string, new(data: never) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
  "rbac.authorization.k8s.io/v1/ClusterRole": ClusterRole,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ClusterRoleBinding
}

/**
 * The schema check of kubernetes-models accepts fields it does not know, so a misspelt `readinessprobe` would pass
 * (and the API server would drop it). This walks a document along @kubernetes/client-node's model types and
 * returns the path of every field the type does not have.
 */
type AttributeMap = ReadonlyArray<{ readonly baseName: string; readonly type: string }>
const modelTypes = k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttributeMap } | undefined>
const unknownFields = (value: unknown, type: string, at: string): ReadonlyArray<string> => {
  if (value === null || value === undefined) return []
  const array = /^Array<(.+)>$/.exec(type)
  if (array !== null) return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1]!, `${at}[${i}]`)) : [`${at} (not a list)`]
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type)
  if (map !== null) return Object.entries(value as object).flatMap(([k, v]) => unknownFields(v, map[1]!, `${at}.${k}`))
  const attributes = modelTypes[type]?.getAttributeTypeMap?.()
  if (attributes === undefined) return [] // string, number, boolean, IntOrString, Date, any
  if (typeof value !== "object" || Array.isArray(value)) return [`${at} (not an object)`]
  return Object.entries(value as object).flatMap(([k, v]) => {
    const field = attributes.find((a) => a.baseName === k)
    return field === undefined ? [`${at}.${k}`] : unknownFields(v, field.type, `${at}.${k}`)
  })
}
/** client-node names a model after the version and the kind: `apps/v1` `Deployment` is `V1Deployment`. */
const clientType = (m: { readonly apiVersion: string; readonly kind: string }) => {
  const version = m.apiVersion.split("/").at(-1)!
  return `${version[0]!.toUpperCase()}${version.slice(1)}${m.kind}`
}

const yamlFiles = fs.readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()
const manifestFiles = yamlFiles.filter((f) => f !== "kustomization.yaml")
const load = (file: string, from = dir): ReadonlyArray<Manifest> =>
  yaml.loadAll(fs.readFileSync(path.join(from, file), "utf8")).filter((d) => d !== null && d !== undefined) as Array<Manifest>
const byFile = new Map(manifestFiles.map((f) => [f, load(f)] as const))
const applied = [...byFile].filter(([f]) => f !== "secret.template.yaml").flatMap(([, docs]) => docs)
const all = [...byFile.values()].flat()
const ofKind = <A = Manifest>(kind: string) => applied.filter((m) => m.kind === kind) as unknown as Array<A & Manifest>

interface Container {
  readonly name: string
  readonly image: string
  readonly args?: ReadonlyArray<string>
  readonly ports?: ReadonlyArray<{ readonly name?: string; readonly containerPort: number }>
  readonly env?: ReadonlyArray<{ readonly name: string; readonly valueFrom?: { readonly secretKeyRef?: { readonly name: string; readonly key: string } } }>
  readonly envFrom?: ReadonlyArray<{ readonly configMapRef?: { readonly name: string }; readonly secretRef?: { readonly name: string } }>
  readonly readinessProbe?: { readonly httpGet?: { readonly path: string; readonly port: string | number } }
  readonly livenessProbe?: { readonly httpGet?: { readonly path: string; readonly port: string | number } }
  readonly securityContext?: Record<string, unknown>
}
interface PodTemplate {
  readonly metadata: { readonly labels: Record<string, string> }
  readonly spec: {
    readonly serviceAccountName?: string
    readonly automountServiceAccountToken?: boolean
    readonly securityContext?: { readonly runAsNonRoot?: boolean }
    readonly containers: ReadonlyArray<Container>
  }
}
type Workload = Manifest & { readonly spec: { readonly replicas?: number; readonly template: PodTemplate } }
const deployment = (component: string): Workload => {
  const found = ofKind<Workload>("Deployment").find((d) => d.metadata.labels?.["app.kubernetes.io/component"] === component)
  if (found === undefined) throw new Error(`no ${component} Deployment`)
  return found
}
// kubectl embeds kustomize; where it is installed, render the kustomizations as `kubectl apply -k` would
const kubectlInstalled = (() => {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()
const workloads = [...ofKind<Workload>("Deployment"), ...ofKind<Workload>("Job")]

describe("deploy/kubernetes", () => {
  it("every document validates against the Kubernetes schema", () => {
    expect(all.length).toBeGreaterThan(10)
    for (const m of all) {
      const Model = models[`${m.apiVersion}/${m.kind}`]
      expect(Model, `${m.apiVersion} ${m.kind} ${m.metadata?.name} has no model in this test`).toBeDefined()
      expect(() => new Model!(m as never).validate(), `${m.kind} ${m.metadata.name}`).not.toThrow()
      expect(m.metadata.labels?.["app.kubernetes.io/name"], `${m.kind} ${m.metadata.name}`).toBe("riscv-runner")
      expect(modelTypes[clientType(m)]?.getAttributeTypeMap, clientType(m)).toBeDefined()
      expect(unknownFields(m, clientType(m), `${m.kind} ${m.metadata.name}`)).toEqual([])
    }
    console.log(`deploy/kubernetes: ${all.length} documents in ${manifestFiles.length} files validate`)
  })

  it("the unknown-field walk catches a misspelt field at any depth", () => {
    const d = structuredClone(deployment("webhook")) as unknown as { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } }
    d.spec.template.spec.containers[0]!["readinessprobe"] = { httpGet: { path: "/health", port: "http" } }
    expect(unknownFields(d, "V1Deployment", "d")).toEqual(["d.spec.template.spec.containers[0].readinessprobe"])
  })

  it("the kustomization lists every manifest but the Secret template, and no namespace override", () => {
    const k = yaml.loadAll(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"))[0] as {
      readonly resources: ReadonlyArray<string>
      readonly namespace?: string
      readonly images: ReadonlyArray<{ readonly name: string }>
    }
    expect([...k.resources].sort()).toEqual(manifestFiles.filter((f) => f !== "secret.template.yaml"))
    expect(k.namespace).toBeUndefined()
    expect(k.images.map((i) => i.name)).toEqual(["riscv-runner"])
    for (const w of workloads) for (const c of w.spec.template.spec.containers) expect(c.image).toBe("riscv-runner")
  })

  it.skipIf(!kubectlInstalled)("kubectl kustomize renders every document, with the image set and the Role left in the runners' namespace", () => {
    const rendered = yaml.loadAll(execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" })) as Array<Manifest>
    expect(rendered.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(applied.map((m) => `${m.kind}/${m.metadata.name}`).sort())
    for (const m of rendered) {
      expect(m.metadata.labels?.["app.kubernetes.io/part-of"]).toBe("riscv-runner")
      const pods = (m as unknown as Workload).spec?.template?.spec?.containers ?? []
      for (const c of pods) expect(c.image).toMatch(/^ghcr\.io\/.+\/riscv-runner:/)
    }
    expect(rendered.find((m) => m.kind === "Role")?.metadata.namespace).toBe("default")
  })

  it("webhook and scheduler run two replicas each, with their role, readiness on /ready, liveness on /health and no root", () => {
    for (const [component, role] of [["webhook", "webhook"], ["scheduler", "scheduler"]] as const) {
      const d = deployment(component)
      expect(d.spec.replicas).toBe(2)
      const pod = d.spec.template
      expect(pod.spec.securityContext?.runAsNonRoot).toBe(true)
      expect(pod.spec.containers).toHaveLength(1)
      const c = pod.spec.containers[0]!
      expect(c.args).toEqual([role])
      expect(c.readinessProbe?.httpGet?.path).toBe("/ready")
      expect(c.livenessProbe?.httpGet?.path).toBe("/health")
      expect(c.ports?.map((p) => p.name)).toContain(c.readinessProbe?.httpGet?.port)
      expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true })
      // never the runner pods' label, or the scheduler would count our own pods as runners
      expect(pod.metadata.labels["app"]).toBeUndefined()
    }
    expect(ofKind<Workload>("Job").map((j) => j.spec.template.spec.containers[0]!.args)).toEqual([["migrate"]])
  })

  it("each Service selects the pods of one Deployment and targets a port they declare", () => {
    const services = ofKind<Manifest & { spec: { selector: Record<string, string>; ports: ReadonlyArray<{ targetPort: string }> } }>("Service")
    expect(services).toHaveLength(2)
    for (const s of services) {
      const matches = ofKind<Workload>("Deployment").filter((d) =>
        Object.entries(s.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v)
      )
      expect(matches, s.metadata.name).toHaveLength(1)
      const ports = matches[0]!.spec.template.spec.containers.flatMap((c) => c.ports ?? []).map((p) => p.name)
      for (const p of s.spec.ports) expect(ports).toContain(p.targetPort)
    }
  })

  it("the Secret template holds empty values only (unset, so it fails closed), and every secret the workloads read", () => {
    const secret = byFile.get("secret.template.yaml")![0] as Manifest & { stringData: Record<string, string> }
    for (const [key, value] of Object.entries(secret.stringData)) expect(value, key).toBe("")
    const read = workloads.flatMap((w) =>
      w.spec.template.spec.containers.flatMap((c) => (c.env ?? []).flatMap((e) => e.valueFrom?.secretKeyRef === undefined ? [] : [e.valueFrom.secretKeyRef]))
    )
    expect(read.length).toBeGreaterThan(0)
    for (const ref of read) {
      expect(ref.name).toBe(secret.metadata.name)
      expect(Object.keys(secret.stringData)).toContain(ref.key)
    }
  })

  it("every environment variable the manifests set is one the service reads", () => {
    const sources = [
      ...fs.readdirSync(path.join(root, "src"), { recursive: true, encoding: "utf8" }).map((f) => path.join(root, "src", f)),
      ...fs.readdirSync(path.join(root, "layers"), { recursive: true, encoding: "utf8" }).map((f) => path.join(root, "layers", f))
    ].filter((f) => f.endsWith(".ts")).map((f) => fs.readFileSync(f, "utf8")).join("\n")
    const configMap = ofKind<Manifest & { data: Record<string, string> }>("ConfigMap")[0]!
    const names = new Set([
      ...Object.keys(configMap.data),
      ...workloads.flatMap((w) => w.spec.template.spec.containers.flatMap((c) => (c.env ?? []).map((e) => e.name)))
    ])
    for (const name of names) expect(sources.includes(`"${name}"`), `${name} is not read anywhere in src/ or layers/`).toBe(true)
  })

  it("only the scheduler gets an API token; the others mount none", () => {
    for (const w of workloads) {
      const component = w.metadata.labels?.["app.kubernetes.io/component"]
      expect(w.spec.template.spec.automountServiceAccountToken, w.metadata.name).toBe(component === "scheduler")
    }
  })

  describe("RBAC", () => {
    const client = fs.readFileSync(path.join(root, "layers/kube/client.ts"), "utf8")
    /** `call("op", () => core.method(...))`: the operation name and the CoreV1Api method behind it */
    const requests = [...client.matchAll(/call\(\s*"(\w+)",\s*\(\)\s*=>\s*core\.(\w+)\(/g)].map((m) => ({ operation: m[1]!, method: m[2]! }))
    /**
     * `watcher.watch(\`/api/v1/namespaces/${namespace}/pods\`, ...)`: a watch, named like the other operations
     * (`watchPods`), and the CoreV1Api method it stands for (`watchNamespacedPod`).
     */
    const watches = [...client.matchAll(/watcher\.watch\(\s*`\/api\/v1\/(namespaces\/\$\{[^}]+\}\/)?(\w+)s`/g)].map((m) => {
      const kind = m[2]!.charAt(0).toUpperCase() + m[2]!.slice(1)
      return { operation: `watch${kind}s`, method: `watch${m[1] === undefined ? "" : "Namespaced"}${kind}` }
    })
    const calls = [...requests, ...watches]
    const runnerNamespace = /options\.namespace \?\? "([^"]+)"/.exec(client)?.[1]

    /** A CoreV1Api method name says its verb and resource: `listNamespacedPod` is `list pods` in a namespace. */
    const permissionOf = (method: string) => {
      const m = /^(list|create|patch|delete|read|replace|watch)(Namespaced)?([A-Z]\w*?)(Log|Status)?$/.exec(method)
      if (m === null) throw new Error(`cannot tell the permission behind core.${method}`)
      const verb = m[1] === "read" ? "get" : m[1] === "replace" ? "update" : m[1]!
      const resource = `${m[3]!.toLowerCase()}s${m[4] === undefined ? "" : `/${m[4].toLowerCase()}`}`
      return { verb, resource, namespaced: m[2] !== undefined }
    }
    const key = (p: { verb: string; resource: string; namespaced: boolean }) => `${p.namespaced ? "namespace" : "cluster"} ${p.resource} ${p.verb}`

    type Rule = { apiGroups: ReadonlyArray<string>; resources: ReadonlyArray<string>; verbs: ReadonlyArray<string> }
    const grants = (kind: "Role" | "ClusterRole", namespaced: boolean) =>
      ofKind<Manifest & { rules: ReadonlyArray<Rule> }>(kind).flatMap((r) =>
        r.rules.flatMap((rule) => {
          expect(rule.apiGroups).toEqual([""])
          return rule.resources.flatMap((resource) => rule.verbs.map((verb) => key({ verb, resource, namespaced })))
        })
      )

    it("the Kube layer's call sites name every KubeOperation", () => {
      expect(watches).toEqual([
        { operation: "watchPods", method: "watchNamespacedPod" },
        { operation: "watchNodes", method: "watchNode" }
      ])
      expect(calls.length).toBeGreaterThanOrEqual(kubeOperations.length)
      expect(new Set(calls.map((c) => c.operation))).toEqual(new Set<string>(kubeOperations))
      // one operation is one kind of request
      for (const op of kubeOperations) {
        expect(new Set(calls.filter((c) => c.operation === op).map((c) => key(permissionOf(c.method)))).size, op).toBe(1)
      }
    })

    it("the rules grant exactly the calls: no more, no less", () => {
      const needed = new Set(calls.map((c) => key(permissionOf(c.method))))
      const granted = [...grants("Role", true), ...grants("ClusterRole", false)]
      expect(new Set(granted).size, "a permission is granted twice").toBe(granted.length)
      expect(new Set(granted)).toEqual(needed)
      console.log(`RBAC: ${needed.size} permissions for ${kubeOperations.length} operations: ${[...needed].sort().join(", ")}`)
    })

    it("the operations map to the permissions this file's comment documents", () => {
      const expected: Record<KubeOperation, string> = {
        listNodes: "cluster nodes list",
        listPods: "namespace pods list",
        createPod: "namespace pods create",
        patchPod: "namespace pods patch",
        deletePod: "namespace pods delete",
        listEvents: "namespace events list",
        readLog: "namespace pods/log get",
        watchPods: "namespace pods watch",
        watchNodes: "cluster nodes watch"
      }
      for (const c of calls) expect(key(permissionOf(c.method)), c.operation).toBe(expected[c.operation as KubeOperation])
    })

    it("the Role sits in the runner pods' namespace and binds the scheduler's account only", () => {
      expect(runnerNamespace).toBeDefined()
      for (const r of ofKind("Role")) expect(r.metadata.namespace).toBe(runnerNamespace)
      const scheduler = deployment("scheduler").spec.template.spec.serviceAccountName
      const bindings = [...ofKind<Manifest & { subjects: ReadonlyArray<{ kind: string; name: string; namespace: string }>; roleRef: { kind: string; name: string } }>("RoleBinding"), ...ofKind<Manifest & { subjects: ReadonlyArray<{ kind: string; name: string; namespace: string }>; roleRef: { kind: string; name: string } }>("ClusterRoleBinding")]
      expect(bindings).toHaveLength(2)
      for (const b of bindings) {
        expect(b.subjects).toEqual([{ kind: "ServiceAccount", name: scheduler, namespace: deployment("scheduler").metadata.namespace }])
        expect(ofKind(b.roleRef.kind).map((r) => r.metadata.name)).toContain(b.roleRef.name)
      }
      expect(deployment("webhook").spec.template.spec.serviceAccountName).not.toBe(scheduler)
    })
  })
})

/**
 * A remote cluster (docs/operating.md, "A remote cluster"): the manifests applied there grant the scheduler's
 * account exactly the rules rbac.yaml grants it at home, and the overlay that gives the scheduler the cluster's
 * kubeconfig mounts that file in the scheduler alone, read-only, beside the runner config that names it.
 */
describe("a remote cluster", () => {
  type Rule = { apiGroups: ReadonlyArray<string>; resources: ReadonlyArray<string>; verbs: ReadonlyArray<string> }
  type Binding = Manifest & { subjects: ReadonlyArray<{ kind: string; name: string; namespace: string }>; roleRef: { kind: string; name: string } }
  /** every permission a set of documents grants: `Role <namespace> <group>/<resource> <verb>` or `ClusterRole ...` */
  const permissions = (docs: ReadonlyArray<Manifest>) =>
    docs.filter((d) => d.kind === "Role" || d.kind === "ClusterRole").flatMap((r) =>
      (r as Manifest & { rules: ReadonlyArray<Rule> }).rules.flatMap((rule) =>
        rule.apiGroups.flatMap((group) =>
          rule.resources.flatMap((resource) =>
            rule.verbs.map((verb) => `${r.kind} ${r.metadata.namespace ?? "(cluster)"} ${group}/${resource} ${verb}`)
          )
        )
      )
    ).sort()

  const remoteFiles = fs.readdirSync(remoteDir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort()
  const remote = remoteFiles.flatMap((f) => load(f, remoteDir))
  const remoteOf = <A = Manifest>(kind: string) => remote.filter((m) => m.kind === kind) as unknown as Array<A & Manifest>

  it("the remote side's documents validate against the Kubernetes schema, and its kustomization lists them all", () => {
    expect(remote.length).toBeGreaterThanOrEqual(6)
    for (const m of remote) {
      const Model = models[`${m.apiVersion}/${m.kind}`]
      expect(Model, `${m.apiVersion} ${m.kind} ${m.metadata?.name} has no model in this test`).toBeDefined()
      expect(() => new Model!(m as never).validate(), `${m.kind} ${m.metadata.name}`).not.toThrow()
      expect(m.metadata.labels?.["app.kubernetes.io/name"], `${m.kind} ${m.metadata.name}`).toBe("riscv-runner")
      expect(unknownFields(m, clientType(m), `${m.kind} ${m.metadata.name}`)).toEqual([])
    }
    const k = yaml.load(fs.readFileSync(path.join(remoteDir, "kustomization.yaml"), "utf8")) as { resources: ReadonlyArray<string>; namespace?: string }
    expect([...k.resources].sort()).toEqual(remoteFiles)
    expect(k.namespace).toBeUndefined()
  })

  it("the remote Role and ClusterRole grant exactly what rbac.yaml grants the scheduler, in the same namespace", () => {
    const home = permissions(load("rbac.yaml"))
    expect(home.length).toBeGreaterThan(5)
    expect(permissions(remote)).toEqual(home)
    console.log(`remote cluster RBAC: ${home.length} permissions, equal to rbac.yaml's`)
  })

  it("the remote bindings bind the remote account only; its token is a service-account token of that account, and no pod mounts it", () => {
    const accounts = remoteOf<Manifest & { automountServiceAccountToken?: boolean }>("ServiceAccount")
    expect(accounts).toHaveLength(1)
    const account = accounts[0]!
    expect(account.automountServiceAccountToken).toBe(false)
    const subject = { kind: "ServiceAccount", name: account.metadata.name, namespace: account.metadata.namespace }
    const bindings = [...remoteOf<Binding>("RoleBinding"), ...remoteOf<Binding>("ClusterRoleBinding")]
    expect(bindings).toHaveLength(2)
    for (const b of bindings) {
      expect(b.subjects).toEqual([subject])
      expect(remoteOf(b.roleRef.kind).map((r) => r.metadata.name)).toContain(b.roleRef.name)
    }
    const tokens = remoteOf<Manifest & { type: string; metadata: { annotations?: Record<string, string> } }>("Secret")
    expect(tokens).toHaveLength(1)
    expect(tokens[0]!.type).toBe("kubernetes.io/service-account-token")
    expect(tokens[0]!.metadata.namespace).toBe(account.metadata.namespace)
    expect(tokens[0]!.metadata.annotations?.["kubernetes.io/service-account.name"]).toBe(account.metadata.name)
    // never a workload in the remote cluster: the scheduler runs at home
    expect(remote.filter((m) => m.kind === "Deployment" || m.kind === "Job" || m.kind === "Pod")).toEqual([])
  })

  interface Volume {
    readonly name: string
    readonly emptyDir?: unknown
    readonly projected?: {
      readonly sources: ReadonlyArray<{
        readonly configMap?: { readonly name: string; readonly items: ReadonlyArray<{ key: string; path: string }> }
        readonly secret?: { readonly name: string; readonly items: ReadonlyArray<{ key: string; path: string }> }
      }>
    }
  }
  type Mount = { readonly name: string; readonly mountPath: string; readonly readOnly?: boolean }
  type Pod = { readonly containers: ReadonlyArray<Container & { volumeMounts?: ReadonlyArray<Mount> }>; readonly volumes?: ReadonlyArray<Volume> }
  const podOf = (d: Manifest) => (d as unknown as { spec: { template: { spec: Pod } } }).spec.template.spec
  /** each mounted file: its path in the container, and where it comes from (`configMap <name>` / `secret <name>`) */
  const mountedFiles = (pod: Pod) =>
    pod.containers.flatMap((c) =>
      (c.volumeMounts ?? []).flatMap((m) => {
        const volume = pod.volumes?.find((v) => v.name === m.name)
        return (volume?.projected?.sources ?? []).flatMap((s) => {
          const from = s.configMap !== undefined ? { kind: "configMap", ...s.configMap } : { kind: "secret", ...s.secret! }
          return from.items.map((i) => ({ path: `${m.mountPath}/${i.path}`, from: `${from.kind} ${from.name}`, readOnly: m.readOnly === true }))
        })
      })
    )

  it("the base scheduler mounts nothing but its scratch /tmp", () => {
    const pod = podOf(deployment("scheduler"))
    expect(pod.volumes).toEqual([{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }])
    expect(pod.containers.flatMap((c) => c.volumeMounts ?? [])).toEqual([{ name: "tmp", mountPath: "/tmp" }])
  })

  const overlayPatch = (component: "scheduler" | "webhook") => load(`${component}.yaml`, overlayDir)[0]!
  const runnerConfig = Effect.runSync(decodeRunnerConfig(JSON.parse(fs.readFileSync(path.join(overlayDir, "runner-config.json"), "utf8"))))

  it("the overlay's runner config is valid and lists a cluster; its patches use known fields only", () => {
    expect(runnerConfig.clusters.length).toBeGreaterThan(0)
    for (const component of ["scheduler", "webhook"] as const) {
      const patch = overlayPatch(component)
      expect(unknownFields(patch, "V1Deployment", component)).toEqual([])
      expect(patch.metadata.name).toBe(deployment(component).metadata.name)
    }
  })

  it("the scheduler mounts, read-only, the runner config and exactly the kubeconfigs it names; the webhook the runner config alone", () => {
    const kubeconfigs = runnerConfig.clusters.map((c) => c.kubeconfig).sort()
    const scheduler = mountedFiles(podOf(overlayPatch("scheduler")))
    const webhook = mountedFiles(podOf(overlayPatch("webhook")))
    for (const f of [...scheduler, ...webhook]) expect(f.readOnly, f.path).toBe(true)
    expect(scheduler.filter((f) => f.from.startsWith("secret ")).map((f) => f.path).sort()).toEqual(kubeconfigs)
    expect(webhook.filter((f) => f.from.startsWith("secret "))).toEqual([])
    for (const [component, files] of [["scheduler", scheduler], ["webhook", webhook]] as const) {
      const env = podOf(overlayPatch(component)).containers[0]!.env ?? []
      const configPath = (env.find((e) => e.name === "RUNNER_CONFIG") as { value?: string } | undefined)?.value
      expect(files.filter((f) => f.from.startsWith("configMap ")).map((f) => f.path), component).toEqual([configPath])
    }
  })

  it.skipIf(!kubectlInstalled)("kubectl kustomize renders the overlay: the base plus the mounts, the migrate Job untouched", () => {
    const rendered = yaml.loadAll(execFileSync("kubectl", ["kustomize", overlayDir], { encoding: "utf8" })) as Array<Manifest>
    const find = (kind: string, component: string) =>
      rendered.find((m) => m.kind === kind && m.metadata.labels?.["app.kubernetes.io/component"] === component)!
    const generated = rendered.find((m) => m.kind === "ConfigMap" && m.metadata.name.startsWith("riscv-runner-config"))!
    expect(generated).toBeDefined()
    const scheduler = podOf(find("Deployment", "scheduler"))
    expect(scheduler.volumes?.map((v) => v.name).sort()).toEqual(["runner-config", "tmp"])
    // the hashed name of the generated ConfigMap reaches the projected volumes, so a changed config rolls the pods
    for (const f of mountedFiles(scheduler).filter((f) => f.from.startsWith("configMap "))) expect(f.from).toBe(`configMap ${generated.metadata.name}`)
    expect(mountedFiles(podOf(find("Deployment", "webhook"))).map((f) => f.from)).toEqual([`configMap ${generated.metadata.name}`])
    // the projected files are mode 0440 and root's: only the pod's fsGroup, the service's own group, can read them
    for (const component of ["scheduler", "webhook"]) {
      const security = (podOf(find("Deployment", component)) as Pod & { securityContext?: { fsGroup?: number; runAsGroup?: number } }).securityContext
      expect(security?.fsGroup, component).toBe(security?.runAsGroup)
    }
    const migrate = podOf(find("Job", "migrate"))
    expect(migrate.volumes?.map((v) => v.name)).toEqual(podOf(ofKind("Job")[0]!).volumes?.map((v) => v.name))
    expect(migrate.containers[0]!.env?.map((e) => e.name)).not.toContain("RUNNER_CONFIG")
  })
})
