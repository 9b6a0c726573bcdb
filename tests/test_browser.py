"""The widgets as a learner meets them: lessons 07 and 03 run in a real JupyterLab, driven by Chromium.

A JupyterLab server is started on a free port of 127.0.0.1 with a random token, in a temporary copy
of ``notebooks/`` (so running the lessons leaves the repository untouched); Debian's Chromium,
headless, is driven by playwright. The server is stopped by its PID in the fixture's teardown,
whatever the tests did. Screenshots land in ``test-artifacts/browser/`` (git-ignored).

Run just these:  ``python -m pytest -m browser tests/test_browser.py``
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LESSON_07 = "07_sampling.ipynb"
LESSON_03 = "03_attention.ipynb"
RUN_ALL_TIMEOUT_MS = 240_000  # lesson 07 took 55-135 s on two busy CPU cores (quick profile, model cached)
WIDGET_TIMEOUT_MS = 30_000

if not CHROMIUM.exists():
    pytest.skip(
        f"Chromium not found at {CHROMIUM}; install Debian's package (apt-get install chromium) "
        "to run the browser tests",
        allow_module_level=True,
    )


def needs_lesson(name: str) -> pytest.MarkDecorator:
    """Skip (not fail) while a lesson notebook has not been written yet; decided at collection, so
    that no server is started and no model trained for nothing."""
    path = NOTEBOOKS / name
    return pytest.mark.skipif(not path.exists(), reason=f"lesson 03/07 not present: {path} does not exist")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def quiet_lab_settings(settings_dir: Path) -> None:
    """No news pop-up or update check (there is no network); the notebook's kernel started without
    a "Select Kernel" dialog; and every cell kept in the page: JupyterLab's default windowing may
    detach cells scrolled out of view, widgets included."""
    overrides = {
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
    }
    for plugin, values in overrides.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def wait_until_answering(url: str, server: subprocess.Popen, log: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab exited with code {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer {url} within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen, base_url: str, token: str) -> None:
    """Shut the kernels down through the API (so none is orphaned), then end the server by PID."""
    try:
        request = urllib.request.Request(f"{base_url}/api/kernels?token={token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            kernels = json.load(response)
        for kernel in kernels:
            url = f"{base_url}/api/kernels/{kernel['id']}?token={token}"
            urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10).close()
    except OSError:
        pass  # the server is already gone or unresponsive: the signals below still apply
    if server.poll() is None:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def demo_model() -> None:
    """Lessons 03 and 07 load ``demo_run()``, which trains on first use (a minute or two) and then
    comes from the cache. Train it here, outside the browser's timeouts; nbval reuses it later."""
    from slm_course.lessons.demo import demo_run

    demo_run("quick")  # the profile the fixture below gives the kernels


@pytest.fixture(scope="module")
def lab(tmp_path_factory, demo_model) -> Iterator[tuple[str, str]]:
    """(base URL, token) of a JupyterLab serving a temporary copy of the notebooks."""
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    quiet_lab_settings(home / "settings")
    port, token = free_port(), secrets.token_hex(24)
    env = dict(
        os.environ,
        SLM_PROFILE="quick",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
    )
    log = home / "jupyter.log"
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0", "--allow-root",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    with open(log, "wb") as log_file:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{base_url}/api/status?token={token}", server, log)
        yield base_url, token
    finally:
        stop_server(server, base_url, token)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh profile in a temporary directory."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(WIDGET_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def open_and_run_all(context: BrowserContext, lab: tuple[str, str], notebook: str) -> Page:
    """Open a notebook in its own workspace, wait for its kernel, and Run > Run All Cells."""
    base_url, token = lab
    page = context.new_page()
    workspace = notebook.split("_")[0]
    page.goto(f"{base_url}/lab/workspaces/lesson{workspace}/tree/{notebook}?token={token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    wait_for_idle_kernel(page, timeout_ms=60_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    return page


def wait_for_idle_kernel(page: Page, timeout_ms: float) -> None:
    """Wait for the status bar's "<kernel> | Idle": a kernel connected and not running anything.
    (The toolbar's indicator already reads idle before any kernel has connected.)"""
    status = page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"^(?!No Kernel).*\| Idle$"))
    status.first.wait_for(timeout=timeout_ms)


def wait_for_lesson(page: Page, widget_css: str, name: str) -> Locator:
    """The widget, once the run has reached it and every queued cell has finished.

    Saved lessons carry their outputs and execution counts (nbval compares them), so neither
    says the run is over; the widget does: it only exists once this kernel has run its cell.
    """
    widget = page.locator(widget_css).first
    try:
        widget.wait_for(timeout=RUN_ALL_TIMEOUT_MS)
    except PlaywrightTimeoutError:
        stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        last = f"last stderr output:\n{stderr.last.inner_text()[-3000:]}" if stderr.count() else "no stderr output"
        pytest.fail(f"{name} never showed {widget_css} after Run All Cells; {last}")
    page.wait_for_function(  # no cell is still queued or running: "[*]"
        "() => ![...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".some(p => p.textContent.includes('*'))",
        timeout=RUN_ALL_TIMEOUT_MS,
    )
    wait_for_idle_kernel(page, timeout_ms=RUN_ALL_TIMEOUT_MS)
    widget.scroll_into_view_if_needed()
    return widget


def wait_for_change(read: Callable[[], object], before: object, what: str, timeout_s: float = 30.0) -> object:
    """Poll ``read()`` until it differs from ``before`` (the kernel answers asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = read()
        if now != before:
            return now
        time.sleep(0.2)
    pytest.fail(f"{what} did not change within {timeout_s:.0f} s")


def control(widget: Locator, css: str, description: str) -> Locator:
    """The ipywidgets control of kind ``css`` whose description label reads ``description``."""
    label = widget.page.locator(".widget-label", has_text=re.compile(f"^{re.escape(description)}$"))
    return widget.locator(css).filter(has=label).first


@needs_lesson(LESSON_07)
def test_sampling_playground_in_lesson_07(browser, lab):
    page = open_and_run_all(browser, lab, LESSON_07)
    try:
        playground = wait_for_lesson(page, ".slm-sampling-playground", "07_sampling")
        output = playground.locator(".slm-sample-output")
        chart = playground.locator(".slm-next-token-chart")
        seed = control(playground, ".widget-text", "seed").locator("input")
        generate = playground.locator("button", has_text="Generate")
        page.screenshot(path=ARTIFACTS / "07_sampling-loaded.png")

        # Move the temperature slider with the keyboard, as a learner can: 1.0 -> 1.5 in 10 steps.
        temperature = control(playground, ".widget-slider", "temperature")
        readout = temperature.locator(".widget-readout")
        chart_before = chart.get_attribute("src")
        temperature.locator(".noUi-handle").focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        assert readout.inner_text().strip() == "1.50"
        wait_for_change(lambda: chart.get_attribute("src"), chart_before, "the next-token chart")

        def sample(seed_value: int, previous: str) -> str:
            seed.fill(str(seed_value))
            seed.press("Tab")  # an IntText sends its value when it loses focus
            generate.click()
            text = wait_for_change(output.inner_text, previous, f"the sample for seed {seed_value}")
            if "generating" in text:
                text = wait_for_change(output.inner_text, text, f"the sample for seed {seed_value}")
            return text.strip()

        first = sample(1, output.inner_text())
        playground.screenshot(path=ARTIFACTS / "07_sampling-seed1.png")
        second = sample(2, first)
        playground.screenshot(path=ARTIFACTS / "07_sampling-seed2.png")
        assert first and second and first != second
        assert "new token" in first and "new token" in second
    finally:
        page.screenshot(path=ARTIFACTS / "07_sampling-final.png", full_page=True)
        page.close()


@needs_lesson(LESSON_03)
def test_attention_explorer_in_lesson_03(browser, lab):
    page = open_and_run_all(browser, lab, LESSON_03)
    try:
        explorer = wait_for_lesson(page, ".slm-attention-explorer", "03_attention")
        heatmap = explorer.locator(".slm-attention-heatmap")
        heads = control(explorer, ".widget-toggle-buttons", "head").locator("button")
        assert heads.count() >= 2, "the attention explorer should offer several heads"
        heatmap.wait_for(state="visible")
        src_before, pixels_before = heatmap.get_attribute("src"), heatmap.screenshot()
        (ARTIFACTS / "03_attention-head0.png").write_bytes(pixels_before)

        heads.nth(1).click()
        wait_for_change(lambda: heatmap.get_attribute("src"), src_before, "the heatmap's src")
        pixels_after = wait_for_change(heatmap.screenshot, pixels_before, "the heatmap's pixels")
        (ARTIFACTS / "03_attention-head1.png").write_bytes(pixels_after)
    finally:
        page.screenshot(path=ARTIFACTS / "03_attention-final.png", full_page=True)
        page.close()
