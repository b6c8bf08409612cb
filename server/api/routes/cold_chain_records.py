"""/api/cold-chain: the calibration register, meals and menus, and sample retention (留样)
for the phone page (docs/cold-chain.md). Officer and admin write; canteen managers read."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from server.api.deps import SessionDep
from server.api.routes.cold_chain import Officer, Reader, Service, buildings_of, visible
from server.coldchain import edits, findings, samples, store, views
from server.coldchain.records_model import Calibration, Sample
from server.coldchain.schemas import CalibrationIn, CorrectionIn, MenuIn, RemovalIn, SampleIn
from server.coldchain.service import ColdChainService

router = APIRouter(prefix="/api/cold-chain", tags=["cold-chain"])


def _unprocessable(msg: str) -> HTTPException:
    return HTTPException(422, msg)


# -- calibration register ------------------------------------------------------------------
@router.get("/calibrations")
def calibrations(
    svc: Service, viewer: Reader, session: SessionDep, device: str | None = None
) -> list[dict[str, Any]]:
    ids = [d.id for d in visible(svc, viewer) if device in (None, d.id)]
    rows = session.scalars(
        select(Calibration)
        .where(Calibration.device_id.in_(ids))
        .order_by(Calibration.device_id, Calibration.calibrated_on.desc())
    )
    return [views.calibration_out(c) for c in rows]


@router.post("/calibrations", status_code=201)
def add_calibration(svc: Service, viewer: Officer, body: CalibrationIn) -> dict[str, Any]:
    dev = svc.devices.get(body.device_id)
    if dev is None:
        raise _unprocessable(f"device_id: {body.device_id!r} keeps no cold-chain record")
    row = store.write(
        svc.ctx.sessions,
        lambda s: edits.add_calibration(
            s, body.model_dump(), building=dev.building, actor=viewer.username, now=svc.now()
        ),
    )
    return views.calibration_out(row)


def _calibration(s: Any, svc: ColdChainService, ident: int) -> tuple[Calibration, str]:
    row = s.get(Calibration, ident)
    if row is None or row.device_id not in svc.devices:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no calibration {ident}")
    return row, svc.devices[row.device_id].building


@router.patch("/calibrations/{ident}")
def correct_calibration(
    svc: Service, viewer: Officer, ident: int, body: CorrectionIn
) -> dict[str, Any]:
    def run(s: Any) -> Calibration:
        row, building = _calibration(s, svc, ident)
        fields = {k: getattr(row, k) for k in edits.CALIBRATION_FIELDS}
        merged = CalibrationIn.model_validate(
            {"device_id": row.device_id, **fields, **body.changes}
        )
        changes = {k: getattr(merged, k) for k in body.changes if k in edits.CALIBRATION_FIELDS}
        if len(changes) != len(body.changes):
            raise _unprocessable(f"changes: only {', '.join(edits.CALIBRATION_FIELDS)}")
        edits.correct(
            s,
            row,
            changes,
            reason=body.reason,
            building=building,
            day=row.calibrated_on,
            actor=viewer.username,
            now=svc.now(),
        )
        return row

    return views.calibration_out(store.write(svc.ctx.sessions, run))


@router.delete("/calibrations/{ident}")
def void_calibration(svc: Service, viewer: Officer, ident: int, reason: str) -> dict[str, Any]:
    def run(s: Any) -> Calibration:
        row, building = _calibration(s, svc, ident)
        edits.void(
            s,
            row,
            reason=reason,
            building=building,
            day=row.calibrated_on,
            actor=viewer.username,
            now=svc.now(),
        )
        return row

    return views.calibration_out(store.write(svc.ctx.sessions, run))


# -- meals, menus and samples --------------------------------------------------------------
def _canteen(svc: ColdChainService, building: str | None) -> str:
    canteens = samples.canteens(svc.site)
    chosen = building or (canteens[0] if len(canteens) == 1 else None)
    if chosen not in canteens:
        raise _unprocessable(f"building: one of {', '.join(canteens)}")
    assert chosen is not None
    return chosen


@router.get("/meals")
def meals(
    svc: Service,
    viewer: Reader,
    session: SessionDep,
    day: Annotated[date | None, Query(alias="date")] = None,
    building: str | None = None,
) -> list[dict[str, Any]]:
    now = svc.now()
    day = day or now.astimezone(svc.tz).date()
    scope = buildings_of(viewer)
    out = []
    for m in samples.meals_of_day(session, svc.site, day, building):
        if scope is not None and m.building not in scope:
            continue
        out.append(
            {
                "date": day.isoformat(),
                "meal": m.meal,
                "name": m.name,
                "building": m.building,
                "ends_at": m.ends_at.isoformat(),
                "due_at": m.due_at.isoformat(),
                "dishes": [
                    {
                        "dish": d,
                        "status": samples.dish_status(svc.site, m, d, now),
                        "samples": [views.sample_out(x) for x in m.samples if x.dish == d],
                    }
                    for d in m.dishes
                ],
            }
        )
    return out


@router.put("/menus/{day}/{meal}")
def set_menu(svc: Service, viewer: Officer, day: date, meal: str, body: MenuIn) -> dict[str, Any]:
    if meal not in {m.id for m in svc.cfg.meals}:
        raise _unprocessable(f"meal: one of {', '.join(m.id for m in svc.cfg.meals)}")
    building = _canteen(svc, body.building)
    row = store.write(
        svc.ctx.sessions,
        lambda s: samples.set_menu(
            s,
            day=day,
            meal=meal,
            building=building,
            dishes=body.dishes,
            actor=viewer.username,
            now=svc.now(),
        ),
    )
    return {"date": day.isoformat(), "meal": meal, "building": building, "dishes": row.dishes}


@router.get("/samples")
def list_samples(
    svc: Service,
    viewer: Reader,
    session: SessionDep,
    day: Annotated[date | None, Query(alias="date")] = None,
    meal: str | None = None,
) -> list[dict[str, Any]]:
    q = select(Sample).order_by(Sample.taken_at)
    if day is not None:
        q = q.where(Sample.day == day)
    if meal is not None:
        q = q.where(Sample.meal == meal)
    scope = buildings_of(viewer)
    return [views.sample_out(x) for x in session.scalars(q) if scope is None or x.building in scope]


@router.post("/samples", status_code=201)
def add_sample(svc: Service, viewer: Officer, body: SampleIn) -> dict[str, Any]:
    if body.meal not in {m.id for m in svc.cfg.meals}:
        raise _unprocessable(f"meal: one of {', '.join(m.id for m in svc.cfg.meals)}")
    fridge = svc.devices.get(body.fridge)
    if fridge is None:
        raise _unprocessable(f"fridge: {body.fridge!r} keeps no cold-chain record")
    data = body.model_dump() | {"building": _canteen(svc, body.building or fridge.building)}
    row = store.write(
        svc.ctx.sessions,
        lambda s: samples.log_sample(s, data, actor=viewer.username, now=svc.now()),
    )
    return views.sample_out(row)


def _sample(s: Any, ident: int) -> Sample:
    row = s.get(Sample, ident)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sample {ident}")
    return row  # type: ignore[no-any-return]


@router.post("/samples/{ident}/removal")
def remove_sample(svc: Service, viewer: Officer, ident: int, body: RemovalIn) -> dict[str, Any]:
    now = svc.now()

    def run(s: Any) -> Sample:
        row = _sample(s, ident)
        if row.removed_at is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"sample {ident} was removed already")
        samples.remove(
            s,
            row,
            removed_at=body.removed_at or now,
            reason=body.reason,
            actor=viewer.username,
            now=now,
        )
        findings.removed_early(s, svc.site, row, now)
        return row

    row = store.write(svc.ctx.sessions, run)
    svc.notify_pending()
    return views.sample_out(row)


@router.patch("/samples/{ident}")
def correct_sample(svc: Service, viewer: Officer, ident: int, body: CorrectionIn) -> dict[str, Any]:
    bad = sorted(set(body.changes) - set(edits.SAMPLE_FIELDS))
    if bad:
        raise _unprocessable(f"changes: unknown field {bad}")

    def run(s: Any) -> Sample:
        row = _sample(s, ident)
        merged = SampleIn.model_validate(
            {"date": row.day, "building": row.building}
            | {k: getattr(row, k) for k in edits.SAMPLE_FIELDS}
            | body.changes
        )
        edits.correct(
            s,
            row,
            {k: getattr(merged, k) for k in body.changes},
            reason=body.reason,
            building=row.building,
            day=row.day,
            actor=viewer.username,
            now=svc.now(),
        )
        return row

    return views.sample_out(store.write(svc.ctx.sessions, run))


@router.delete("/samples/{ident}")
def void_sample(svc: Service, viewer: Officer, ident: int, reason: str) -> dict[str, Any]:
    def run(s: Any) -> Sample:
        row = _sample(s, ident)
        edits.void(
            s,
            row,
            reason=reason,
            building=row.building,
            day=row.day,
            actor=viewer.username,
            now=svc.now(),
        )
        return row

    return views.sample_out(store.write(svc.ctx.sessions, run))
