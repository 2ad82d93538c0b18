"""Streamlit glue shared by the pages: session keys, cached resources, small components."""
