"""`foundation dagster` serves the UI: headless Chromium finds the Jaffle Shop assets in the rendered asset graph.

Runs wherever Chromium, chromedriver and selenium are installed (Debian: `apt-get install chromium
chromium-driver`; selenium is in the `dev` extra) and skips with the reason otherwise. Select or deselect it
with `-m ui` / `-m "not ui"`. It starts the real command on a free port of 127.0.0.1 with a fresh DAGSTER_HOME,
waits for the webserver and the code location, asks the GraphQL API for the asset keys, then opens the
`jaffle_shop` asset group page and reads the graph's nodes from the DOM. About 1 minute, most of it the start
of `dagster dev`.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Optional, Set, Tuple

import pytest

pytestmark = pytest.mark.ui

TABLES = {"customers", "orders", "items", "products", "stores", "supplies"}
API_TABLES = TABLES - {"items"}  # items is read from orders (`data_from`): no API asset of its own
START_TIMEOUT = 120.0  # seconds for `dagster dev` to serve /server_info and load the code location
RENDER_TIMEOUT = 60.0  # seconds for the asset graph to show every node
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1920,1400",  # large enough for the whole graph to be laid out
]
# Each graph node: a title element with a `data-tooltip`, next to an icon whose aria-label says the node type
# ("asset" for the dlt tables, "source_asset" for the external API assets).
GRAPH_NODES_JS = """
return Array.from(document.querySelectorAll('[data-tooltip]')).map(function (title) {
  var icon = title.parentElement ? title.parentElement.querySelector('[role=img]') : null;
  return [icon ? icon.getAttribute('aria-label') : null, title.getAttribute('data-tooltip')];
});
"""


def _browser() -> Tuple[str, str]:
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver)) if not p)
        pytest.skip(f"{missing} not installed: `apt-get install chromium chromium-driver` to run the UI test")
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, data: Optional[bytes] = None) -> bytes:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def _stop(process: subprocess.Popen) -> None:
    """SIGINT the whole process group (dagster dev, webserver, daemon, code servers), then SIGKILL what is left.

    A clean shutdown takes ~15 s, mostly waiting on the code server; DAGSTER_HOME is thrown away anyway."""
    for sig, grace in ((signal.SIGINT, 5.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                process.wait(timeout=0.2)  # reap the leader; the group lives on while any member does
                os.killpg(process.pid, 0)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                return
            time.sleep(0.2)


def _log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def _wait_for_assets(process: subprocess.Popen, base: str, log: Path) -> Set[Tuple[str, ...]]:
    """Poll /server_info, then GraphQL until the code location's asset nodes are there; their key paths."""
    deadline = time.monotonic() + START_TIMEOUT
    query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
    problem = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`foundation dagster` exited with {process.returncode}:\n{_log_tail(log)}")
        try:
            json.loads(_get(f"{base}/server_info"))
            nodes = json.loads(_get(f"{base}/graphql", query))["data"]["assetNodes"]
            if nodes:
                return {tuple(n["assetKey"]["path"]) for n in nodes}
            problem = "the webserver answers, the code location has no assets yet"
        except (urllib.error.URLError, ConnectionError, OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        time.sleep(1)
    pytest.fail(f"no assets from {base} within {START_TIMEOUT:.0f} s ({problem}):\n{_log_tail(log)}")


def _graph_nodes(driver) -> Dict[str, Set[str]]:
    nodes: Dict[str, Set[str]] = {}
    for kind, name in driver.execute_script(GRAPH_NODES_JS) or []:
        nodes.setdefault(kind, set()).add(name)
    return nodes


def _check_links(driver) -> Set[str]:
    """Asset-check links of the table nodes (`/assets/jaffle_shop/<table>?view=checks`), shown once live data loads."""
    return {a.get_attribute("href").split("/assets/", 1)[-1]
            for a in driver.find_elements("css selector", "a[href*='/assets/jaffle_shop/']")}


def _graph_complete(driver) -> bool:
    nodes = _graph_nodes(driver)
    return (TABLES <= nodes.get("asset", set()) and API_TABLES <= nodes.get("source_asset", set())
            and {f"jaffle_shop/{t}?view=checks" for t in TABLES} <= _check_links(driver))


def _open_chromium(chromium: str, chromedriver: str, profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(RENDER_TIMEOUT)
    return driver


def test_foundation_dagster_shows_jaffle_shop_asset_graph(tmp_path, jaffle_root):
    chromium, chromedriver = _browser()
    pytest.importorskip("selenium", reason="selenium not installed: `pip install -e '.[dev]'`")
    from selenium.webdriver.support.ui import WebDriverWait

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "dagster.log"
    # The daemon's automation sensor runs too: should a cron tick pass, loads go to tmp_path, not the repo. The
    # working directory is tmp_path too: the repository's foundation.toml would add its dbt project to the graph.
    env = {**os.environ, "FOUNDATION_DUCKDB_FILE": str(tmp_path / "ui.duckdb"), "RUNTIME__LOG_LEVEL": "WARNING",
           "FOUNDATION_SOURCES_ROOT": str(jaffle_root)}
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "data_foundation.cli", "dagster", "--port", str(port), "--home",
             str(tmp_path / "dagster_home")],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    driver = None
    try:
        keys = _wait_for_assets(process, base, log)
        served = time.monotonic()
        assert {("jaffle_shop", t) for t in TABLES} <= keys, sorted(keys)
        assert {("jaffle_shop", "src", t) for t in API_TABLES} <= keys, sorted(keys)

        driver = _open_chromium(chromium, chromedriver, tmp_path / "chromium-profile")
        driver.get(f"{base}/asset-groups/jaffle_shop")
        try:
            WebDriverWait(driver, RENDER_TIMEOUT, poll_frequency=0.5).until(_graph_complete)
        except Exception:  # TimeoutException; keep what the browser saw for the failure message
            driver.save_screenshot(str(tmp_path / "asset-graph.png"))
            (tmp_path / "asset-graph.html").write_text(driver.page_source)
            pytest.fail(f"asset graph at {driver.current_url} shows {_graph_nodes(driver)} and check links "
                        f"{sorted(_check_links(driver))} after {RENDER_TIMEOUT:.0f} s; screenshot and DOM in "
                        f"{tmp_path}:\n{_log_tail(log)}")
        print(f"UI test: webserver and code location up in {served - started:.1f} s, "
              f"graph rendered {time.monotonic() - served:.1f} s later")
    finally:
        if driver is not None:
            driver.quit()
        _stop(process)
