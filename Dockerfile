# syntax=docker/dockerfile:1
# keygate: build with the Rust toolchain (C compiler, perl and make build the bundled SQLite,
# libpq and OpenSSL), run as a non-root user on a slim Debian.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that source edits do not rebuild them: the manifests (the workspace
# names the benchmark harness too) with empty targets, one for every target Cargo.toml names
# (the bench and the example too: Cargo refuses a manifest whose named targets are missing).
COPY Cargo.toml Cargo.lock build.rs ./
COPY bench/Cargo.toml bench/Cargo.toml
RUN mkdir -p src bench/src benches examples \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > bench/src/main.rs && echo 'fn main() {}' > benches/hot_paths.rs \
    && echo 'fn main() {}' > examples/token_client.rs \
    && echo 'fn main() {}' > examples/resource_server.rs \
    && cargo build --release --locked --bin keygate
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin keygate

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/keygate --create-home keygate
COPY --from=build /src/target/release/keygate /usr/local/bin/keygate
COPY config /etc/keygate
USER keygate
WORKDIR /var/lib/keygate
# keygate's data directory is $XDG_DATA_HOME/keygate: the volume. With no database URL given,
# SQLite lives there (/var/lib/keygate/keygate.db); DATABASE_URL or KEYGATE_DATABASE__URL given
# at `docker run` choose another database (a postgres:// URL), so the image sets neither.
VOLUME ["/var/lib/keygate"]
ENV KEYGATE_PROFILE=production \
    KEYGATE_SERVER__BIND=0.0.0.0:8080 \
    XDG_DATA_HOME=/var/lib \
    RUST_LOG=info
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["keygate", "--config", "/etc/keygate"]
CMD ["serve"]
