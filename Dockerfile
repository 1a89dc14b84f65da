# sidekey: a small, shell-less image running as non-root.
#   docker build -t sidekey-agent .
#   docker run --rm -v /etc/sidekey:/etc/sidekey:ro -v /run/sidekey:/run/sidekey sidekey-agent
# The final image holds the two binaries and the C runtime they link against (glibc, from
# distroless/cc), runs as uid 65532 (`nonroot`), and has no shell or package manager.

FROM rust:1-bookworm AS build
# The commit `--version` shows (.git is not in the build context):
#   docker build --build-arg SIDEKEY_COMMIT=$(git rev-parse --short HEAD) \
#                --build-arg SIDEKEY_COMMIT_DATE=$(git log -1 --format=%cs) -t sidekey-agent .
ARG SIDEKEY_COMMIT=unknown
ARG SIDEKEY_COMMIT_DATE=
ENV SIDEKEY_COMMIT=$SIDEKEY_COMMIT SIDEKEY_COMMIT_DATE=$SIDEKEY_COMMIT_DATE
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p sidekey-agent -p sidekey-scanner \
 && install -D -m 0755 target/release/sidekey-agent target/release/sidekey-scan -t /out

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sidekey-agent"]
CMD ["run", "--config", "/etc/sidekey/agent.toml"]
