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
    # every firm shows where its facts come from and how current they are; examples carry a visible badge
    for r in rows:
        prov = r.find_element(By.CSS_SELECTOR, "td.name .provenance").text
        assert "来源：" in prov and "截至 " in prov, prov
        assert bool(r.find_elements(By.CSS_SELECTOR, ".badge.fictional")) == ("虚构示例" in prov), prov

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
    name = first.find_element(By.CSS_SELECTOR, "td.name").text.splitlines()[0]
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
    d.execute_cdp_cmd(
        "Network.setBlockedURLs", {"urls": ["*://*.jsdelivr.net/*", "*://unpkg.com/*", "*cdn*"]}
    )
    d.get(f"{served.url}/docs")
    _wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, ".opblock")) > 20)
    paths = {e.text for e in d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/v1/recommendations" in paths and "/v1/enterprises" in paths
    hosts = d.execute_script("return performance.getEntriesByType('resource').map(e => new URL(e.name).host)")
    assert set(hosts) <= {f"127.0.0.1:{served.port}"}, hosts


# --- issue #13: fonts, links, layout ----------------------------------------------------------------------

FONT_PATH = "/static/fonts/NotoSansSC-ChainMatch.woff2"
WORKSPACE_SHOWN = "return !document.getElementById('workspace').hidden"


def _api_get(served: Served, path: str):
    import json
    import urllib.request

    req = urllib.request.Request(f"{served.url}{path}", headers={"X-API-Key": served.key})
    with urllib.request.urlopen(req, timeout=20) as res:
        return json.loads(res.read().decode("utf-8"))


def _hash_params(driver) -> dict[str, str]:
    from urllib.parse import unquote

    frag = driver.execute_script("return location.hash").lstrip("#")
    return {k: unquote(v) for k, _, v in (p.partition("=") for p in frag.split("&") if p)}


def _gap_loaded(link: str):
    from selenium.webdriver.common.by import By

    def check(drv):
        rows = drv.find_elements(By.CSS_SELECTOR, f"#gap-table tr.gap-row.selected[data-link='{link}']")
        table = drv.find_element(By.ID, "candidate-table")
        return (
            bool(rows) and table.is_displayed() and drv.find_elements(By.CSS_SELECTOR, "#candidate-table tr")
        )

    return check


def test_page_renders_chinese_with_its_own_web_font(browser, served: Served):
    """No system CJK font is needed: the page ships a CJK subset; 中 and 文 draw as two different glyphs, not
    the same 'tofu' box, in the page's own font stack."""
    import urllib.request

    with urllib.request.urlopen(f"{served.url}{FONT_PATH}", timeout=20) as res:
        assert res.status == 200
        font = res.read()
    assert font[:4] == b"wOF2" and 100_000 < len(font) < 2_000_000

    d = browser
    d.get(f"{served.url}/#key={served.key}")
    _wait(d, lambda drv: drv.execute_script(WORKSPACE_SHOWN))
    probe = d.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        (async () => {
          const family = getComputedStyle(document.body).fontFamily;
          const faces = await document.fonts.load('32px ' + family, '中文');
          await document.fonts.ready;
          const draw = (text) => {
            const c = document.createElement('canvas');
            c.width = 80; c.height = 48;
            const g = c.getContext('2d');
            g.font = '32px ' + family; g.textBaseline = 'top'; g.fillStyle = '#000';
            g.fillText(text, 4, 4);
            const a = g.getImageData(0, 0, 80, 48).data;
            let ink = 0, sig = '';
            for (let i = 3; i < a.length; i += 4) { if (a[i] > 127) ink++; sig += a[i] > 127 ? '1' : '0'; }
            return { ink, sig, width: g.measureText(text).width };
          };
          const zhong = draw('中'), wen = draw('文'), tofu = draw('\\u{10FFFD}');
          done({ family, faces: faces.map((f) => f.family), zhongInk: zhong.ink,
                 differ: zhong.sig !== wen.sig, notTofu: zhong.sig !== tofu.sig && wen.sig !== tofu.sig,
                 fonts: performance.getEntriesByType('resource').map((e) => e.name)
                                   .filter((n) => n.includes('/fonts/')) });
        })();
        """
    )
    assert probe["zhongInk"] > 50, probe
    assert probe["differ"] and probe["notTofu"], probe  # two real glyphs, neither the missing-glyph box
    assert probe["family"].startswith('"ChainMatch CJK"'), probe["family"]
    assert "ChainMatch CJK" in [f.strip('"') for f in probe["faces"]], probe
    assert probe["fonts"] == [f"{served.url}{FONT_PATH}"], probe["fonts"]


def test_key_panel_alone_without_a_key(browser, served: Served):
    """Without a stored key only the key panel shows — not an empty workspace below it."""
    from selenium.webdriver.common.by import By

    d = browser
    d.get(f"{served.url}/")
    _wait(d, lambda drv: drv.find_element(By.ID, "key-panel").is_displayed())
    assert not d.find_element(By.ID, "workspace").is_displayed()
    assert d.execute_script("return getComputedStyle(document.getElementById('workspace')).display") == "none"


def test_key_link_in_an_already_open_tab(browser, served: Served):
    """Opening the printed '#key=…' link in a tab that already shows the page (no reload) logs in."""
    from selenium.webdriver.common.by import By

    d = browser
    d.get(f"{served.url}/")
    _wait(d, lambda drv: drv.find_element(By.ID, "key-panel").is_displayed())
    d.execute_script("window.__sameDocument = true; location.hash = arguments[0]", f"key={served.key}")
    _wait(d, lambda drv: drv.find_element(By.ID, "tenant-label").text.startswith("租户：demo"))
    _wait(d, lambda drv: drv.execute_script(WORKSPACE_SHOWN))
    assert d.execute_script("return window.__sameDocument") is True
    assert not d.find_element(By.ID, "key-panel").is_displayed()
    assert d.execute_script("return localStorage.getItem('chainmatch.apiKey')") == served.key
    assert "key=" not in d.current_url


def test_deep_link_opens_region_and_gap_and_selection_updates_the_address(browser, served: Served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get(f"{served.url}/#key={served.key}&region=manas&gap=aluminium/aluminium_rod")
    _wait(d, _gap_loaded("aluminium_rod"))
    assert (
        Select(d.find_element(By.ID, "region-select")).first_selected_option.get_attribute("value") == "manas"
    )
    assert "玛纳斯县" in d.find_element(By.CSS_SELECTOR, "#gapmap svg").get_attribute("aria-label")
    assert d.find_element(By.CSS_SELECTOR, "#gapmap svg").get_attribute("data-chain") == "aluminium"
    assert "铝棒" in d.find_element(By.ID, "candidates-title").text
    assert "key=" not in d.current_url  # the key is stored, not kept in the address
    assert d.execute_script("return localStorage.getItem('chainmatch.apiKey')") == served.key
    assert _hash_params(d) == {"region": "manas", "gap": "aluminium/aluminium_rod"}

    # picking another gap in the table updates the address
    row = next(
        r
        for r in d.find_elements(By.CSS_SELECTOR, "#gap-table tr.gap-row")
        if r.get_attribute("data-link") != "aluminium_rod"
    )
    link = row.get_attribute("data-link")
    row.click()
    _wait(d, _gap_loaded(link))
    _wait(d, lambda drv: _hash_params(drv) == {"region": "manas", "gap": f"aluminium/{link}"})

    # picking a region updates it too (no gap chosen yet there)
    Select(d.find_element(By.ID, "region-select")).select_by_value("zhundong")
    _wait(d, lambda drv: _hash_params(drv).get("region") == "zhundong")
    _wait(
        d, lambda drv: "准东" in drv.find_element(By.CSS_SELECTOR, "#gapmap svg").get_attribute("aria-label")
    )
    assert "gap" not in _hash_params(d)

    # a deep link followed inside the open tab (hashchange, no reload) opens that region and gap
    d.execute_script(
        "window.__sameDocument = true; location.hash = 'region=manas&gap=aluminium/aluminium_rod'"
    )
    _wait(d, _gap_loaded("aluminium_rod"))
    assert (
        Select(d.find_element(By.ID, "region-select")).first_selected_option.get_attribute("value") == "manas"
    )
    assert d.execute_script("return window.__sameDocument") is True

    # picks are history entries: Back returns to the region picked before
    d.back()
    _wait(d, lambda drv: _hash_params(drv).get("region") == "zhundong")
    _wait(
        d, lambda drv: "准东" in drv.find_element(By.CSS_SELECTOR, "#gapmap svg").get_attribute("aria-label")
    )
    assert d.execute_script("return window.__sameDocument") is True

    # and a bad deep link falls back to the first region without breaking the page
    d.get(f"{served.url}/#region=nowhere&gap=x/y")
    _wait(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#gapmap svg"))
    assert d.execute_script(WORKSPACE_SHOWN)


def test_default_region_counts_residents_of_its_sub_regions(browser, served: Served):
    """新疆维吾尔自治区's own residents and those of its prefectures and counties all count."""
    from selenium.webdriver.common.by import By

    regions = _api_get(served, "/v1/regions")
    first = regions[0]
    assert first["id"] == "xinjiang"
    children: dict[str | None, list[dict]] = {}
    for r in regions:
        children.setdefault(r["parent"], []).append(r)

    def total(rid: str) -> int:
        return sum(c["residents"] + total(c["id"]) for c in children.get(rid, []))

    below = total("xinjiang")
    expected = first["residents"] + below
    assert below > 0

    d = browser
    d.get(f"{served.url}/#key={served.key}")
    _wait(d, lambda drv: "驻地企业" in drv.find_element(By.ID, "region-meta").text)
    meta = d.find_element(By.ID, "region-meta").text
    assert f"驻地企业 {expected} 家" in meta, meta
    assert "驻地企业 0 家" not in meta


def test_no_horizontal_scrolling_at_900_px(browser, served: Served, tmp_path: Path):
    from selenium.webdriver.common.by import By

    d = browser
    d.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 900, "height": 800, "deviceScaleFactor": 1, "mobile": False},
    )
    d.get(f"{served.url}/")
    _wait(d, lambda drv: drv.find_element(By.ID, "key-panel").is_displayed())
    fits = "return [document.documentElement.scrollWidth, window.innerWidth]"
    width, inner = d.execute_script(fits)
    assert inner == 900 and width <= inner, (width, inner)

    d.get(f"{served.url}/#key={served.key}&region=manas&gap=aluminium/aluminium_rod")
    _wait(d, _gap_loaded("aluminium_rod"))
    d.find_element(By.CSS_SELECTOR, "#candidate-table button.add-lead").click()
    _wait(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#lead-table tr.lead"))
    width, inner = d.execute_script(fits)
    assert width <= inner, (width, inner)
    shot = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    (tmp_path / "chainmatch_page_900.png").write_bytes(base64.b64decode(shot["data"]))
    shutil.copy(tmp_path / "chainmatch_page_900.png", "/tmp/chainmatch_page_900.png")
