"""End to end: ``streamlit run scripts/dashboard.py`` in a subprocess, driven by headless Chromium (Selenium).

Screenshots go to ``$SIMRL_TEST_ARTIFACTS`` (else the test's tmp_path): ``dashboard_runs.png``,
``dashboard_threebody.png``. Skipped only when Chromium or chromedriver is not installed
(Debian: ``apt-get install chromium chromium-driver``; CI installs them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "dashboard.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="the browser test needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
)


def subprocess_env() -> dict[str, str]:
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath, "MPLBACKEND": "Agg"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} not healthy after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def _driver(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1500,2000"):  # fmt: skip
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _wait_idle(driver, timeout: float = 60.0) -> None:
    """Until Streamlit's "Running..." status widget is gone (the script run has finished)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from selenium.common.exceptions import StaleElementReferenceException

    time.sleep(0.5)
    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: not any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'))
    )


def test_dashboard_in_a_real_browser(dashboard_runs, tmp_path, artifacts_dir):
    pytest.importorskip("selenium", reason="the browser test needs selenium (pip install -e '.[dev]')")
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    port = _free_port()
    log = tmp_path / "streamlit.log"
    cmd = [sys.executable, "-m", "streamlit", "run", str(SCRIPT), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--", "--runs", str(dashboard_runs.root)]  # fmt: skip
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, cwd=tmp_path, env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT)
    driver = None
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", server, log)
        driver = _driver(tmp_path / "chrome-profile")
        # Streamlit re-renders the page while a condition is checked: a stale element is retried, not a failure.
        wait = WebDriverWait(driver, 90, ignored_exceptions=(StaleElementReferenceException,))
        driver.get(f"http://127.0.0.1:{port}/")

        # Runs overview
        wait.until(ec.presence_of_element_located((By.XPATH, "//h2[contains(., 'Runs overview')]")))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="stMetricValue"]')))
        _wait_idle(driver)
        metrics = {
            m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text.strip():
            m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text.strip()
            for m in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')
        }  # fmt: skip
        assert metrics.get("runs") == "3" and metrics.get("incomplete") == "1", metrics
        assert driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')
        driver.save_screenshot(str(artifacts_dir / "dashboard_runs.png"))
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')

        # click to the ThreeBody page in the sidebar
        sidebar = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"]')
        sidebar.find_element(By.XPATH, ".//label[.//*[normalize-space(text())='ThreeBody']]").click()
        wait.until(ec.presence_of_element_located((By.XPATH, "//h2[contains(., 'ThreeBody: energy error')]")))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= 2)
        _wait_idle(driver)
        time.sleep(1.0)  # let Plotly finish drawing
        driver.save_screenshot(str(artifacts_dir / "dashboard_threebody.png"))
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Orbits of one held-out episode" in body and "final |dE/E0|" in body
        assert "page=ThreeBody" in driver.current_url
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]'), body[-2000:]
        # the front's hover names are in the figure
        svg = " ".join(e.get_attribute("textContent") or "" for e in driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))
        assert "ppo" in svg and "force evaluations" in svg
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
