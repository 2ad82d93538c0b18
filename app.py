"""Flicker review: assertion-based active learning on video.

    streamlit run app.py                 # empty start
    streamlit run app.py -- --sample     # opens with the bundled sample loaded
"""
import streamlit as st

st.set_page_config(page_title="Flicker review", page_icon=":material/movie_filter:", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/load.py", title="Load & detect", icon=":material/movie:", default=True),
        st.Page("pages/review.py", title="Review", icon=":material/flag:"),
        st.Page("pages/qa.py", title="Verdicts & thresholds", icon=":material/fact_check:"),
        st.Page("pages/export.py", title="Export & schedule", icon=":material/cloud_upload:"),
    ]
)
navigation.run()
