import { HttpRouter, HttpServerResponse } from "@effect/platform"

/** The scheduler's operator routes. `GET /health` answers `ok` while the process is up. */
export const schedulerRouter = HttpRouter.empty.pipe(
  HttpRouter.get("/health", HttpServerResponse.text("ok"))
)
