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

// Streamlit 1.67 unmounts the whole app (a blank page, "Bad delta path index" in the console) when
// a switch to another page lands while a fragment's rerun still sends its elements: a verdict or a
// threshold moved on Review reruns its workspace fragment, and a click on the sidebar right after
// it did this (seen in CI). So a click on a link to another page of the app, made while the script
// runs, is held until the run is over and then made again; but never past NAV_HOLD_MS from the
// run's start: a long run of a whole page (a detection) is stopped by the switch, as usual, at once.
// "Over" is NAV_QUIET_MS without a run: the viewer answers a run's data with its own (the frame it
// settled on), whose rerun a switch made at once could still meet (blank pages under load, after a
// click released 100 ms after the verdict's run ended). Installed once per page, by the first component drawn.
const NAV_HOLD_MS = 2000;
const NAV_QUIET_MS = 300;
const NAV_LINKS = "a[data-testid='stSidebarNavLink'], a[data-testid='stPageLink-NavLink']";

function holdNavigationWhileRunning() {
  const app = document.querySelector("[data-test-script-state]");
  if (window.flickerNavigationHeld || !app) return;
  window.flickerNavigationHeld = { held: 0 }; // how many clicks were held (read by tests)
  const running = () => ["running", "rerunRequested"].includes(app.getAttribute("data-test-script-state"));
  let runSince = running() ? performance.now() : null, idleSince = running() ? null : performance.now(), replay = null;
  new MutationObserver(() => {
    if (!running()) {
      runSince = null;
      idleSince ??= performance.now();
    } else {
      idleSince = null;
      runSince ??= performance.now();
    }
  }).observe(app, { attributes: true, attributeFilter: ["data-test-script-state"] });
  const busy = () => running() || (idleSince !== null && performance.now() - idleSince < NAV_QUIET_MS);
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest(NAV_LINKS) : null;
    if (!link || event === replay || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey ||
        event.altKey || !busy() || (runSince !== null && performance.now() - runSince >= NAV_HOLD_MS)) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    window.flickerNavigationHeld.held++;
    const href = link.getAttribute("href"), until = (runSince ?? performance.now()) + NAV_HOLD_MS + NAV_QUIET_MS;
    const release = () => {
      if (busy() && performance.now() < until) return void setTimeout(release, 15);
      // the run may have drawn the link anew: the same link, found by where it goes
      const again = link.isConnected ? link : [...document.querySelectorAll(NAV_LINKS)].find((a) => a.getAttribute("href") === href);
      if (!again) return; // the page no longer offers it
      replay = new MouseEvent("click", { bubbles: true, cancelable: true, view: window, button: 0 });
      again.dispatchEvent(replay);
      replay = null;
    };
    setTimeout(release, 15);
  }, true);
}
holdNavigationWhileRunning();

// Streamlit pushes a browser history entry whenever a run changes the URL's query. Review writes its
// frame there as it settles (a reload comes back to it), so every step and every J / K added one,
// and Back walked through the frames instead of returning to the page before (Fleet, Verdicts). A
// change of query that keeps the page replaces the current entry; a switch of page still pushes one
// (so Back no longer undoes a change made within a page either, such as another folder on Fleet).
// Installed once per page, by the first component drawn.
function oneHistoryEntryPerPage() {
  if (window.flickerHistoryPatched) return;
  window.flickerHistoryPatched = true;
  const push = history.pushState.bind(history);
  history.pushState = (state, title, url) => {
    const samePage = url != null && new URL(url, location.href).pathname === location.pathname;
    return samePage ? history.replaceState(state, title, url) : push(state, title, url);
  };
}
oneHistoryEntryPerPage();

// A video's file name in a header, cut in its middle where the line is short: its start and its last NAME_END
// characters (the extension, and where one camera's files differ from the next: a shift, a date) stay in view,
// the whole name in the title. Two spans, the first cut with an ellipsis (each component's CSS: "> :first-child").
const NAME_END = 10;
function showName(element, name) {
  let cut = name.length > 2 * NAME_END ? name.length - NAME_END : name.length;
  // a space at either side of the cut ends or starts a span's line, where CSS drops it ("clip part 2.mp4" read
  // "clippart 2.mp4"), and a cut inside a character of two UTF-16 units (an emoji) showed two broken halves: the
  // cut moves left to where neither happens
  while (cut > 1 && cut < name.length && (/\s/.test(name[cut - 1] + name[cut]) || /[\uDC00-\uDFFF]/.test(name[cut]))) cut--;
  element.replaceChildren(...[name.slice(0, cut), name.slice(cut)].map((text) => Object.assign(document.createElement("span"),
    { textContent: text })));
  element.title = name;
}

// Counts as the pages write them: 1,234; "1 box", "2 boxes".
const number = (value) => value.toLocaleString("en-US");
const plural = (count, word, many) => `${number(count)} ${count === 1 ? word : many}`;
