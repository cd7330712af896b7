"""The staff page in a real headless Chromium against ``chainmatch serve``: key from the printed URL → region →
gap map → click a gap → candidates with reasons → province filter → shortlist → lead status → Excel export."""

from __future__ import annotations

import base64
import io
import shutil
import time
from pathlib import Path

import pytest
from api_support import Served, seed_demo_store
from openpyxl import load_workbook

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="headless Chromium / chromedriver not installed",
    ),
]


@pytest.fixture()
def browser(tmp_path: Path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1500,1900",
        "--lang=zh-CN",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture()
def served(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    s = Served(seed_demo_store(tmp_path / "srv", tmp_path_factory))
    yield s
    s.stop()


def _wait(driver, condition, timeout: float = 20):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        condition
    )


def test_staff_walks_from_region_to_exported_shortlist(browser, served: Served, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get(f"{served.url}/#key={served.key}")

    # the key is taken from the fragment, stored, and removed from the address bar
    _wait(d, ec.visibility_of_element_located((By.ID, "workspace")))
    assert "#key" not in d.current_url
    assert d.execute_script("return localStorage.getItem('chainmatch.apiKey')") == served.key
    _wait(d, lambda drv: drv.find_element(By.ID, "tenant-label").text.startswith("租户：demo"))

    # pick a region → its chains and the gap map
    Select(d.find_element(By.ID, "region-select")).select_by_value("manas")
    _wait(
        d,
        lambda drv: (
            "玛纳斯县" in drv.find_element(By.CSS_SELECTOR, "#gapmap svg").get_attribute("aria-label")
        ),
    )
    tabs = [b.text for b in d.find_elements(By.CSS_SELECTOR, "#chain-tabs button")]
    assert "铝产业链" in tabs
    renders = d.find_element(By.ID, "gapmap").get_attribute("data-renders")
    d.find_element(By.CSS_SELECTOR, "#chain-tabs button[data-chain='aluminium']").click()
    _wait(  # the map drawn for this click (the region's first map may already show the same chain)
        d,
        lambda drv: (
            drv.find_element(By.ID, "gapmap").get_attribute("data-renders") != renders
            and drv.find_element(By.CSS_SELECTOR, "#gapmap svg").get_attribute("data-chain") == "aluminium"
        ),
    )
    svg = d.find_element(By.CSS_SELECTOR, "#gapmap svg")
    assert svg.find_elements(By.CSS_SELECTOR, "g.node[data-state='present']")
    assert "★链主" in svg.get_attribute("innerHTML")
    gap_nodes = svg.find_elements(By.CSS_SELECTOR, "g.node.gap")
    assert len(gap_nodes) == len(d.find_elements(By.CSS_SELECTOR, "#gap-table tr.gap-row")) > 0

    # click the 铝棒 gap in the map → ranked candidates with reasons and evidence
    d.find_element(By.CSS_SELECTOR, "#gapmap g.node.gap[data-link='aluminium_rod']").click()
    _wait(d, ec.visibility_of_element_located((By.ID, "candidate-table")))
    assert "铝棒" in d.find_element(By.ID, "candidates-title").text
    rows = d.find_elements(By.CSS_SELECTOR, "#candidate-table tr.candidate")
    assert len(rows) >= 5
    assert [r.find_element(By.CSS_SELECTOR, "td").text for r in rows[:3]] == ["1", "2", "3"]
    assert all(r.find_elements(By.CSS_SELECTOR, "ul.reasons li") for r in rows)
    assert {r.find_element(By.CSS_SELECTOR, ".strength").text for r in rows} <= {"强", "中", "弱"}

    # filter by province → only that province's firms
    places = [r.find_element(By.CSS_SELECTOR, "td.place").text for r in rows]
    province = next(p.split()[0] for p in places if p and not p.startswith("新疆"))
    d.find_element(By.ID, "f-provinces").send_keys(province)
    d.find_element(By.ID, "apply-filters").click()
    _wait(
        d,
        lambda drv: all(
            r.find_element(By.CSS_SELECTOR, "td.place").text.startswith(province)
            for r in drv.find_elements(By.CSS_SELECTOR, "#candidate-table tr.candidate")
        ),
    )
    filtered = d.find_elements(By.CSS_SELECTOR, "#candidate-table tr.candidate")
    assert filtered and len(filtered) <= len(rows)

    # add the first filtered candidate to the shortlist → a lead (线索)
    first = filtered[0]
    name = first.find_element(By.CSS_SELECTOR, "td.name").text
    first.find_element(By.CSS_SELECTOR, "button.add-lead").click()
    _wait(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#lead-table tr.lead"))
    _wait(
        d,
        lambda drv: drv.find_element(By.CSS_SELECTOR, "#candidate-table tr.candidate .status").text == "线索",
    )
    lead = d.find_element(By.CSS_SELECTOR, "#lead-table tr.lead")
    assert lead.find_element(By.CSS_SELECTOR, "td.name").text == name
    assert lead.find_element(By.CSS_SELECTOR, ".lead-status").text == "线索"

    # move it on: 线索 → 已接触, with a note
    Select(lead.find_element(By.CSS_SELECTOR, "select.next-status")).select_by_value("已接触")
    lead.find_element(By.CSS_SELECTOR, "input.note").send_keys("已电话联系")
    lead.find_element(By.CSS_SELECTOR, "button.save-lead").click()
    _wait(d, lambda drv: drv.find_element(By.CSS_SELECTOR, "#lead-table .lead-status").text == "已接触")

    # 已放弃 without a reason is refused with the message from the API
    lead = d.find_element(By.CSS_SELECTOR, "#lead-table tr.lead")
    options = [
        o.get_attribute("value") for o in lead.find_elements(By.CSS_SELECTOR, "select.next-status option")
    ]
    assert options == ["", "已考察", "已放弃"]
    Select(lead.find_element(By.CSS_SELECTOR, "select.next-status")).select_by_value("已放弃")
    lead.find_element(By.CSS_SELECTOR, "button.save-lead").click()
    _wait(d, lambda drv: "原因" in drv.find_element(By.ID, "toast").text)
    assert "原因" in d.find_element(By.CSS_SELECTOR, "#lead-table input.reason").get_attribute("placeholder")
    assert d.find_element(By.CSS_SELECTOR, "#lead-table .lead-status").text == "已接触"

    d.execute_script("window.scrollTo(0, 0)")
    shot = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    (tmp_path / "chainmatch_page.png").write_bytes(base64.b64decode(shot["data"]))
    shutil.copy(tmp_path / "chainmatch_page.png", "/tmp/chainmatch_page.png")

    # export the shortlist as Excel: the downloaded file lists the lead with its status
    d.find_element(By.ID, "export-xlsx").click()
    deadline = time.time() + 20
    files: list[Path] = []
    while time.time() < deadline:
        files = [p for p in d.downloads.iterdir() if p.suffix == ".xlsx"]
        if files:
            break
        time.sleep(0.2)
    assert files, "no xlsx downloaded"
    assert files[0].name == "玛纳斯县_招商清单.xlsx"
    ws = load_workbook(io.BytesIO(files[0].read_bytes())).active
    assert ws.cell(row=1, column=1).value == "排名"
    assert (ws.cell(row=2, column=2).value, ws.cell(row=2, column=12).value) == (name, "已接触")
    assert ws.cell(row=2, column=13).value == "已电话联系"


def test_api_docs_render_offline_in_the_browser(browser, served: Served):
    """/docs draws every route from the packaged Swagger UI; the browser may not reach any other host."""
    from selenium.webdriver.common.by import By

    d = browser
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*://*.jsdelivr.net/*", "*://unpkg.com/*", "*cdn*"]})
    d.get(f"{served.url}/docs")
    _wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, ".opblock")) > 20)
    paths = {e.text for e in d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/v1/recommendations" in paths and "/v1/enterprises" in paths
    hosts = d.execute_script("return performance.getEntriesByType('resource').map(e => new URL(e.name).host)")
    assert set(hosts) <= {f"127.0.0.1:{served.port}"}, hosts
