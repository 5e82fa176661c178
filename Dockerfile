# ipfs-sentinel's container image: built from this repository in a Rust stage, run from a small
# Debian stage as a non-root user. docker-compose.yml builds it; on its own:
#   docker build -t ipfs-sentinel .
#   docker run -p 127.0.0.1:9401:9401 ipfs-sentinel
# Inside a container the sentinel listens on 0.0.0.0 (the container's own network); publish the
# port on 127.0.0.1, or put it behind a firewall or TLS proxy, as for any other listener.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Manifests first, so a change to the code reuses the dependency layer.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo fetch --locked \
    && rm -rf src
COPY src src
COPY templates templates
RUN cargo build --release --locked --bin ipfs-sentinel \
    && strip target/release/ipfs-sentinel

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/ipfs-sentinel --create-home \
       --shell /usr/sbin/nologin sentinel
COPY --from=build /src/target/release/ipfs-sentinel /usr/local/bin/ipfs-sentinel
USER 10001:10001
WORKDIR /var/lib/ipfs-sentinel
VOLUME ["/var/lib/ipfs-sentinel"]
EXPOSE 9401
ENTRYPOINT ["/usr/local/bin/ipfs-sentinel"]
CMD ["serve", "--listen", "0.0.0.0:9401", "--data-dir", "/var/lib/ipfs-sentinel"]
