"""The web UI's pages: server-rendered shells (Jinja2) in the viewer's language, and the
static files (ES modules, style sheet, message catalogues) under /static.

Every string a person reads comes from a message catalogue (static/i18n/<language>.json):
the templates through `t(key)`, the scripts through the same files. The language is the
viewer's choice (the `cfm_lang` cookie the page's switch sets), else the browser's
(Accept-Language), else the site's. Dates and numbers are formatted in the browser, in the
site's time zone (the page's data-tz) and the page's language.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from server.context import ServerContext

WEB = Path(__file__).resolve().parent
STATIC = WEB / "static"
CATALOGUES = STATIC / "i18n"
LANGUAGES = ("zh-CN", "en")  # the first is the default when nothing else decides
LANG_COOKIE = "cfm_lang"

templates = Jinja2Templates(directory=WEB / "templates")
router = APIRouter(include_in_schema=False)


@cache
def catalogue(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def _supported(tag: str) -> str | None:
    tag = tag.strip().lower()
    for lang in LANGUAGES:
        if tag == lang.lower() or tag.split("-")[0] == lang.lower().split("-")[0]:
            return lang
    return None


def negotiate(cookie: str | None, accept_language: str, site_language: str) -> str:
    """The page's language: the viewer's choice, else the browser's, else the site's."""
    if cookie in LANGUAGES:
        return cookie
    weighted: list[tuple[float, int, str]] = []
    for n, part in enumerate(accept_language.split(",")):
        tag, _, params = part.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag.strip() and q > 0:
            weighted.append((-q, n, tag))
    for _, _, tag in sorted(weighted):
        lang = _supported(tag)
        if lang is not None:
            return lang
    return _supported(site_language) or LANGUAGES[0]


def _render(request: Request, template: str) -> HTMLResponse:
    ctx: ServerContext = request.app.state.ctx
    site = ctx.site
    lang = negotiate(
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language", ""),
        site.language,
    )
    messages = catalogue(lang)

    def t(key: str, **params: Any) -> str:
        text = messages.get(key, key)  # tests/unit/test_ui_catalogue.py fails on a missing key
        for name, value in params.items():
            text = text.replace("{" + name + "}", str(value))
        return text

    translated = site.translations.get(lang)
    site_name = translated.name if translated is not None and translated.name else site.name
    return templates.TemplateResponse(
        request,
        template,
        {
            "t": t,
            "lang": lang,
            "languages": LANGUAGES,
            "tz": site.timezone,
            "site_name": site_name,
            "site_language": site.language,
        },
        headers={"Content-Language": lang, "Vary": "Accept-Language, Cookie"},
    )


@router.get("/", response_class=HTMLResponse)
def public_home(request: Request) -> HTMLResponse:
    """Service commitments with the measured rates, and the fault-report form (no login)."""
    return _render(request, "public.html")


@router.get("/receipt", response_class=HTMLResponse)
def receipt_page(request: Request) -> HTMLResponse:
    """A reporter's receipt: the token is in the URL's fragment, read by the page's script."""
    return _render(request, "receipt.html")


@router.get("/app", response_class=HTMLResponse)
def staff_app(request: Request) -> HTMLResponse:
    """The staff UI: log in, then each role's home screen and pages (hash routes)."""
    return _render(request, "app.html")


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
