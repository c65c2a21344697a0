import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import type { EntityType } from "../domain/Entity.ts"
import type { RunnerConfig } from "../domain/RunnerConfig.ts"
import { Github, type GithubError } from "../services/Github.ts"
import { clientAddress } from "./clientAddress.ts"
import { SetupGuard } from "./SetupGuard.ts"
import { WebhookSettings, type WebhookSettingsShape } from "./WebhookSettings.ts"

/*
 * The pages GitHub sends a person to right after they install one of our two apps (the apps' "Setup URL"). They
 * look the installation up with the app's own JWT and say plainly whether everything is in place, and if not,
 * what to do next. There are two apps because GitHub's runner APIs differ: the organization app registers
 * runners in an org runner group, the personal-account app registers them on each repository.
 *
 * The pages are public, and a look-up spends the app's GitHub budget, so an id that cannot be an installation is
 * refused before anything else, each client address has a rate limit (`SetupGuard`), and answers are remembered
 * for a minute per (app, installation id).
 */

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

/** Values interpolated into a page are escaped unless wrapped with `trusted`. */
interface Trusted {
  readonly html: string
}
const trusted = (html: string): Trusted => ({ html })
const html = (strings: TemplateStringsArray, ...values: ReadonlyArray<string | number | Trusted>): Trusted =>
  trusted(strings.reduce((out, s, i) => {
    const v = values[i - 1]!
    return out + (typeof v === "object" ? v.html : escapeHtml(String(v))) + s
  }))

const page = (status: number, title: string, body: Trusted) =>
  HttpServerResponse.text(
    html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · RISE RISC-V runners</title>
<style>
  body { font: 17px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: #f6f8fa; margin: 0; }
  main { max-width: 40rem; margin: 4rem auto; padding: 2rem 2.5rem; background: #fff; border: 1px solid #d0d7de; border-radius: 12px; }
  h1 { font-size: 1.6rem; margin-top: 0; }
  code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; background: #eff1f3; border-radius: 6px; }
  code { padding: 0.1em 0.35em; }
  pre { padding: 0.8rem 1rem; overflow-x: auto; }
  a.button { display: inline-block; margin: 0.3rem 0.5rem 0.3rem 0; padding: 0.5rem 1rem; border-radius: 6px;
             background: #1f883d; color: #fff; text-decoration: none; font-weight: 600; }
  .muted { color: #59636e; font-size: 0.92rem; }
</style>
</head>
<body>
<main>
<h1>${title}</h1>
${body}
</main>
</body>
</html>
`.html,
    { status, contentType: "text/html; charset=utf-8" }
  )

type Kind = "org" | "personal"

const describe = (kind: Kind) => kind === "org" ? "organization" : "personal-account"
const entityTypeOf = (kind: Kind): EntityType => kind === "org" ? "Organization" : "User"
const other = (kind: Kind): Kind => kind === "org" ? "personal" : "org"

const installLink = (settings: WebhookSettingsShape, kind: Kind) =>
  html`<a class="button" href="${kind === "org" ? settings.installUrls.org : settings.installUrls.personal}">Install the ${describe(kind)} app</a>`

/** The labels a workflow asks for to get our runners: those of the first rule that applies to everyone. */
const advertisedLabels = (config: RunnerConfig): ReadonlyArray<string> =>
  (config.rules.find((r) => r.scope === undefined) ?? config.rules[0])?.labels ?? ["ubuntu-24.04-riscv"]

const runsOn = (config: RunnerConfig): string => {
  const labels = advertisedLabels(config)
  return labels.length === 1 ? labels[0]! : `[${labels.join(", ")}]`
}

const missingPage = (settings: WebhookSettingsShape) =>
  page(
    400,
    "Missing installation id",
    html`<p>This page is where GitHub sends you after you install the RISE RISC-V runners app, and the link it
gave you did not carry an installation id. Nothing is wrong with your account; start from one of the install
links instead:</p>
<p>${installLink(settings, "org")}${installLink(settings, "personal")}</p>
<p class="muted">Pick the organization app for an organization's repositories, and the personal-account app for
repositories owned by your own account.</p>`
  )

const invalidPage = (settings: WebhookSettingsShape, raw: string) =>
  page(
    400,
    "Invalid installation id",
    html`<p>The installation id <code>${raw.length > 40 ? `${raw.slice(0, 40)}…` : raw}</code> is not one GitHub
gives out: an installation id is a positive whole number. Start from one of the install links instead:</p>
<p>${installLink(settings, "org")}${installLink(settings, "personal")}</p>`
  )

const tooManyRequestsPage = (retryAfterSeconds: number) =>
  HttpServerResponse.setHeader(
    page(
      429,
      "Too many requests",
      html`<p>This address has asked about installations too often. Try again in ${retryAfterSeconds} second${
        retryAfterSeconds === 1 ? "" : "s"
      }.</p>`
    ),
    "retry-after",
    String(retryAfterSeconds)
  )

/**
 * The `installation_id` parameter: absent or empty is the original's "missing" page; anything but a positive
 * safe integer (`0`, `-1`, `1.5`, `abc`, `1e3`, a 20-digit number) is refused as invalid.
 */
type ParsedId =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Invalid"; readonly raw: string }
  | { readonly _tag: "Valid"; readonly id: number }

const parseInstallationId = (raw: string | null): ParsedId => {
  if (raw === null || raw === "") return { _tag: "Missing" }
  const id = Number(raw)
  return /^\d+$/.test(raw) && Number.isSafeInteger(id) && id > 0 ? { _tag: "Valid", id } : { _tag: "Invalid", raw }
}

const notFoundPage = (settings: WebhookSettingsShape, kind: Kind, id: number) =>
  page(
    404,
    "Installation not found for this app",
    html`<p>The ${describe(kind)} app has no installation <code>${id}</code>.</p>
<p>${
      kind === "org"
        ? trusted(
          "If you meant to install it on your personal account, that takes the personal-account app, which is a separate app:"
        )
        : trusted("If you meant to install it on an organization, that takes the organization app, which is a separate app:")
    }</p>
<p>${installLink(settings, other(kind))}</p>
<p class="muted">If you just removed the app, this is expected: the installation id is gone with it.</p>`
  )

const upstreamErrorPage = (kind: Kind, id: number, status: number) =>
  page(
    502,
    "Something went wrong",
    html`<p>We could not check installation <code>${id}</code> of the ${describe(kind)} app with GitHub (upstream
status <code>${status}</code>).</p>
<p>Your installation itself is most likely fine. Reload this page in a minute to check again.</p>`
  )

const allSetPage = (settings: WebhookSettingsShape, kind: Kind, login: string) =>
  page(
    200,
    `All set, ${login}!`,
    html`<p>The RISE RISC-V runners app is installed on the ${kind === "org" ? "organization" : "personal account"}
<strong>${login}</strong>.</p>
<p>A job gets an ephemeral RISC-V runner when its workflow asks for the <code>${runsOn(settings.runnerConfig)}</code> label:</p>
<pre>jobs:
  build:
    runs-on: ${runsOn(settings.runnerConfig)}
    steps:
      - uses: actions/checkout@v4
      - run: uname -m</pre>
<p class="muted">Runners start when a job is queued and go away when it ends. A job may wait in the queue while
all boards are busy.</p>`
  )

const accountNoun = (type: string): string =>
  type === "User" ? "a personal account" : type === "Organization" ? "an organization" : `an account of type ${type}`

const wrongTypePage = (settings: WebhookSettingsShape, kind: Kind, login: string, accountType: string) =>
  page(
    400,
    kind === "org" ? "You installed the organization app on a personal account" : "You installed the personal app on an organization",
    html`<p><strong>${login}</strong> is ${accountNoun(accountType)}, and GitHub runs runners differently for
personal accounts and organizations, so it needs the ${describe(other(kind))} app:</p>
<p>${installLink(settings, other(kind))}</p>
<p class="muted">You can uninstall the app you just installed from the account's settings, under
<em>GitHub Apps</em>; it will not pick up any jobs there.</p>`
  )

/** The HTTP status behind a failed lookup, 0 when there was no HTTP answer (the original's convention). */
const upstreamStatus = (e: GithubError): number => ("status" in e ? e.status : 0)

/**
 * `GET /setup/org` and `GET /setup/personal`. When the process has no GitHub client (no app credentials), the
 * lookup cannot happen and the page says so with a 502, like any other failed lookup.
 */
export const setupPage = (kind: Kind) =>
  Effect.fn(`Webhook.setup.${kind}`)(function*() {
    const settings = yield* WebhookSettings
    const request = yield* HttpServerRequest.HttpServerRequest
    const parsed = parseInstallationId(new URL(request.url, "http://setup").searchParams.get("installation_id"))
    if (parsed._tag === "Missing") return missingPage(settings)
    if (parsed._tag === "Invalid") return invalidPage(settings, parsed.raw)
    const id = parsed.id

    const guard = yield* SetupGuard
    const address = clientAddress(request, settings.trustedProxyHops)
    const admitted = yield* guard.admit(address)
    if (admitted._tag === "Limited") {
      yield* Effect.logDebug("setup page: rate limited").pipe(Effect.annotateLogs({ client: address }))
      return tooManyRequestsPage(admitted.retryAfterSeconds)
    }

    const github = yield* Effect.serviceOption(Github)
    if (Option.isNone(github)) {
      yield* Effect.logWarning("setup page: no GitHub client configured, cannot look installations up")
      return upstreamErrorPage(kind, id, 0)
    }
    const expected = entityTypeOf(kind)
    return yield* guard.installation(expected, id, github.value.getInstallation(id, expected)).pipe(
      Effect.map((installation) =>
        installation.account.type === expected
          ? allSetPage(settings, kind, installation.account.login)
          : wrongTypePage(settings, kind, installation.account.login, installation.account.type)
      ),
      Effect.catchAll((e) =>
        e._tag === "GithubNotFound"
          ? Effect.succeed(notFoundPage(settings, kind, id))
          : Effect.as(
            Effect.logWarning("setup page: installation lookup failed").pipe(
              Effect.annotateLogs({ installation_id: id, error: e._tag, status: upstreamStatus(e) })
            ),
            upstreamErrorPage(kind, id, upstreamStatus(e))
          )
      )
    )
  })
