// Drawn on pages that link to Review (component.py's preload_viewer), showing nothing. Streamlit
// fetches its code for components the first time one is drawn in a page (a 15 KB script: 15-50 ms,
// more on a busy server); drawn here, it is in the page before the link to Review is pressed, so
// Review's viewer mounts without that wait. mount.js before this file also holds this page's links
// while its script runs (see there).
export default () => {};
