# syntax=docker/dockerfile:1.7
#
# The Billing Service image: `billing-server` on debian:bookworm-slim, run as uid 10001.
#
#   docker build -t billing-server:dev .
#   docker run --rm -p 8087:8087 --env-file .env billing-server:dev           # serve
#   docker run --rm --env DATABASE_URL=... billing-server:dev migrate          # migrations only
#
# Stages:
#   toolchain  Rust + libpq-dev (diesel's postgres backend links libpq).
#   skeleton   The workspace reduced to manifests, Cargo.lock and stub targets
#              (scripts/deploy/cargo-skeleton.sh). Its output only changes when a
#              manifest or the lock file changes.
#   builder    Builds the skeleton (= every dependency, cached in its own layer), then the
#              real sources on top.
#   runtime    debian:bookworm-slim + libpq5 + ca-certificates + the binary, non-root.
#
# No secret is passed to the build: there is no ARG or ENV holding a key, and the runtime
# reads every secret from its environment at start (SPEC §2).
#
# No HEALTHCHECK: the slim image carries no curl/wget, and Kubernetes ignores Docker's
# HEALTHCHECK in favour of its own probes (deploy/base/deployment.yaml probes
# /health/live and /health/ready). docker-compose.yml defines a check with bash's
# /dev/tcp for local use.

ARG RUST_VERSION=1.95
# Builder and runtime must be the same Debian release: the binary links that release's
# glibc and libpq.
ARG DEBIAN_SUITE=bookworm

# ---------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_SUITE} AS toolchain
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev \
    && rm -rf /var/lib/apt/lists/*
ENV CARGO_INCREMENTAL=0 \
    CARGO_NET_RETRY=10 \
    CARGO_TERM_COLOR=never
WORKDIR /src

# ---------------------------------------------------------------------------------------
FROM toolchain AS skeleton
COPY scripts/deploy/cargo-skeleton.sh /usr/local/bin/cargo-skeleton
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN cargo-skeleton /src /skeleton

# ---------------------------------------------------------------------------------------
FROM toolchain AS builder
# 1. Dependencies only. This layer is reused as long as /skeleton is byte-identical.
COPY --from=skeleton /skeleton/ ./
RUN --mount=type=cache,id=billing-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=billing-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked -p billing-server

# 2. The real sources. COPY keeps the files' modification times from the build context,
#    which can be older than the stub artifacts built above; cargo would then keep the
#    stub build. Touching every workspace file makes cargo rebuild the workspace crates
#    (and only them: registry dependencies are fingerprinted by version, not mtime).
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY migrations ./migrations
# The commit `billing_build_info{git_commit}` reports (`--build-arg GIT_COMMIT=$(git
# rev-parse HEAD)`); declared here so that it never invalidates the dependency layer.
ARG GIT_COMMIT=unknown
RUN --mount=type=cache,id=billing-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=billing-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    find crates migrations -type f -exec touch {} + \
    && cargo build --release --locked -p billing-server \
    && install -D -m 0755 target/release/billing-server /out/billing-server \
    && strip --strip-debug /out/billing-server

# ---------------------------------------------------------------------------------------
FROM debian:${DEBIAN_SUITE}-slim AS runtime
LABEL org.opencontainers.image.title="billing-server" \
      org.opencontainers.image.description="Billing Service: Stripe Checkout, Portal, PaymentIntents and webhooks" \
      org.opencontainers.image.licenses="Apache-2.0"
# libpq5: diesel's postgres backend; ca-certificates: TLS to Stripe, the notifications
# endpoint and the database (reqwest uses rustls with the system roots; no OpenSSL).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 billing \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin billing
COPY --from=builder /out/billing-server /usr/local/bin/billing-server
# Fails the build if a shared library the binary links (libpq above all) is missing here.
RUN ldd /usr/local/bin/billing-server >/tmp/ldd.txt \
    && ! grep -F "not found" /tmp/ldd.txt \
    && rm /tmp/ldd.txt
# Numeric so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
ENV PORT=8087 \
    LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8087
# The server drains on SIGTERM (SHUTDOWN_TIMEOUT_SECS, default 20 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/billing-server"]
CMD ["serve"]
