# Multi-stage build: compile with the Rust toolchain, run on a slim base as a
# non-root user.
FROM rust:1.85-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/reviewguard

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home reviewguard \
 && install -d -o reviewguard -g reviewguard -m 0750 /var/lib/reviewguard-desk
COPY --from=build /src/target/release/reviewguard /usr/local/bin/reviewguard
COPY config /etc/reviewguard/config
COPY models /etc/reviewguard/models
WORKDIR /etc/reviewguard
USER reviewguard
EXPOSE 9898
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:9898/healthz || exit 1
ENTRYPOINT ["reviewguard"]
CMD ["run", "--config", "config/reviewguard.toml"]
