# syntax=docker/dockerfile:1
#
# redis-entra-proxy container image.
#
#   docker build -t redis-entra-proxy .
#
# Three stages: `build` compiles the TypeScript with every dependency, `deps`
# installs the production dependencies alone from the lockfile, and the
# runtime stage copies just dist/src, package.json and those dependencies onto
# a distroless Node.js image: no shell, no package manager, non-root.
#
# test/deploy/dockerfile.test.ts runs the same steps as plain commands (there
# is no Docker engine in CI) and starts the assembled runtime tree.

ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs22-debian12:nonroot

FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p .

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./

# The client listener stays on the loopback default (127.0.0.1:6379): a
# sidecar shares the pod's loopback with the application. A shared proxy
# behind a Service passes --listen 0.0.0.0:6379 with --client-password.
# The admin listener is opened to the pod network because the kubelet's
# probes arrive on the pod IP, not on loopback.
ENV NODE_ENV=production \
    REDIS_PROXY_ADMIN_LISTEN=0.0.0.0:9090

# The proxy writes nothing to disk and logs JSON to stdout, so the container
# runs with a read-only root file system.
# 65532 is the distroless "nonroot" user; numeric so that the kubelet can
# verify runAsNonRoot without looking the name up.
USER 65532:65532
EXPOSE 6379 9090

# No HEALTHCHECK: the distroless image has no shell, curl or wget for the
# usual shell-form check, and Kubernetes ignores HEALTHCHECK in favour of its
# probes (/livez, /readyz on port 9090). docs/deployment.md shows an
# exec-form health check that uses the image's own node binary for Docker
# Compose users.
ENTRYPOINT ["/nodejs/bin/node", "dist/src/cli.js"]
