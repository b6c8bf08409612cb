"""Test hosts in network namespaces: a private /24 on a bridge in the root namespace, one
namespace per host joined to it by a veth pair, and a link that can be cut, impaired and
restored. Needs root and iproute2 (`ip`, `tc`); nftables (`nft`) where the kernel has no
netem (see `TestNet.impair`).

Every name is unique to the run (`cfm<6 hex>...`), so runs side by side never touch each
other's links, and `TestNet.stop()` (a fixture finalizer, with the harness's atexit backstop)
ends the processes left in its namespaces and deletes the namespaces, veths and bridge,
whatever state the test left them in. Nothing is routed beyond the /24: the hosts reach the
root namespace's bridge address and each other, nothing else.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.process import (
    START_TIMEOUT,
    Process,
    ServiceUnavailable,
    find_program,
    register,
    subdir,
    unregister,
)

__all__ = ["DeviceBroker", "Host", "TestNet", "start_device_broker"]


def _ip() -> str:
    return find_program("ip", "iproute2", "CFM_IP_BIN")


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.200.0.0/14 that no interface or route here uses yet."""
    used = _run(_ip(), "-4", "-o", "addr") + _run(_ip(), "-4", "route")
    for _ in range(100):
        net = ipaddress.IPv4Network(
            f"10.{200 + secrets.randbelow(4)}.{secrets.randbelow(256)}.0/24"
        )
        if f"10.{net.network_address.packed[1]}.{net.network_address.packed[2]}." not in used:
            return net
    raise RuntimeError("no free 10.200.0.0/14 subnet for the test network")


@dataclass
class Host:
    """One namespace on the test network: `ip` is its address, `root_if` the veth end on the
    bridge (where its link is cut), `ns_if` the end inside."""

    name: str
    ns: str
    ip: str
    root_if: str
    ns_if: str

    def argv(self, argv: Sequence[str]) -> list[str]:
        """A command line that runs `argv` inside this host's namespace."""
        return [_ip(), "netns", "exec", self.ns, *argv]

    def run(self, *argv: str) -> str:
        return _run(*self.argv(argv))

    def process(
        self, name: str, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None
    ) -> Process:
        """A harness process (stopped with the test, logged to `log`) in this namespace."""
        proc = Process(name, self.argv(argv), log, env=env)
        proc.start()
        return proc


@dataclass
class TestNet:
    """The bridge `bridge` with address `router_ip` in the root namespace, and its hosts."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    subnet: ipaddress.IPv4Network = field(default_factory=_free_subnet)
    hosts: dict[str, Host] = field(default_factory=dict)
    impairment: str | None = None  # what `impair` used last: "netem" or "tbf+nftables"

    __test__ = False  # not a pytest class

    def __post_init__(self) -> None:
        if os.geteuid() != 0:
            raise ServiceUnavailable("ip netns", "iproute2", "network namespaces need root")
        register(self)
        try:
            self._ip("link", "add", self.bridge, "type", "bridge")
            self._ip("addr", "add", f"{self.router_ip}/{self.subnet.prefixlen}", "dev", self.bridge)
            self._ip("link", "set", self.bridge, "up")
        except Exception:
            self.stop()
            raise

    @property
    def bridge(self) -> str:
        return f"cfm{self.run_id}b"

    @property
    def router_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    def _ip(self, *args: str) -> str:
        return _run(_ip(), *args)

    def add_host(self, name: str) -> Host:
        """A namespace with loopback up and one veth on the bridge (address .2, .3, ...)."""
        i = len(self.hosts)
        host = Host(
            name=name,
            ns=f"cfm-{self.run_id}-{name}",
            ip=str(self.subnet.network_address + 2 + i),
            root_if=f"cfm{self.run_id}{i}r",
            ns_if=f"cfm{self.run_id}{i}n",
        )
        self.hosts[name] = host
        self._ip("netns", "add", host.ns)
        self._ip("link", "add", host.root_if, "type", "veth", "peer", "name", host.ns_if)
        self._ip("link", "set", host.ns_if, "netns", host.ns)
        self._ip("link", "set", host.root_if, "master", self.bridge)
        self._ip("link", "set", host.root_if, "up")
        prefix = self.subnet.prefixlen
        self._ip("-n", host.ns, "addr", "add", f"{host.ip}/{prefix}", "dev", host.ns_if)
        self._ip("-n", host.ns, "link", "set", host.ns_if, "up")
        self._ip("-n", host.ns, "link", "set", "lo", "up")
        return host

    # -- the link ----------------------------------------------------------------------
    def cut(self, host: Host) -> None:
        """The cable pulled at the switch: the bridge port goes down (no carrier inside)."""
        self._ip("link", "set", host.root_if, "down")

    def impair(self, host: Host, loss_pct: int, delay_ms: int) -> str:
        """Link up again, lossy and slow both ways: `tc netem loss .. delay ..` on both veth
        ends; on a kernel built without sch_netem, a tbf rate limit whose queue delays
        packets up to `delay_ms` on both ends plus nftables dropping `loss_pct` % of the
        packets in and out of the namespace at random. Returns which one was used."""
        tc = find_program("tc", "iproute2", "CFM_TC_BIN")
        netem = ["netem", "loss", f"{loss_pct}%", "delay", f"{delay_ms}ms"]
        try:
            _run(tc, "qdisc", "replace", "dev", host.root_if, "root", *netem)
            host.run(tc, "qdisc", "replace", "dev", host.ns_if, "root", *netem)
            self.impairment = "netem"
        except RuntimeError as exc:
            if "unknown" not in str(exc).lower():
                raise
            tbf = ["tbf", "rate", "2mbit", "burst", "16kb", "latency", f"{delay_ms}ms"]
            _run(tc, "qdisc", "replace", "dev", host.root_if, "root", *tbf)
            host.run(tc, "qdisc", "replace", "dev", host.ns_if, "root", *tbf)
            nft = find_program("nft", "nftables", "CFM_NFT_BIN")
            rules = "\n".join(
                [
                    "table inet cfm_loss {",
                    *(
                        f"  chain {hook} {{ type filter hook {hook} priority 0; policy accept;"
                        f" numgen random mod 100 < {loss_pct} drop; }}"
                        for hook in ("input", "output")
                    ),
                    "}",
                ]
            )
            subprocess.run(
                host.argv([nft, "-f", "-"]), input=rules, text=True, check=True, timeout=20
            )
            self.impairment = "tbf+nftables"
        self._ip("link", "set", host.root_if, "up")
        return self.impairment

    def restore(self, host: Host) -> None:
        """Link up, no qdisc or drop rule left on it."""
        tc = find_program("tc", "iproute2", "CFM_TC_BIN")
        with contextlib.suppress(RuntimeError):
            _run(tc, "qdisc", "del", "dev", host.root_if, "root")
        with contextlib.suppress(RuntimeError):
            host.run(tc, "qdisc", "del", "dev", host.ns_if, "root")
        if self.impairment == "tbf+nftables":
            nft = find_program("nft", "nftables", "CFM_NFT_BIN")
            with contextlib.suppress(RuntimeError):
                host.run(nft, "delete", "table", "inet", "cfm_loss")
        self._ip("link", "set", host.root_if, "up")

    # -- cleanup -----------------------------------------------------------------------
    def stop(self) -> None:
        """End what still runs in our namespaces (by pid), delete them, their veths (and
        any qdisc on them) and the bridge. Safe to call twice, and after a failed start."""
        ip = _ip()
        for host in self.hosts.values():
            pids = subprocess.run(
                [ip, "netns", "pids", host.ns], capture_output=True, text=True, timeout=20
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        deadline = time.monotonic() + 5
        for host in self.hosts.values():
            while (
                time.monotonic() < deadline
                and subprocess.run(
                    [ip, "netns", "pids", host.ns], capture_output=True, text=True, timeout=20
                ).stdout.strip()
            ):
                time.sleep(0.05)
        for host in self.hosts.values():
            for args in (["link", "del", host.root_if], ["netns", "del", host.ns]):
                subprocess.run([ip, *args], capture_output=True, timeout=20, check=False)
        subprocess.run([ip, "link", "del", self.bridge], capture_output=True, timeout=20)
        unregister(self)

    def leftovers(self) -> list[str]:
        """Our namespaces and links that still exist (empty after `stop`)."""
        names = _run(_ip(), "netns", "list") + _run(_ip(), "-o", "link")
        return sorted({w.split("@")[0] for w in names.split() if self.run_id in w})


@dataclass(frozen=True)
class DeviceBroker:
    """A building's own Mosquitto inside a host, on the namespace's loopback."""

    process: Process
    port: int
    log_path: Path  # Mosquitto's own log file (flushed per line, unlike its stdout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        self.process.stop()


def start_device_broker(host: Host, tmp: Path, port: int = 1883) -> DeviceBroker:
    """A building's own Mosquitto inside `host`, on its loopback (devices and the gateway
    talk to it there; the uplink goes over the link). Anonymous, no persistence."""
    exe = find_program("mosquitto", "mosquitto", "CFM_MOSQUITTO_BIN")
    base = subdir(tmp, f"mosquitto-{host.name}-")
    log = base / "mosquitto.log"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "max_queued_messages 0",
        "max_inflight_messages 100",
        f"log_dest file {log}",
        "connection_messages true",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    (base / "mosquitto.conf").write_text("\n".join(lines) + "\n")
    argv = [exe, "-c", str(base / "mosquitto.conf")]
    proc = host.process(f"mosquitto in {host.ns}", argv, base / "stdout.log")
    broker = DeviceBroker(proc, port, log)
    proc.wait_ready(
        lambda: " running" in broker.log(),
        f"a listener on {host.ns} 127.0.0.1:{port}",
        START_TIMEOUT,
    )
    return broker
