# One image for gateway and server; the command picks the role.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY gateway gateway
COPY server server
COPY firmware_sim firmware_sim
COPY facility facility
COPY device_profiles device_profiles
COPY sites sites
RUN pip install --no-cache-dir -e . && useradd --system --home /data facility && mkdir -p /data && chown facility /data
USER facility
ENV FACILITY_SERVER_DATA_DIR=/data/server FACILITY_GATEWAY_DATA_DIR=/data/gateway
ENTRYPOINT ["facility"]
