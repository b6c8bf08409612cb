# One image for gateway and server; the command picks the role.
# The build stage makes the wheel (device_profiles/ and sites/ travel inside it as package
# data); the image installs that wheel, not the source tree, so it runs what `pip install`
# gives anyone. tests/e2e/test_packaging.py builds the wheel from this stage's COPY lines.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY gateway gateway
COPY server server
COPY firmware_sim firmware_sim
COPY facility facility
COPY device_profiles device_profiles
COPY sites sites
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
WORKDIR /app
# The wheel is mounted from the build stage (BuildKit), so it leaves no layer behind.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl \
    && useradd --system --home /data facility && mkdir -p /data && chown facility /data
# The operator's copy of the site files, to edit or mount over (docker-compose.yml points
# FACILITY_*_SITE_FILE here); the defaults use the copy inside the package.
COPY sites/ /app/sites/
USER facility
ENV FACILITY_SERVER_DATA_DIR=/data/server FACILITY_GATEWAY_DATA_DIR=/data/gateway
ENTRYPOINT ["facility"]
