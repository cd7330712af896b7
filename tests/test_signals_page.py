"""The staff page with expansion signals (#19 item 6), in a real headless Chromium against ``chainmatch serve``:
a candidate's 动态 button opens its timeline with sources; the filter 近两年有扩张动作 keeps only active firms."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from api_support import Served, make_settings, seed_demo_store
from test_web_page import CHROMEDRIVER, CHROMIUM, _wait, browser  # noqa: F401  (the `browser` fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="headless Chromium / chromedriver not installed",
    ),
]


@pytest.fixture()
def served(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """The demo store with a shared event (60 days ago) for every other demo firm, then served."""
    from matcher.store.signals import SignalEvent, SignalSource, upsert_signals
    from matcher.store.store import Store

    root = seed_demo_store(tmp_path / "srv", tmp_path_factory)
    store = Store.from_settings(make_settings(root))
    firms = sorted(store.iter_enterprises(), key=lambda e: e.id)
    day = date.today() - timedelta(days=60)
    upsert_signals(store, [
        SignalEvent(enterprise_id=e.id, firm=e.name, day=day, kind="扩产公告", product="扩产项目", province="甘肃",
                    sources=[SignalSource(url=f"https://news.example/{n}", title="扩产公告")])
        for n, e in enumerate(firms) if n % 2 == 0
    ])  # fmt: skip
    store.close()
    s = Served(root)
    yield s
    s.stop()


def test_timeline_and_recent_expansion_filter(browser, served: Served) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get(f"{served.url}/#key={served.key}")
    _wait(d, ec.visibility_of_element_located((By.ID, "workspace")))
    Select(d.find_element(By.ID, "region-select")).select_by_value("manas")
    _wait(d, lambda drv: "玛纳斯县" in drv.find_element(By.CSS_SELECTOR, "#gapmap svg").get_attribute("aria-label"))

    def click(css: str):
        def once(drv):  # a re-rendered (stale) element is looked up again; a done click is not repeated
            drv.find_element(By.CSS_SELECTOR, css).click()
            return True

        _wait(d, once)

    click("#chain-tabs button[data-chain='aluminium']")
    rod = "#gapmap svg[data-chain='aluminium'] g.node.gap[data-link='aluminium_rod']"
    _wait(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, rod))
    click(rod)
    _wait(d, ec.visibility_of_element_located((By.ID, "candidate-table")))
    toggles = "#candidate-table tr.candidate button.timeline-toggle"

    def labels(drv):  # re-read on every poll: the table may be re-rendered while the page settles
        texts = [b.text for b in drv.find_elements(By.CSS_SELECTOR, toggles)]
        return texts if "动态 1" in texts and "动态" in texts else False

    _wait(d, labels)

    def click_active(drv):
        button = next(b for b in drv.find_elements(By.CSS_SELECTOR, toggles) if b.text == "动态 1")
        button.click()
        return True

    # the timeline under an active firm: month, kind, place and a link to its source
    _wait(d, click_active)  # once (a stale row is retried, a successful click is not repeated)
    item = _wait(d, lambda drv: drv.find_element(By.CSS_SELECTOR, "#candidate-table tr.timeline ul.signals li"))
    month = (date.today() - timedelta(days=60)).strftime("%Y-%m")
    assert item.text.startswith(f"{month} 扩产公告 甘肃")
    assert item.find_element(By.CSS_SELECTOR, "a.source").get_attribute("href").startswith("https://news.example/")
    eid = d.find_element(By.CSS_SELECTOR, "#candidate-table tr.timeline").get_attribute("data-enterprise-id")
    row = d.find_element(By.CSS_SELECTOR, f"#candidate-table tr.candidate[data-enterprise-id='{eid}']")
    assert any(f"近期扩张：{month}" in li.text for li in row.find_elements(By.CSS_SELECTOR, "ul.reasons li"))

    # 近两年有扩张动作: only the active firms remain
    d.find_element(By.ID, "f-expansion").click()
    d.find_element(By.ID, "apply-filters").click()
    _wait(d, lambda drv: all(
        r.find_element(By.CSS_SELECTOR, "button.timeline-toggle").text == "动态 1"
        for r in drv.find_elements(By.CSS_SELECTOR, "#candidate-table tr.candidate")
    ) and drv.find_elements(By.CSS_SELECTOR, "#candidate-table tr.candidate"))
