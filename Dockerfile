# syntax=docker/dockerfile:1
#
# registry-gate in a small non-root image:
#
#   docker build -t registry-gate .
#   docker run --rm registry-gate --version
#
# The image reads /etc/registry-gate/proxy.toml (mount it, with the certificate,
# key and htpasswd files it names); any key can also be set by an environment
# variable REGISTRY_GATE_<SECTION>_<KEY>. See examples/ for compose, Kubernetes
# and AWS load balancers.

# Build stage: the official Rust image on Debian 12 (gcc for ring's C and assembly;
# no OpenSSL needed). Same glibc as the runtime image below.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# BuildKit cache mounts keep the crate downloads and the compiled dependencies
# between builds, so a source change recompiles only this crate. The target
# directory is a cache, not a layer: the binary is copied out of it in this step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin registry-gate \
    && install -D -m 0755 target/release/registry-gate /out/registry-gate

# Runtime stage: distroless "cc" (glibc, libgcc, CA certificates for an https://
# upstream, /etc/passwd with nonroot) and nothing else: no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/registry-gate /usr/local/bin/registry-gate
# The :nonroot tag already runs as 65532; numeric here so that Kubernetes'
# runAsNonRoot can verify it without looking the name up.
USER 65532:65532
# So that `docker run IMAGE check-config` reads the same file as `serve`.
ENV REGISTRY_GATE_CONFIG=/etc/registry-gate/proxy.toml
# 5043: TLS (listen.addr's default); 9143: the admin listener (/metrics, /healthz,
# /readyz), which listens on 127.0.0.1 unless [admin] addr says 0.0.0.0:9143.
EXPOSE 5043 9143
# No HEALTHCHECK: distroless has no shell or curl to run one. Orchestrators probe
# the admin listener instead: GET /healthz (alive) and GET /readyz (the registry
# answers; 503 while draining).
# SIGTERM (docker's default stop signal) drains in-flight requests for
# [shutdown] grace_period (30 s): give `docker stop -t` / compose's
# stop_grace_period / Kubernetes' terminationGracePeriodSeconds more than that.
ENTRYPOINT ["/usr/local/bin/registry-gate"]
CMD ["serve", "--config", "/etc/registry-gate/proxy.toml"]
