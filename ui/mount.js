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

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));
const rgb = (color) => `rgb(${color.join(",")})`;

// The tags on a frame's boxes ("person 0.94" on a detection, "imputed" on a dashed box), placed so that they keep off
// each other and off the boxes (the objects under them) where they can: each tries its ``sides`` of its box in turn
// ("above" it, "inside" its top edge, "below" it), each also moved past the tags placed before it (up, down, right),
// always inside the frame; the one that covers least wins, a tag placed before counting far more than a box, a later side
// or a move a little. ``tags``: [{ box: [x, y, w, h], width, height, sides }], the first placed first; the boxes are theirs.
// Gives each tag's [x, y, width, height]. O(tags² × sides) with small constants: a frame of 100 boxes stays a frame step.
const TAG_SIDES = { box: ["above", "inside", "below"], mark: ["below", "above", "inside"] }; // a detection's; a marked box's
const TAG_COST = { tag: 100, box: 1, side: 0.6, moved: 0.3 }; // per share of the tag's area covered; per side, per move
const TAG_MOVES = 4; // past at most this many tags in a row

function placeTags(tags, frameWidth, frameHeight) {
  const placed = [], boxes = tags.map((tag) => tag.box);
  const overlap = (a, b) => Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0])) *
    Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const inside = ([x, y, w, h]) => [clamp(x, 0, frameWidth - w), clamp(y, 0, frameHeight - h), w, h];
  const hit = (spot) => placed.find((other) => overlap(spot, other) > 0);
  const covered = (spot, among) => among.reduce((sum, other) => sum + overlap(spot, other), 0) / (spot[2] * spot[3]);
  return tags.map(({ box: [x, y, w, h], width, height, sides }) => {
    let best = null, bestCost = Infinity;
    const consider = (spot, penalty) => {
      if (penalty >= bestCost) return;
      let cost = penalty + TAG_COST.tag * covered(spot, placed);
      if (cost >= bestCost || (cost += TAG_COST.box * covered(spot, boxes)) >= bestCost) return; // the boxes only if still worth it
      [best, bestCost] = [spot, cost];
    };
    for (const [rank, side] of sides.entries()) {
      if (rank * TAG_COST.side >= bestCost) break; // nothing later can win
      const top = { above: y - height, inside: y, below: y + h }[side], start = inside([x, top, width, height]);
      consider(start, rank * TAG_COST.side);
      if (!hit(start)) continue;
      for (const move of ["up", "down", "right"]) {
        let spot = start;
        for (let step = 0, other; step < TAG_MOVES && (other = hit(spot)); step++) {
          const [ox, oy, ow, oh] = other;
          spot = inside(move === "up" ? [spot[0], oy - height, width, height] : move === "down" ? [spot[0], oy + oh, width, height]
            : [ox + ow, spot[1], width, height]);
        }
        if (spot !== start) consider(spot, rank * TAG_COST.side + TAG_COST.moved);
      }
    }
    placed.push(best);
    return best;
  });
}

// ``tags`` ({ text, color, box, sides }) drawn onto ``context``'s canvas where placeTags puts them: 12 px text on its
// box's colour, black or white as reads best; none for a box out of the canvas (zoomed in). Gives where each went.
function drawTags(context, tags, dpr) {
  const size = 12 * dpr, { width, height } = context.canvas;
  context.font = `${size}px sans-serif`;
  const shown = tags.filter(({ box: [x, y, w, h] }) => x + w > 0 && y + h > 0 && x < width && y < height);
  const sized = shown.map((tag) => ({ ...tag, width: context.measureText(tag.text).width + 6 * dpr, height: size + 5 * dpr }));
  const spots = placeTags(sized, width, height);
  shown.forEach(({ text, color }, index) => {
    const [x, y, w, h] = spots[index];
    context.fillStyle = rgb(color);
    context.fillRect(x, y, w, h);
    context.fillStyle = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2] > 150 ? "#000" : "#fff";
    context.fillText(text, x + 3 * dpr, y + size);
  });
  return spots;
}

// Counts as the pages write them: 1,234; "1 box", "2 boxes".
const number = (value) => value.toLocaleString("en-US");
const plural = (count, word, many) => `${number(count)} ${count === 1 ? word : many}`;
