"""Several server processes on one uplink (FACILITY_SERVER_UPLINK=rabbitmq): `install` is the
one call server/app.py makes. A worker consumes its partitions (partitioned.py) and stands
in for the clock (clock.py); every process, API replicas too, sends and receives the live
stream through the engine (server/stream/fanout.py)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from server.context import ServerContext
from server.ingest.clock import ClockLeader, Job
from server.ingest.partitioned import PartitionedConsumer
from server.ingest.uplink_check import UplinkGuard
from server.lifespan import run_with_app
from server.stream.fanout import EngineFanout


def install(
    app: FastAPI,
    ctx: ServerContext,
    guard: UplinkGuard,
    *,
    ingest: bool,
    jobs: Sequence[tuple[str, Job]],
) -> None:
    settings = ctx.settings
    if settings.amqp_url is None:
        raise ValueError("FACILITY_SERVER_AMQP_URL: needed with FACILITY_SERVER_UPLINK=rabbitmq")
    url = settings.amqp_url.get_secret_value()
    fanout = EngineFanout(url, ctx.live)
    consumer: PartitionedConsumer | None = None
    leader: ClockLeader | None = None
    if ingest:
        consumer = PartitionedConsumer(
            url,
            ctx.pipeline,
            ctx.clock,
            ctx.registry,
            partitions=settings.partitions,
            worker_index=settings.worker_index,
            workers=settings.workers,
            grace_s=settings.partition_grace.total_seconds(),
            guard=guard,
            max_dead_letters=settings.dead_letter_max_rows,
        )
        leader = ClockLeader(
            ctx.pipeline.sessions.kw["bind"], jobs, ctx.clock, settings.tick_seconds, ctx.registry
        )
    app.state.partitioned = consumer
    app.state.clock_leader = leader

    def start() -> None:
        fanout.start()
        if consumer is not None and leader is not None:
            consumer.start()
            leader.start()

    def stop() -> None:
        if consumer is not None and leader is not None:
            consumer.stop()
            leader.stop()
        fanout.stop()

    run_with_app(app, start, stop)
