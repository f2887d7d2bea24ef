# Multi-stage build: compile in the Rust image, run in a slim Debian with
# Tesseract (photo stories) and curl (the openai story generator's
# requests). Render's native Rust runtime cannot install Tesseract, hence a
# Dockerfile.
#   docker build -t storybook .                              # lean build
#   docker build --build-arg FEATURES=realtime -t storybook-rt .
FROM rust:1-bookworm AS build
ARG FEATURES=""
WORKDIR /src
COPY . .
RUN cargo build --release --locked ${FEATURES:+--features $FEATURES} --bin storybook

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/storybook /usr/local/bin/storybook
ENV HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json
EXPOSE 8000
USER nobody
CMD ["storybook", "serve"]
