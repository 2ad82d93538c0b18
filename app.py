"""Flicker review: assertion-based active learning on video.

    streamlit run app.py                 # empty start
    streamlit run app.py -- --sample     # opens with the bundled sample loaded
"""
import sys

import streamlit as st

if __name__ != "__main__":
    # Imported, not run as a page: `streamlit run app.py` finds the `st.App` below and imports this file
    # once, in the server process, before any browser connects. Every browser session still runs this
    # file as `__main__` (the `else` branch).
    #
    # Why: with a `pages/` folder next to this file, Streamlit starts in its old pages-directory mode
    # (PagesManager.uses_pages_directory) and leaves it only when st.navigation below runs. Until then a
    # bookmarked /review or /export ran pages/review.py alone: the sidebar listed the file names
    # ("app, export, load, qa, review"), set_page_config never ran (narrow layout), and it stayed so for
    # the life of the server until someone opened "/". Pages are only ever declared by st.navigation
    # here, so the server starts in that mode. (tests/test_deeplink.py opens a cold deep link.)
    from contextlib import asynccontextmanager

    from streamlit.runtime.pages_manager import PagesManager

    @asynccontextmanager
    async def _pages_from_navigation_only(_app):
        PagesManager.uses_pages_directory = False
        yield

    from ui.verdict_queue import routes as verdict_routes
    from ui.viewer import frames

    # The review page's viewer fetches frames and boxes over HTTP, not through reruns (ui/viewer/frames.py);
    # the Verdicts page's queue posts its verdicts the same way (ui/verdict_queue/routes.py).
    app = st.App(__file__, lifespan=_pages_from_navigation_only, routes=[*frames.routes(), *verdict_routes.routes()])
else:
    from ui.icon import app_icon

    st.set_page_config(page_title="Flicker review", page_icon=app_icon(), layout="wide")
    from ui.viewer.component import PRELOAD_KEY, REVIEW_TITLE_KEY
    # Less blank space above each page's title than Streamlit's default: the review page needs the
    # height to show the frame, its timeline and its neighbours on one screen.
    # Metrics in a narrow column (Review's side column at 1100 px with the sidebar open) shrink their
    # figures rather than cut them to "2,..." (a cut label keeps its ellipsis).
    st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }"
            "[data-testid='stMetric'] { container-type: inline-size; }"
            "@container (max-width: 100px) { [data-testid='stMetricValue'] { font-size: 1.5rem; } }"
            # tables of figures (Verdicts' estimates) fit a narrow column: less room around each cell
            "[data-testid='stMarkdownContainer'] :is(th, td) { padding: 0.35rem 0.4rem; }"
            "[data-testid='stMarkdownContainer'] table { font-size: 0.95em; }"
            # the viewer's preload draws nothing, and takes no room either (ui.viewer.component.preload_viewer)
            f".st-key-{PRELOAD_KEY} {{ display: none; }}"
            # Review's title in a window under 820 px tall (a 1280x720 laptop): its ~90 px go to the frame,
            # which was 240 px tall there; the sidebar still says which page this is
            f"@media (max-height: 820px) {{ .st-key-{REVIEW_TITLE_KEY} {{ display: none; }} }}</style>")

    navigation = st.navigation(
        [
            st.Page("pages/load.py", title="Load & detect", icon=":material/movie:", default=True),
            st.Page("pages/fleet.py", title="Fleet", icon=":material/view_list:", url_path="fleet"),
            st.Page("pages/review.py", title="Review", icon=":material/flag:"),
            st.Page("pages/qa.py", title="Verdicts & thresholds", icon=":material/fact_check:"),
            st.Page("pages/export.py", title="Export & schedule", icon=":material/cloud_upload:"),
        ]
    )
    from ui.session import refuse_sharing_without_roots

    refuse_sharing_without_roots()  # served on a network, the paths it may use must be limited (README)
    if "--sample" in sys.argv:  # here, not on one page: a tab starting on Review or Verdicts opens on the sample too
        from ui.session import open_sample_once
        from ui.url import names_a_review, restore_onto_sample

        if open_sample_once(linked=names_a_review()):
            restore_onto_sample()
    navigation.run()
