import type { GithubOperation } from "../../src/services/Github.ts"
import type { GithubRequest } from "./transport.ts"

/**
 * The REST endpoints the service calls, one per operation, as GitHub's description names them. The client fills
 * them in; the in-memory server routes on them; `test/deploy.githubApp.test.ts` checks the apps' permissions
 * against them.
 */
export const endpoints = {
  installationToken: { method: "POST", url: "/app/installations/{installation_id}/access_tokens" },
  getInstallation: { method: "GET", url: "/app/installations/{installation_id}" },
  listRunnerGroups: { method: "GET", url: "/orgs/{org}/actions/runner-groups" },
  createRunnerGroup: { method: "POST", url: "/orgs/{org}/actions/runner-groups" },
  createJitConfigOrg: { method: "POST", url: "/orgs/{org}/actions/runners/generate-jitconfig" },
  createJitConfigRepo: { method: "POST", url: "/repos/{owner}/{repo}/actions/runners/generate-jitconfig" },
  listRunnersOrgGroup: { method: "GET", url: "/orgs/{org}/actions/runner-groups/{runner_group_id}/runners" },
  listRunnersRepo: { method: "GET", url: "/repos/{owner}/{repo}/actions/runners" },
  deleteRunnerOrg: { method: "DELETE", url: "/orgs/{org}/actions/runners/{runner_id}" },
  deleteRunnerRepo: { method: "DELETE", url: "/repos/{owner}/{repo}/actions/runners/{runner_id}" },
  getJob: { method: "GET", url: "/repos/{owner}/{repo}/actions/jobs/{job_id}" },
  getRun: { method: "GET", url: "/repos/{owner}/{repo}/actions/runs/{run_id}" },
  listHookDeliveries: { method: "GET", url: "/app/hook/deliveries" },
  redeliverHookDelivery: { method: "POST", url: "/app/hook/deliveries/{delivery_id}/attempts" },
  listQueuedRuns: { method: "GET", url: "/repos/{owner}/{repo}/actions/runs" },
  listRunJobs: { method: "GET", url: "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs" }
} as const satisfies Record<GithubOperation, { readonly method: GithubRequest["method"]; readonly url: string }>

export type PathParams = Readonly<Record<string, string | number>>

/** The operation's endpoint with each `{name}` filled in, URL-encoded, and the body for a POST. */
export const endpoint = (
  operation: GithubOperation,
  params: PathParams,
  body?: Readonly<Record<string, unknown>>
): Pick<GithubRequest, "method" | "path" | "body"> => {
  const { method, url } = endpoints[operation]
  const path = url.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name]
    if (value === undefined) throw new Error(`no value for {${name}} in ${url}`)
    return encodeURIComponent(String(value))
  })
  return body === undefined ? { method, path } : { method, path, body }
}

/** Which endpoint a method and path (no query) name, with the decoded path parameters. */
export const matchEndpoint = (
  method: string,
  path: string
): { readonly operation: GithubOperation; readonly params: Readonly<Record<string, string>> } | undefined => {
  const segments = path.split("/")
  for (const [operation, e] of Object.entries(endpoints) as Array<[GithubOperation, typeof endpoints.getJob]>) {
    if (e.method !== method) continue
    const template = e.url.split("/")
    if (template.length !== segments.length) continue
    const params: Record<string, string> = {}
    const fits = template.every((t, i) => {
      const s = segments[i]!
      const name = /^\{(\w+)\}$/.exec(t)?.[1]
      if (name === undefined) return t === s
      if (s === "") return false
      params[name] = decodeURIComponent(s)
      return true
    })
    if (fits) return { operation, params }
  }
  return undefined
}
