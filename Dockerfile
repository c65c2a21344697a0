# syntax=docker/dockerfile:1
# One build, four images:
#   docker build --target webhook   -t riscv-runner:webhook .     # `main.ts webhook`
#   docker build --target scheduler -t riscv-runner:scheduler .   # `main.ts scheduler`
#   docker build --target all       -t riscv-runner .             # `main.ts all` (also the default target: it is last)
#   docker build --target deno      -t riscv-runner:deno .        # the same sources under `deno run`
# Every image takes the role as its argument too (`docker run riscv-runner migrate`), which is how the Kubernetes
# manifests use one image for every Deployment and the migrate Job.
# .ci/container.sh checks that every path copied below exists and runs the ENTRYPOINTs below from a pruned install.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG DENO_IMAGE=denoland/deno:bin-2.9.6

# --- build: bundle src/main.ts and everything it imports into one ES module (npm packages stay external).
# Node then starts from plain JavaScript instead of compiling TypeScript at every start. The bundle sits at
# dist/src/, the depth of src/, so the path it reads migrations from (`../../migrations/`) still ends at /app.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY .ci/complete-lockfile.mjs ./.ci/
RUN node .ci/complete-lockfile.mjs && npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY layers ./layers
RUN node_modules/.bin/esbuild src/main.ts --bundle --platform=node --format=esm --target=node20 --packages=external --outfile=dist/src/main.mjs --log-level=warning

# --- runtime: production dependencies only, the bundle and the migrations; runs as `node` (uid 1000).
# The lockfile is completed first: a lockfile written behind a filtered registry mirror lacks the optional
# platform builds, and npm ci refuses it then.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production LOG_FORMAT=json
WORKDIR /app
COPY package.json package-lock.json ./
COPY .ci/complete-lockfile.mjs ./.ci/
RUN node .ci/complete-lockfile.mjs && npm ci --omit=dev --no-audit --no-fund && npm cache clean --force && rm -rf .ci "$(npm config get cache)"
COPY migrations ./migrations
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080
# /health answers `ok` on PORT while the process is up (the scheduler alone listens on PORT too)
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# exec form: node is PID 1's only process and gets SIGTERM itself; Effect's runMain then closes the servers and
# lets a running scheduler cycle finish
ENTRYPOINT ["node", "dist/src/main.mjs"]
CMD ["all"]

FROM runtime AS webhook
CMD ["webhook"]

FROM runtime AS scheduler
CMD ["scheduler"]

# --- deno: the TypeScript sources run by Deno over the same production node_modules. Permissions: environment
# (a dependency enumerates it, so it cannot be a list), network (PostgreSQL, GitHub, the API server; the hosts
# differ per deployment), reading the app, the service-account token and /etc/riscv-runner (RUNNER_CONFIG), and
# sys (TLS reads the system CA store). No write, no run: the embedded PostgreSQL of `--simulate` is not for images.
FROM ${DENO_IMAGE} AS deno-binary

FROM runtime AS deno
COPY --from=deno-binary /deno /usr/local/bin/deno
COPY deno.json tsconfig.json ./
COPY src ./src
COPY layers ./layers
ENV DENO_DIR=/app/.deno-cache DENO_NO_UPDATE_CHECK=1
USER root
RUN deno cache src/main.ts && chown -R node:node /app/.deno-cache
USER node
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["deno", "eval", "--no-prompt", "--allow-env=PORT", "--allow-net=127.0.0.1", "const r = await fetch(`http://127.0.0.1:${Deno.env.get('PORT') ?? 8080}/health`).catch(() => null); Deno.exit(r?.ok ? 0 : 1)"]
ENTRYPOINT ["deno", "run", "--no-prompt", "--allow-env", "--allow-net", "--allow-read=.,/var/run/secrets/kubernetes.io/serviceaccount,/etc/riscv-runner", "--allow-sys", "src/main.ts"]
CMD ["all"]

# The default target when none is given: both roles in one process.
FROM runtime AS all
CMD ["all"]
