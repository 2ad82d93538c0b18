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

// Keys a component listens for on the whole page are left alone where they belong to what has the
// focus: letters where they are text (TEXT_FIELDS; a radio, a switch or a slider clicked a moment
// ago keeps no letter), arrows, Home and End also on the widgets that move with them (ARROW_WIDGETS).
const TEXT_FIELDS = "input:not([type='checkbox']):not([type='radio']):not([type='range']):not([type='button'])" +
  ":not([type='submit']), textarea, select, [contenteditable=''], [contenteditable='true'], [role='combobox'], " +
  "[role='textbox'], [role='searchbox'], [role='spinbutton']";
const ARROW_WIDGETS = `${TEXT_FIELDS}, input, [role='slider'], [role='listbox'], [role='radiogroup'], [role='tablist'], [role='menu']`;
