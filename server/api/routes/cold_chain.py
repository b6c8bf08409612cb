"""/api/cold-chain: excursions, corrective actions, daily records, sign-offs, findings, the
chain check and the report (docs/cold-chain.md). Officer and admin write; a canteen
manager reads their canteens; everyone else gets 403. Thin: services in server/coldchain/."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from sqlalchemy import select

from core.roles import Role
from server.api.deps import SessionDep, ViewerDep
from server.auth.scope import Viewer
from server.coldchain import edits, queries, report, signoff, store, views
from server.coldchain.model import CorrectiveAction, Excursion
from server.coldchain.records_model import Finding, SignOff
from server.coldchain.schemas import ActionIn, CorrectionIn, SignOffIn
from server.coldchain.service import ColdChainService

router = APIRouter(prefix="/api/cold-chain", tags=["cold-chain"])
OFFICERS = (Role.ADMIN, Role.FOOD_SAFETY)


def get_service(request: Request) -> ColdChainService:
    service: ColdChainService = request.app.state.cold_chain
    return service


Service = Annotated[ColdChainService, Depends(get_service)]


def reader(viewer: ViewerDep) -> Viewer:
    if viewer.role not in (*OFFICERS, Role.CANTEEN_MANAGER):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the cold-chain log is for food safety")
    return viewer


def officer(viewer: ViewerDep) -> Viewer:
    if viewer.role not in OFFICERS:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "only the food-safety officer or an admin may do this"
        )
    return viewer


Reader = Annotated[Viewer, Depends(reader)]
Officer = Annotated[Viewer, Depends(officer)]


def buildings_of(viewer: Viewer) -> set[str] | None:
    """None: every building; a canteen manager: theirs (all if none listed)."""
    if viewer.role is Role.CANTEEN_MANAGER and viewer.buildings:
        return set(viewer.buildings)
    return None


def visible(svc: ColdChainService, viewer: Viewer, building: str | None = None) -> list[Any]:
    scope = buildings_of(viewer)
    return [
        d
        for d in svc.devices.values()
        if (scope is None or d.building in scope) and (building is None or d.building == building)
    ]


def span(svc: ColdChainService, start: date | None, end: date | None) -> tuple[date, date]:
    today = svc.now().astimezone(svc.tz).date()
    start = start or end or today
    end = end or start
    if end < start or (end - start).days > 366:
        raise HTTPException(422, "from/to: at most a year")
    return start, end


@router.get("/config")
def config(svc: Service, viewer: Reader, session: SessionDep) -> dict[str, Any]:
    cfg, today = svc.cfg, svc.now().astimezone(svc.tz).date()
    return {
        "timezone": svc.site.timezone,
        "min_weight_g": cfg.samples.min_weight_g,
        "retain_h": cfg.samples.retain.total_seconds() / 3600,
        "log_within_min": cfg.samples.log_within.total_seconds() / 60,
        "action_due_min": cfg.action_due.total_seconds() / 60,
        "meals": [
            {"id": m.id, "name": m.name, "ends": m.ends.strftime("%H:%M"), "dishes": m.dishes}
            for m in cfg.meals
        ],
        "devices": [
            {
                "id": d.id,
                "name": d.name,
                "building": d.building,
                "device_class": d.device_class,
                "metric": d.limits.metric,
                "min": d.limits.min,
                "max": d.limits.max,
                "max_gap_s": d.limits.max_gap.total_seconds(),
                "source": d.limits.source,
                "calibration": queries.calibration_status(session, d, today, cfg),
            }
            for d in visible(svc, viewer)
        ],
        "dispositions": ["kept", "moved", "discarded"],
    }


@router.get("/excursions")
def excursions(
    svc: Service,
    viewer: Reader,
    session: SessionDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    device: str | None = None,
    building: str | None = None,
    state: Annotated[Literal["open", "actioned", "all"], Query(alias="status")] = "all",
) -> list[dict[str, Any]]:
    now = svc.now()
    today = now.astimezone(svc.tz).date()
    lo_day, hi_day = span(svc, start or today - timedelta(days=30), end or today)
    lo = datetime.combine(lo_day, datetime.min.time(), svc.tz)
    hi = datetime.combine(hi_day + timedelta(days=1), datetime.min.time(), svc.tz)
    ids = [d.id for d in visible(svc, viewer, building) if device in (None, d.id)]
    rows = queries.excursions_between(session, lo, hi, ids)
    out = [views.excursion_out(session, e, svc.devices, svc.cfg, now) for e in rows]
    return [x for x in out if state in ("all", x["status"])]


def _excursion(svc: ColdChainService, viewer: Viewer, session: Any, ident: int) -> Excursion:
    e = session.get(Excursion, ident)
    scope = buildings_of(viewer)
    if e is None or e.void or (scope is not None and e.building not in scope):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no excursion {ident}")
    return e  # type: ignore[no-any-return]


@router.get("/excursions/{ident}")
def excursion(svc: Service, viewer: Reader, session: SessionDep, ident: int) -> dict[str, Any]:
    e = _excursion(svc, viewer, session, ident)
    out = views.excursion_out(session, e, svc.devices, svc.cfg, svc.now())
    end = (e.ended_at or svc.now()) + timedelta(hours=1)
    pts = report.readings(session, e.device_id, e.started_at - timedelta(hours=1), end)
    out["readings"] = [{"at": t.isoformat(), "value": v} for t, v in pts]
    out["corrections"] = report.corrections_of(session, [f"excursion:{e.id}"])
    return out


@router.post("/excursions/{ident}/actions", status_code=201)
def add_action(
    svc: Service, viewer: Officer, session: SessionDep, ident: int, body: ActionIn
) -> dict[str, Any]:
    e = _excursion(svc, viewer, session, ident)
    now = svc.now()
    row = store.write(
        svc.ctx.sessions,
        lambda s: edits.add_action(
            s, s.merge(e), body.model_dump(), actor=viewer.username, now=now, tz=svc.tz
        ),
    )
    return views.action_out(row)


@router.post("/actions/{ident}/corrections")
def correct_action(
    svc: Service, viewer: Officer, session: SessionDep, ident: int, body: CorrectionIn
) -> dict[str, Any]:
    bad = sorted(set(body.changes) - set(edits.ACTION_FIELDS))
    if bad:
        raise HTTPException(422, f"changes: unknown field {bad}")

    def run(s: Any) -> CorrectiveAction:
        row = s.get(CorrectiveAction, ident)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action {ident}")
        merged = ActionIn.model_validate(
            {k: getattr(row, k) for k in edits.ACTION_FIELDS} | body.changes
        )
        e = s.get(Excursion, row.excursion_id)
        edits.correct(
            s,
            row,
            {k: getattr(merged, k) for k in body.changes},
            reason=body.reason,
            building=e.building,
            day=e.started_at.astimezone(svc.tz).date(),
            actor=viewer.username,
            now=svc.now(),
        )
        return row  # type: ignore[no-any-return]

    return views.action_out(store.write(svc.ctx.sessions, run))


@router.get("/daily")
def daily_records(
    svc: Service,
    viewer: Reader,
    session: SessionDep,
    day: Annotated[date | None, Query(alias="date")] = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    building: str | None = None,
    device: str | None = None,
) -> list[dict[str, Any]]:
    lo, hi = span(svc, day or start, day or end)
    devs = [d for d in visible(svc, viewer, building) if device in (None, d.id)]
    rows = queries.daily_rows(session, devs, lo, hi, svc.tz, svc.cfg, svc.now())
    return [
        views.daily_out(r.dev, r.day, r.figures, r.status, r.excursion_ids, r.calibration_overdue)
        for r in rows
    ]


@router.get("/signoffs")
def signoffs(
    svc: Service,
    viewer: Reader,
    session: SessionDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    building: str | None = None,
) -> list[dict[str, Any]]:
    q = select(SignOff).order_by(SignOff.start, SignOff.id)
    if start is not None:
        q = q.where(SignOff.end >= start)
    if end is not None:
        q = q.where(SignOff.start <= end)
    if building is not None:
        q = q.where(SignOff.building == building)
    scope = buildings_of(viewer)
    rows = [r for r in session.scalars(q) if scope is None or r.building in scope]
    return [views.signoff_out(r, signoff.status(session, r, svc.tz)) for r in rows]


@router.post("/signoffs", status_code=201)
def sign(svc: Service, viewer: Officer, body: SignOffIn) -> dict[str, Any]:
    now = svc.now()
    if body.building not in {d.building for d in svc.devices.values()}:
        raise HTTPException(422, "building: no cold storage")
    if body.date > now.astimezone(svc.tz).date():
        raise HTTPException(422, "date: lies in the future")

    def run(s: Any) -> dict[str, Any]:
        row = signoff.sign(
            s,
            building=body.building,
            kind=body.period,
            day=body.date,
            comment=body.comment,
            actor=viewer.username,
            now=now,
            tz=svc.tz,
            cfg=svc.cfg,
            devices=svc.devices,
        )
        return views.signoff_out(row, signoff.status(s, row, svc.tz))

    return store.write(svc.ctx.sessions, run)


@router.get("/findings")
def findings(
    svc: Service,
    viewer: Reader,
    session: SessionDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> list[dict[str, Any]]:
    lo, hi = span(svc, start, end)
    scope = buildings_of(viewer)
    rows = session.scalars(
        select(Finding).where(Finding.day >= lo, Finding.day <= hi).order_by(Finding.at)
    )
    return [views.finding_out(f) for f in rows if scope is None or f.building in scope]


@router.get("/audit/verify")
def verify(
    svc: Service,
    viewer: Officer,
    session: SessionDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    return report.verification_out(report.verify(session, svc.tz, start, end, svc.key))


@router.get(
    "/report",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "text/csv": {}}}},
)
def cold_chain_report(
    svc: Service,
    viewer: Officer,
    session: SessionDep,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    site: str | None = None,
    fmt: Annotated[Literal["pdf", "csv"], Query(alias="format")] = "pdf",
) -> Response:
    if site is not None and site != svc.site.site:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"this server keeps site {svc.site.site!r}")
    lo, hi = span(svc, start, end)
    body = report.build(session, svc, lo, hi, fmt, viewer.username)
    name = f"cold-chain-{svc.site.site}-{lo}-{hi}.{fmt}"
    media = "application/pdf" if fmt == "pdf" else "text/csv; charset=utf-8"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
