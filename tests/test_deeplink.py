"""A bookmarked page URL opened first on a fresh server gets the app's navigation and layout.

With a `pages/` folder next to app.py, Streamlit stays in its old pages-directory mode until st.navigation
has run once: a cold /review or /export ran that page file alone, with the file names in the sidebar
("app, export, load, qa, review") and without app.py's wide layout, until someone opened "/".
"""
import pytest

from conftest import CHROMEDRIVER, CHROMIUM, streamlit_server, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"),
]

TITLES = ["Load & detect", "Fleet", "Review", "Verdicts & thresholds", "Export & schedule"]


@pytest.fixture
def fresh_server(tmp_path):
    """`streamlit run app.py` as a user starts it (no --sample), with nobody connected yet."""
    with streamlit_server(tmp_path, tmp_path / "cache") as url:
        yield url


def navigation_labels(browser) -> list[str]:
    nav = browser.find_element("css selector", '[data-testid="stSidebarNav"]')
    return [link.text.splitlines()[-1] for link in nav.find_elements("css selector", '[data-testid="stSidebarNavLink"]')]


@pytest.mark.parametrize("path, heading", [("/review?frame=3", "Review"), ("/export", "Export & schedule")])
def test_cold_deep_link_gets_the_navigation_titles_and_wide_layout(fresh_server, browser, path, heading):
    browser.get(fresh_server + path)
    wait_for(browser, lambda: browser.find_element("tag name", "h1").text == heading, 60, f"the {heading} page")
    labels = wait_for(browser, lambda: navigation_labels(browser), 30, "the navigation")  # sent in one message
    assert labels == TITLES  # not the file names "app, export, load, qa, review"
    # app.py ran: set_page_config(layout="wide") gives the main block (much) more than the centred 736 px
    width = browser.execute_script(
        "return document.querySelector('[data-testid=stMainBlockContainer]').getBoundingClientRect().width")
    assert width > 1000, width
    browser.refresh()  # and again on a reload
    wait_for(browser, lambda: browser.find_element("tag name", "h1").text == heading, 60, f"the {heading} page again")
    assert wait_for(browser, lambda: navigation_labels(browser), 30, "the navigation") == TITLES
