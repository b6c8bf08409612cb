"""Sample retention (留样): the meals of a day with their dishes (the day's menu, else the
site file's usual dishes), the samples logged for them, and the services the phone page
calls to log, correct, remove or void a sample. Every change is chained."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.site import SiteConfig
from server.coldchain import corrections
from server.coldchain.records_model import Menu, Sample


@dataclass
class MealDay:
    day: date
    meal: str
    name: str
    building: str
    ends_at: datetime
    due_at: datetime
    dishes: list[str]
    samples: list[Sample] = field(default_factory=list)


def canteens(site: SiteConfig) -> list[str]:
    return [b.id for b in site.buildings if b.kind == "canteen"]


def meals_of_day(
    s: Session, site: SiteConfig, day: date, building: str | None = None
) -> list[MealDay]:
    cfg = site.cold_chain
    menus = {(m.meal, m.building): m.dishes for m in s.scalars(select(Menu).where(Menu.day == day))}
    samples = s.scalars(
        select(Sample).where(Sample.day == day, Sample.void.is_(False)).order_by(Sample.taken_at)
    ).all()
    out: list[MealDay] = []
    for meal in cfg.meals:
        if not meal.served_on(day):
            continue
        for b in meal.buildings or tuple(canteens(site)):
            if building is not None and b != building:
                continue
            ends = datetime.combine(day, meal.ends, site.tz)
            dishes = list(menus.get((meal.id, b), meal.dishes))
            got = [x for x in samples if x.meal == meal.id and x.building == b]
            for extra in {x.dish for x in got} - set(dishes):
                dishes.append(extra)  # a dish sampled but not on the menu still counts
            out.append(
                MealDay(
                    day, meal.id, meal.name, b, ends, ends + cfg.samples.log_within, dishes, got
                )
            )
    return out


def dish_status(site: SiteConfig, m: MealDay, dish: str, now: datetime) -> str:
    got = [x for x in m.samples if x.dish == dish]
    if any(x.weight_g >= site.cold_chain.samples.min_weight_g for x in got):
        return "ok"
    if now < m.due_at:
        return "pending"
    return "underweight" if got else "missing"


def log_sample(s: Session, data: dict[str, Any], *, actor: str, now: datetime) -> Sample:
    row = Sample(
        building=data["building"],
        day=data["date"],
        meal=data["meal"],
        dish=data["dish"],
        weight_g=data["weight_g"],
        taken_at=data.get("taken_at") or now,
        person=data.get("person") or actor,
        fridge=data["fridge"],
        recorded_by=actor,
        recorded_at=now,
        removal_reason="",
        void_reason="",
    )
    s.add(row)
    corrections.save(s, row, building=row.building, day=row.day, actor=actor, at=now)
    return row


def remove(
    s: Session, row: Sample, *, removed_at: datetime, reason: str, actor: str, now: datetime
) -> Sample:
    row.removed_at, row.removed_by, row.removal_reason = removed_at, actor, reason
    corrections.save(s, row, building=row.building, day=row.day, actor=actor, at=now)
    return row


def set_menu(
    s: Session, *, day: date, meal: str, building: str, dishes: list[str], actor: str, now: datetime
) -> Menu:
    row = s.scalar(
        select(Menu).where(Menu.day == day, Menu.meal == meal, Menu.building == building)
    ) or Menu(day=day, meal=meal, building=building)
    row.dishes, row.set_by, row.set_at = list(dishes), actor, now
    s.add(row)
    corrections.save(s, row, building=building, day=day, actor=actor, at=now)
    return row
