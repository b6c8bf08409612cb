"""A non-editable install runs: the wheel the Dockerfile builds, installed into a fresh venv,
starts `facility demo` from another folder (issue 10).

device_profiles/ and sites/ travel in the wheel as package data, and every default finds
them inside the installed package. The wheel is built from exactly what the Dockerfile's
build stage copies, with the same `pip wheel` command, so a folder the image would miss
fails here. The fresh venv has no system site-packages and gets the project's dependencies
from the package index (the pip cache makes that ~20 s); it is installed without byte
compiling, so the .pyc files the demo leaves in its site-packages show which copy it ran.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import free_port
from tests.helpers import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
FRIDGE = "canteen-fridge-01"
PIP_TIMEOUT = 420  # a cold pip cache downloads every dependency


def _clean_env() -> dict[str, str]:
    """This process's environment without anything that would reach into the checkout."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(argv: list[str], cwd: Path, timeout: float) -> str:
    out = subprocess.run(
        argv,
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, f"{' '.join(argv)} exited {out.returncode}:\n{out.stderr[-4000:]}"
    return out.stdout


def _build_stage_copies() -> list[tuple[str, str]]:
    """(source, destination) of every COPY in the Dockerfile's `build` stage."""
    copies: list[tuple[str, str]] = []
    stage: str | None = None
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "FROM":
            stage = words[-1] if len(words) >= 4 and words[-2].upper() == "AS" else None
        elif words[0] == "COPY" and stage == "build":
            *sources, dest = words[1:]
            assert not any(s.startswith("--") for s in sources), line
            for source in sources:
                into_dir = dest.endswith("/") or dest == "." or len(sources) > 1
                copies.append((source, f"{dest}/{Path(source).name}" if into_dir else dest))
    return copies


def _packaged_data_files() -> set[str]:
    """Every YAML under device_profiles/ and sites/, as a path inside the wheel."""
    files = {*REPO.glob("device_profiles/**/*.yaml"), *REPO.glob("sites/**/*.yaml")}
    return {f.relative_to(REPO).as_posix() for f in files}


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv's python, made with the base interpreter (no system site-packages)."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(root / "venv")], root, 120)
    return root / "venv" / "bin" / "python"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, venv_python: Path) -> Path:
    """The wheel as the Dockerfile's build stage makes it, from a copy of what it copies."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    copies = _build_stage_copies()
    assert copies, f"no COPY in the build stage of {DOCKERFILE}"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for source, dest in copies:
        origin, target = REPO / source, src / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=ignore)
        else:
            shutil.copy2(origin, target)
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in DOCKERFILE.read_text()
    out = work / "wheels"
    pip = [str(venv_python), "-m", "pip"]
    _run([*pip, "wheel", "-q", "--no-deps", "--wheel-dir", str(out), str(src)], work, PIP_TIMEOUT)
    (built,) = out.glob("campus_facility_monitor-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(venv_python: Path, wheel: Path) -> Path:
    """The fresh venv's site-packages, with the wheel and its dependencies installed."""
    # --no-compile: the demo's imports write the only .pyc files of the project's packages.
    argv = [str(venv_python), "-m", "pip", "install", "-q", "--no-compile", str(wheel)]
    _run(argv, wheel.parent, PIP_TIMEOUT)
    out = _run(
        [str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        wheel.parent,
        30,
    )
    site_packages = Path(out.strip()).resolve()
    assert site_packages != Path(sysconfig.get_paths()["purelib"]).resolve()
    return site_packages


def test_wheel_carries_every_profile_and_site(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = _packaged_data_files()
    assert "device_profiles/classes/chilled_fridge.yaml" in data
    assert "sites/demo/site.yaml" in data
    assert data <= names, f"missing from {wheel.name}: {sorted(data - names)}"
    assert {
        "device_profiles/__init__.py",
        "sites/__init__.py",
        "server/web/templates/app.html",
        "server/web/static/js/app.js",
        "server/web/static/i18n/zh-CN.json",
        "server/web/static/i18n/en.json",
    } <= names
    assert not any(n.startswith("tests/") for n in names)


def test_installed_package_and_its_defaults_live_in_the_venv(
    venv_python: Path, installed: Path, tmp_path: Path
) -> None:
    # -B: this probe writes no .pyc, so the demo test below sees only what the demo compiled.
    probe = (
        "import json, core.profiles, core.site, facility.cli, gateway.settings, server.settings\n"
        "defaults = [core.profiles.DEFAULT_PROFILES_DIR / 'classes', core.site.DEFAULT_SITE_FILE]\n"
        "for settings in (gateway.settings.GatewaySettings, server.settings.ServerSettings):\n"
        "    fields = settings.model_fields\n"
        "    defaults += [fields['site_file'].default, fields['profiles_dir'].default]\n"
        "modules = [core.profiles, facility.cli, gateway.settings, server.settings]\n"
        "print(json.dumps({'modules': [m.__file__ for m in modules], "
        "'defaults': [str(d) for d in defaults]}))\n"
    )
    found: dict[str, list[str]] = json.loads(
        _run([str(venv_python), "-B", "-c", probe], tmp_path, 60)
    )
    for path in found["modules"] + found["defaults"]:
        resolved = Path(path).resolve()
        assert resolved.is_relative_to(installed), f"{path} is not in {installed}"
        assert not resolved.is_relative_to(REPO), f"{path} is in the checkout {REPO}"
        assert resolved.exists(), path


@pytest.fixture
def installed_demo(installed: Path, venv_python: Path, tmp_path: Path) -> Iterator[str]:
    """`facility demo` started by the venv's own console script, in an empty folder."""
    facility = venv_python.parent / "facility"
    assert facility.read_text().splitlines()[0] == f"#!{venv_python}"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    port, mqtt_port = free_port(), free_port()
    log_path = tmp_path / "demo.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                str(facility),
                "demo",
                "--no-browser",
                "--port",
                str(port),
                "--mqtt-port",
                str(mqtt_port),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            cwd=cwd,
            env=_clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(
                f"installed demo exited {proc.returncode}:\n{log_path.read_text()}"
            )
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 60, "the installed demo's /healthz")
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def test_installed_demo_runs_from_another_folder(installed_demo: str, installed: Path) -> None:
    url = installed_demo
    assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
    r = httpx.post(
        f"{url}/api/auth/token", data={"username": "admin", "password": "demo"}, timeout=10
    )
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def devices() -> list[dict[str, Any]]:
        answer = httpx.get(f"{url}/api/devices", headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        listed: list[dict[str, Any]] = answer.json()
        return listed

    assert FRIDGE in {d["id"] for d in devices()}
    # The web UI's pages and files come from the package too (templates, scripts, catalogues).
    page = httpx.get(f"{url}/app", headers={"Accept-Language": "en"}, timeout=10)
    assert page.status_code == 200 and "Staff login" in page.text, page.text[:500]
    for path in ("/static/js/app.js", "/static/i18n/zh-CN.json", "/static/css/app.css"):
        assert httpx.get(f"{url}{path}", timeout=10).status_code == 200, path
    # The demo process compiled the venv's copies as it imported them (installed without
    # .pyc files), so it ran the installed package, not the checkout.
    for module in ("core/site", "core/profiles", "server/app", "gateway/app", "facility/demo"):
        folder, name = module.split("/")
        compiled = list((installed / folder / "__pycache__").glob(f"{name}.*.pyc"))
        assert compiled, f"the demo did not import {module}.py from {installed}"
