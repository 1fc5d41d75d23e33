# syntax=docker/dockerfile:1
# The sws image: one binary for both sidecars, `sws apply` (the injected init container) and
# the admission webhook. The sidecars run the precompiled build (`npm run build`, dist/, made
# below); the TypeScript sources ship beside it and bin/sws.js checks the build matches them.
#
#   docker build -t sws:0.1.0 .
#   docker run --rm sws:0.1.0 --help
#
# Stage 1 has a compiler toolchain for better-sqlite3's native addon; stage 2 is the slim
# runtime of the same Debian release and Node major, so the addon's ABI matches.

FROM node:20-bookworm AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# bin/sws.js falls back to tsx when SWS_BUILD is not `require`, so it must be a production
# dependency: fail here, loudly. Each step fails with its own message (one `|| { ... }` per
# command), so an npm failure is never reported as a tsx one.
RUN node -e "process.exit(require('./package.json').dependencies?.tsx ? 0 : 1)" \
 || { echo 'error: tsx is not in "dependencies" of package.json (bin/sws.js needs it at run time)' >&2; exit 1; }
# No lifecycle scripts: "prepare" builds dist/ from sources this stage does not have (stage 2
# builds it); the one dependency that needs its install script gets it from `npm rebuild`.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 || { echo "error: npm ci --omit=dev failed (npm's messages above say why; tsx was not the problem)" >&2; exit 1; }
RUN npm rebuild better-sqlite3 \
 || { echo "error: npm rebuild better-sqlite3 failed (its native addon; npm's messages above say why)" >&2; exit 1; }
RUN node -e "require.resolve('tsx/esm/api')" 2>/dev/null \
 || { echo 'error: npm ci finished but tsx/esm/api cannot be resolved (bin/sws.js needs it at run time)' >&2; exit 1; }

FROM node:20-bookworm-slim
# SWS_BUILD=require: a missing or stale build stops the container rather than running the
# sources through tsx (~30 MiB more per process). NODE_OPTIONS: V8's young generation at
# 2 × 4 MiB, not 2 × 16: 20-30 MiB less peak RSS per sidecar, same CPU (docs/PERFORMANCE.md, "Memory").
ENV NODE_ENV=production \
    SWS_DATA=/var/lib/sws \
    SWS_BUILD=require \
    NODE_OPTIONS=--max-semi-space-size=4
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
# The build, checked to run; then a fixed numeric user (Kubernetes' runAsNonRoot can only
# verify a numeric USER).
RUN node scripts/build.mjs \
 && node bin/sws.js --version >/dev/null \
 && groupadd --system --gid 10001 sws \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sws --no-create-home --shell /usr/sbin/nologin sws \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/sws
USER 10001:10001
VOLUME ["/var/lib/sws"]
# inner sidecar, outer sidecar (HTTP proxy), admin (/healthz /readyz /metrics), webhook
EXPOSE 8480 3128 9901 8443
# --no-memory-reducer: V8's idle-time heap shrinking left a sidecar at a third of its rate for
# the first second after 30 s without requests (docs/PERFORMANCE.md, "After idle"). Node refuses
# the flag in NODE_OPTIONS and ignores it once started, so it is given here.
ENTRYPOINT ["node", "--no-memory-reducer", "/app/bin/sws.js"]
CMD ["--help"]
