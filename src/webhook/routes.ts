import { HttpRouter, HttpServerResponse } from "@effect/platform"

/**
 * The webhook program's HTTP routes (the original's `ghfe`). `GET /health` answers `ok` while the process is
 * up; it is not logged, since probes call it every few seconds.
 */
export const webhookRouter = HttpRouter.empty.pipe(
  HttpRouter.get("/health", HttpServerResponse.text("ok"))
)
