// Shared by every component of this app (ui/js.py puts it before each one's own JS).
// One ``make(host)`` instance per host element, updated with each render. Streamlit calls the
// returned cleanup on unmount, but also right away for a render superseded by newer data: tear
// down only once the instance has really left the page.
function mountOnce(component, slot, make) {
  const host = component.parentElement;
  if (!host[slot]) host[slot] = make(host);
  host[slot].update(component);
  return () => setTimeout(() => {
    if (!host.isConnected && host[slot]) {
      host[slot].destroy();
      delete host[slot];
    }
  }, 0);
}
