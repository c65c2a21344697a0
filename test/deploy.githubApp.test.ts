/**
 * The GitHub App manifests in deploy/github-app hold exactly the permissions that the endpoints called by
 * layers/github/endpoints.ts need: a new endpoint without a row below, or a permission the code no longer needs,
 * fails here.
 */
import { describe, expect, it } from "vitest"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const source = fs.readFileSync(path.join(root, "layers/github/endpoints.ts"), "utf8")
const readJson = (file: string) => JSON.parse(fs.readFileSync(path.join(root, "deploy/github-app", file), "utf8")) as {
  readonly url: string
  readonly hook_attributes: { readonly url: string; readonly active: boolean }
  readonly setup_url: string
  readonly default_permissions: Record<string, string>
  readonly default_events: ReadonlyArray<string>
}

type Level = "read" | "write"
type App = "org" | "personal"
/**
 * GitHub's documented permission for each endpoint, and which app calls it: organization entities get org runners
 * (org app), personal accounts get repository runners (personal app); both poll jobs and runs. `null`: the app's
 * JWT, no permission.
 */
const endpoints: Record<string, { readonly permission: readonly [string, Level] | null; readonly apps: ReadonlyArray<App> }> = {
  "POST /app/installations/{installation_id}/access_tokens": { permission: null, apps: ["org", "personal"] },
  "GET /app/installations/{installation_id}": { permission: null, apps: ["org", "personal"] },
  "GET /orgs/{org}/actions/runner-groups": { permission: ["organization_self_hosted_runners", "read"], apps: ["org"] },
  "POST /orgs/{org}/actions/runner-groups": { permission: ["organization_self_hosted_runners", "write"], apps: ["org"] },
  "POST /orgs/{org}/actions/runners/generate-jitconfig": { permission: ["organization_self_hosted_runners", "write"], apps: ["org"] },
  "GET /orgs/{org}/actions/runner-groups/{runner_group_id}/runners": { permission: ["organization_self_hosted_runners", "read"], apps: ["org"] },
  "DELETE /orgs/{org}/actions/runners/{runner_id}": { permission: ["organization_self_hosted_runners", "write"], apps: ["org"] },
  "POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig": { permission: ["administration", "write"], apps: ["personal"] },
  "GET /repos/{owner}/{repo}/actions/runners": { permission: ["administration", "read"], apps: ["personal"] },
  "DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}": { permission: ["administration", "write"], apps: ["personal"] },
  "GET /repos/{owner}/{repo}/actions/jobs/{job_id}": { permission: ["actions", "read"], apps: ["org", "personal"] },
  "GET /repos/{owner}/{repo}/actions/runs/{run_id}": { permission: ["actions", "read"], apps: ["org", "personal"] },
  // The app's own delivery log is read and redelivered with its JWT: no installation permission.
  "GET /app/hook/deliveries": { permission: null, apps: ["org", "personal"] },
  "POST /app/hook/deliveries/{delivery_id}/attempts": { permission: null, apps: ["org", "personal"] },
  "GET /repos/{owner}/{repo}/actions/runs": { permission: ["actions", "read"], apps: ["org", "personal"] },
  "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs": { permission: ["actions", "read"], apps: ["org", "personal"] }
}

/** Every `method: "X", url: "/..."` pair in the GitHub client's endpoint table (both layers call these). */
const called = [...source.matchAll(/method:\s*"([A-Z]+)",\s*url:\s*"([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}`)

const needed = (app: App): Record<string, Level> => {
  const out: Record<string, Level> = { metadata: "read" } // every app has it
  for (const e of new Set(called)) {
    const row = endpoints[e]!
    if (row.permission === null || !row.apps.includes(app)) continue
    const [name, level] = row.permission
    out[name] = out[name] === "write" || level === "write" ? "write" : "read"
  }
  return out
}

describe("deploy/github-app", () => {
  it("the GitHub client calls only endpoints with a known permission, and every one of them", () => {
    expect(called.length).toBeGreaterThan(0)
    for (const e of called) expect(Object.keys(endpoints), `${e} has no permission row in this test`).toContain(e)
    expect(new Set(called)).toEqual(new Set(Object.keys(endpoints)))
  })

  for (const [app, file, setup] of [["org", "org-app.json", "/setup/org"], ["personal", "personal-app.json", "/setup/personal"]] as const) {
    it(`${file} asks for exactly what the ${app} app's calls need`, () => {
      const manifest = readJson(file)
      expect(manifest.default_permissions).toEqual(needed(app))
      console.log(`${file}: ${JSON.stringify(manifest.default_permissions)}`)
    })

    it(`${file} subscribes to workflow_job, delivers to POST / and sets up at ${setup}`, () => {
      const manifest = readJson(file)
      // installation, installation_repositories and installation_target reach every app without a subscription
      expect(manifest.default_events).toEqual(["workflow_job"])
      expect(new URL(manifest.hook_attributes.url).pathname).toBe("/")
      expect(manifest.hook_attributes.active).toBe(true)
      expect(new URL(manifest.setup_url).pathname).toBe(setup)
      const routes = fs.readFileSync(path.join(root, "src/webhook/routes.ts"), "utf8")
      expect(routes).toContain(`HttpRouter.get("${setup}"`)
      expect(routes).toContain(`HttpRouter.post("/"`)
      for (const event of ["workflow_job", "installation", "installation_repositories", "installation_target"]) {
        expect(routes, event).toContain(`case "${event}":`)
      }
    })
  }
})
