"""The package as a clinic installs it: a wheel built from the checkout serves its pages from anywhere.

The wheel is installed with --no-deps into a fresh virtualenv whose only other packages are the shared
test environment's (reached through a .pth file), so nothing is downloaded and the checkout itself is
never on the server's import path.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import site
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.browser.conftest import TIMEOUT_MS, chromium  # noqa: F401  (the fixture, used by name)

ROOT = Path(__file__).resolve().parent.parent
# What a source distribution holds; build/ and *.egg-info left in the checkout could leak stale files.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "telehealth", "web")


def _run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _copy_sources(target: Path) -> Path:
    target.mkdir()
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, target / name)
    return target


def _fresh_venv(path: Path) -> Path:
    """A virtualenv that sees the shared environment's packages but none of the checkout."""
    _run(sys.executable, "-m", "venv", "--without-pip", path)
    purelib = Path(
        _run(path / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    )
    (purelib / "_shared_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return path / "bin" / "python"


def _clean_env(cwd: Path) -> dict[str, str]:
    """No TELEHEALTH_* or PYTHONPATH from the test run: the installed package must find everything itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEHEALTH_") and k != "PYTHONPATH"}
    env["HOME"] = str(cwd)
    return env


@dataclass(frozen=True)
class Installed:
    """A wheel installed into its own virtualenv."""

    python: Path
    wheel: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel from a copy of the sources and install it (no dependencies, no network)."""
    base = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(base / "src")
    dist = base / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", dist, src)
    (wheel,) = dist.glob("telehealth-*.whl")
    python = _fresh_venv(base / "venv")
    # --ignore-installed: the shared environment has an editable telehealth that must stay untouched.
    _run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheel)
    yield Installed(python, wheel)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Running:
    """A `telehealth serve --demo` started from the installed wheel."""

    base: str
    join_url: str
    clinician_password: str
    workdir: Path


@pytest.fixture
async def served(installed: Installed, tmp_path: Path) -> AsyncIterator[Running]:
    """Upgrade the schema and serve the demo clinic from a directory outside the checkout."""
    workdir = tmp_path / "clinic"
    workdir.mkdir()
    env = _clean_env(workdir)
    telehealth = installed.python.parent / "telehealth"
    await asyncio.to_thread(_run, telehealth, "db", "upgrade", cwd=workdir, env=env)
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        telehealth, "serve", "--port", str(port), "--demo",
        cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("Patient join link" in line for line in lines):
                line = (await proc.stdout.readline()).decode()
                assert line, "server exited:\n" + "".join(lines)
                lines.append(line)
        text = "".join(lines)
        password = re.search(r"clinician\s+password: (\S+)", text)
        join = re.search(r"Patient join link.*?: (\S+)", text)
        assert password and join, text
        drain = asyncio.create_task(proc.stdout.read())  # keep the pipe from filling while the test runs
        yield Running(f"http://127.0.0.1:{port}", join.group(1), password.group(1), workdir)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        if "drain" in locals():
            await drain


def test_the_wheel_carries_the_web_client_migrations_and_protocols(installed: Installed) -> None:
    import zipfile

    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for page in (ROOT / "web").glob("*.html"):
        assert f"telehealth/web/{page.name}" in names
    for asset in (ROOT / "web" / "static").rglob("*"):
        if asset.is_file():
            assert f"telehealth/web/static/{asset.relative_to(ROOT / 'web' / 'static')}" in names
    assert "telehealth/capture/protocols/default.json" in names
    assert any(n.startswith("telehealth/records/migrations/versions/0001_") for n in names)


def test_the_installed_package_is_not_the_checkout(installed: Installed, tmp_path: Path) -> None:
    where = _run(
        installed.python, "-c", "import telehealth.settings as s; print(s.__file__); print(s.packaged_web_dir())",
        cwd=tmp_path, env=_clean_env(tmp_path),
    ).split()  # fmt: skip
    assert str(installed.python.parent.parent) in where[0]
    assert where[1].startswith(str(installed.python.parent.parent)) and where[1].endswith("telehealth/web")


async def test_an_installed_wheel_serves_the_login_and_patient_pages(
    served: Running,
    chromium: Browser,  # noqa: F811
) -> None:
    context = await chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{served.base}/login")
    await page.fill("#username", "clinician")
    await page.fill("#password", served.clinician_password)
    await page.click("#login-submit")
    await page.wait_for_url(f"{served.base}/")
    await page.wait_for_function("() => document.getElementById('whoami').textContent.includes('Ada')")

    patient_context = await chromium.new_context()
    patient_context.set_default_timeout(TIMEOUT_MS)
    patient = await patient_context.new_page()
    patient.on("pageerror", lambda exc: errors.append(str(exc)))
    await patient.goto(served.join_url.replace("http://localhost", "http://127.0.0.1"))
    # The summary is filled in by join.js from the API: the page, its scripts and the API all answered.
    await patient.wait_for_function(
        "() => document.getElementById('visit-summary').textContent.includes('with Dr. Ada Clinician')"
    )
    assert errors == []
    # Run from an installed package, the data lives under the working directory, not in site-packages.
    assert (served.workdir / "var" / "telehealth.sqlite3").is_file()
    await context.close()
    await patient_context.close()


def test_an_editable_install_serves_web_from_the_source_tree(tmp_path: Path) -> None:
    src = _copy_sources(tmp_path / "src")
    python = _fresh_venv(tmp_path / "venv")
    _run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
         "--no-build-isolation", "-e", src, cwd=tmp_path)  # fmt: skip
    where = _run(
        python, "-c", "import telehealth.settings as s; print(s.packaged_web_dir())",
        cwd=tmp_path, env=_clean_env(tmp_path),
    ).strip()  # fmt: skip
    assert where == str(src / "web")
