# dnsrewrite image: docker build -t dnsrewrite:0.1.0 .
# Runs as 65532:65532 with a read-only root filesystem (k8s/deployment.yaml). The config file
# is not baked in: mount one at /etc/dnsrewrite/config.yaml (the ConfigMap does), e.g.
#   docker run --rm -p 5353:5353/udp -p 5353:5353/tcp -v "$PWD/my-config:/etc/dnsrewrite:ro" dnsrewrite:0.1.0

ARG PYTHON_IMAGE=python:3.11-slim

# Build stage: install the project (runtime dependencies only, no test extras) into a venv.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# pyproject.toml names README.md as the package readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY dnsrewrite ./dnsrewrite
# A regular (not editable) install: the venv holds the package and its byte-code, and /src
# is left behind in this stage.
RUN /opt/venv/bin/pip install . \
 && /opt/venv/bin/dnsrewrite --help >/dev/null

# Runtime stage: same base image, so the venv's interpreter path is valid.
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 65532 dnsrewrite \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin dnsrewrite
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# DNS over UDP and TCP (the Service maps 53 to 5353), and the admin HTTP server
# (/health, /ready, /metrics).
EXPOSE 5353/udp 5353/tcp 8080/tcp
ENTRYPOINT ["dnsrewrite", "serve", "--config", "/etc/dnsrewrite/config.yaml"]
