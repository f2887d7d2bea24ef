# The server's image: compiled in the Rust image, run in a slim Debian with
# Tesseract (photo stories) and curl (the openai story generator's
# requests, and the health check). Render's native Rust runtime cannot
# install Tesseract, hence a Dockerfile.
#   docker build -t storybook .                                  # lean build
#   docker build --build-arg FEATURES=realtime -t storybook-rt .
#   docker run -p 8000:8000 storybook                            # SQLite in /app
FROM rust:1-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.71
WORKDIR /src

# The dependencies' recipe: the manifests and Cargo.lock, nothing else.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# The dependencies build in a layer of their own, which a change to the
# code (or to anything but the manifests) reuses: a build minute budget
# pays for the server's own crates only.
FROM chef AS build
ARG FEATURES=""
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked ${FEATURES:+--features "$FEATURES"} --bin storybook --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked ${FEATURES:+--features "$FEATURES"} --bin storybook

FROM debian:bookworm-slim
# Not pinned to versions (DL3008): bookworm's security updates replace
# them, and a pinned version that is gone fails the build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 storybook \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --create-home --shell /usr/sbin/nologin storybook
COPY --from=build /src/target/release/storybook /usr/local/bin/storybook
# The default database (sqlite://storybook.db) is a file in the working
# directory, which the unprivileged user owns: a bare `docker run` works.
WORKDIR /app
USER 10001:10001
ENV HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["sh", "-c", "curl -fsS \"http://127.0.0.1:${PORT}/healthz\" > /dev/null || exit 1"]
CMD ["storybook", "serve"]
