# syntax=docker/dockerfile:1
# emotiond container image.
#
#   docker build -t emotiond .
#   docker run --rm -p 8080:8080 emotiond
#   curl -s -F image=@face.jpg localhost:8080/predict
#
# Stage 1 builds and tests on debian:bookworm with the -dev packages and the
# README's own commands (`make`, `make test`); stage 2 is debian:bookworm-slim
# with only the shared libraries the binary links (tests/test_dockerfile.sh
# checks that list against `ldd build/emotiond`).
#
# Configuration: every setting is an EMOTIOND_<KEY> environment variable
# (`docker run --rm emotiond --help` lists them), over the image's config file
# /etc/emotiond/emotiond.json (docker/emotiond.json; EMOTIOND_CONFIG names
# another one). An unknown EMOTIOND_* variable stops the server, on purpose.
# The model store and the data directory live on the volume /var/lib/emotiond.

ARG DEBIAN=bookworm

FROM debian:${DEBIAN} AS build
# The Makefile's DEB_PACKAGES plus the compiler and make.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential make pkg-config \
      libmicrohttpd-dev libjansson-dev libpng-dev libturbojpeg0-dev \
      check libopenblas-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# `make` builds what `make run` serves; `make test` is the README's test
# command (a few minutes; skip with --build-arg RUN_TESTS=0).
ARG RUN_TESTS=1
RUN make \
 && if [ "$RUN_TESTS" = 1 ]; then make test; fi \
 && strip --strip-debug build/emotiond

FROM debian:${DEBIAN}-slim AS runtime
# Runtime libraries of build/emotiond only (their own dependencies, such as
# libgnutls30, libgfortran5 and zlib1g, come with them).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libjansson4 libpng16-16 libturbojpeg0 libopenblas0-pthread libgomp1 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 emotiond \
 && useradd --system --uid 10001 --gid emotiond --home-dir /var/lib/emotiond \
      --no-create-home --shell /usr/sbin/nologin emotiond \
 && mkdir -p /var/lib/emotiond/models /var/lib/emotiond/data \
 && chown -R 10001:10001 /var/lib/emotiond

COPY --from=build /src/build/emotiond /usr/local/bin/emotiond
# The default model and the face detector ship inside the image.
COPY models/default.emod models/haarcascade_frontalface_default.fdc /opt/emotiond/models/
COPY models/haarcascade_frontalface_default.LICENSE /opt/emotiond/models/
COPY config/arch/ /opt/emotiond/config/arch/
COPY openapi.yaml /opt/emotiond/
COPY docker/emotiond.json /etc/emotiond/emotiond.json
COPY --chmod=0755 docker/healthcheck.sh /usr/local/bin/emotiond-healthcheck
COPY --chmod=0755 docker/model-watch.sh /usr/local/bin/emotiond-model-watch

WORKDIR /opt/emotiond
ENV EMOTIOND_CONFIG=/etc/emotiond/emotiond.json \
    EMOTIOND_PORT=8080 \
    EMOTIOND_LOG_FORMAT=json
VOLUME ["/var/lib/emotiond"]
USER 10001:10001
EXPOSE 8080
# bash's /dev/tcp: no curl in the slim image (docker/healthcheck.sh).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["emotiond-healthcheck", "/healthz"]
# SIGTERM drains for shutdown_grace seconds (10): give `docker stop -t` more.
STOPSIGNAL SIGTERM
ENTRYPOINT ["emotiond", "serve"]
