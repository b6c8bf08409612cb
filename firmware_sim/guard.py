"""A simulated night guard: walks each patrol route whose checkpoints all have simulated
readers, tapping the guard card at every checkpoint in route order at each round's start,
one `walk_s` apart, and passes by readers told to `skip` (a missed checkpoint)."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.patrols import nights_touching, rounds_of_night
from core.site import SiteConfig
from firmware_sim.devices.campus import PatrolReader


class Guard:
    def __init__(
        self, site: SiteConfig, readers: dict[str, PatrolReader], walk_s: float = 60.0
    ) -> None:
        self.site = site
        self.walk = timedelta(seconds=walk_s)
        self.routes = []
        for route in site.patrols.routes:
            points = [site.patrols.checkpoint(cp) for cp in route.checkpoints]
            devices = [p.device for p in points if p is not None and p.device in readers]
            if len(devices) == len(route.checkpoints):
                self.routes.append((route, [readers[d] for d in devices if d is not None]))
        self._done: set[tuple[str, datetime, int]] = set()

    def step(self, now: datetime) -> None:
        for route, readers in self.routes:
            for night in nights_touching(self.site, now):
                for rnd in rounds_of_night(self.site, route, night):
                    for i, reader in enumerate(readers):
                        key = (route.id, rnd.starts_at, i)
                        due = rnd.starts_at + i * self.walk
                        if key in self._done or not due <= now < rnd.due_at:
                            continue
                        self._done.add(key)
                        if not reader.skipped():
                            reader.scan()
        old = now - timedelta(days=2)
        self._done = {k for k in self._done if k[1] >= old}
