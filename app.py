"""Flicker review: assertion-based active learning on video.

    streamlit run app.py                 # empty start
    streamlit run app.py -- --sample     # opens with the bundled sample loaded
"""
import streamlit as st

st.set_page_config(page_title="Flicker review", page_icon=":material/movie_filter:", layout="wide")
# Less blank space above each page's title than Streamlit's default: the review page needs the height
# to show the frame, its timeline and its neighbours on one screen.
st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }</style>")

navigation = st.navigation(
    [
        st.Page("pages/load.py", title="Load & detect", icon=":material/movie:", default=True),
        st.Page("pages/review.py", title="Review", icon=":material/flag:"),
        st.Page("pages/qa.py", title="Verdicts & thresholds", icon=":material/fact_check:"),
        st.Page("pages/export.py", title="Export & schedule", icon=":material/cloud_upload:"),
    ]
)
navigation.run()
