"""The engine of the flicker review app: video, detection, flicker assertion, export.

Nothing in this package imports streamlit; the app and the CLI are thin layers over it.
"""
