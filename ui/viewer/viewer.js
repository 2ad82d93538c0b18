// The review page's frame viewer (st.components.v2, plain JS, no build step).
//
// Frames (JPEG) and the boxes of the whole video come over HTTP from the app's server (see
// ui/viewer/frames.py), fetched ahead of the hand; Python sends, for the whole video, everything the
// thresholds decide: flags, imputed boxes, boxes per frame, verdicts and selected frames, for each
// enabled assertion (flicker, ghost, class flip: one lane each on the timeline). Steps,
// playback, seeks, the timeline, the i-k..i+k strip and zoom all run here, so neither a frame step
// nor a seek waits for a rerun. Python hears two things: the frame the viewer settled on, and
// verdicts, each with its frame and the assertion it answers, so "K then M" marks the frame that
// is on screen. J / K follow every lane or one (L, or a click on a lane's key, picks which). Other parts of the
// page (the embedding map) move the viewer with a "fv:seek" window event and hear where it is from
// "fv:frame".

const SETTLE_MS = 250; // report the frame once the hand has rested this long
const AHEAD = 32; // frames kept ready in the direction of travel...
const BEHIND = 8; // ...and behind it
const FLAGGED_FRAMES = 180; // frames kept ready around the flagged frames nearest the hand (their i-k..i+k)
// Frames fetched ahead at once: the server decodes one video's frames one at a time, so a seek made
// meanwhile waits behind at most these (the frame under the hand is fetched beside them).
const LOADING = 3;
const FAR = AHEAD; // a move farther than this leaves the frames being fetched ahead behind: they are dropped
// A frame or the boxes that failed to load are asked for again after this, doubled after each
// failure up to MAX_RETRY_MS (a frame that cannot be decoded is not asked for every second).
const RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;
const CACHE_FRAMES = 360; // more than AHEAD + BEHIND + FLAGGED_FRAMES: what prefetch wants is never evicted
const ZOOMS = [1, 1.5, 2, 3, 4, 6];
const TIMELINE_HEIGHT = 80; // boxes per frame and picks; then a lane per assertion:
const LANE_HEIGHT = 14;
const COUNT_TOP = 16; // the count line's highest point: its "N boxes" label stands above it
const STRIP_HEIGHT = 120;
const MIN_HEIGHT = 240; // the frame is never drawn smaller...
const COMFORTABLE_HEIGHT = 480; // ...nor under this while the strip can go below the fold instead
const CURSOR_COLOR = "#ff7f0e";
const COUNT_COLOR = "#1f77b4";
const VERDICT_COLORS = { miss: "#2ca02c", false_alarm: "#7f7f7f", unsure: "#bcbd22" };
const VERDICT_NAMES = { miss: "true", false_alarm: "false alarm", unsure: "unsure" };
// What "M" says for each assertion (its flag is right: the detector erred the way it says).
const YES = { flicker: "True miss", ghost: "True ghost", "class-flip": "True flip" };
const YES_HELP = {
  flicker: "M: the detector really missed an object here",
  ghost: "M: the one-frame box is not an object (a false detection)",
  "class-flip": "M: the box's class is wrong here (its neighbours' class is right)",
};
const SHORT = { flicker: "flicker", ghost: "ghost", "class-flip": "flip" }; // a chip's name for its assertion
// a verdict on a frame nothing flags: a spot check (given on the Verdicts page), said beside "No flicker"
const SPOT_CHECK = { miss: "object missing", false_alarm: "nothing missing", unsure: "unsure" };
const ALL = "all"; // J / K over every lane
const PICK_COLOR = "#9467bd";
const ARROWS = new Set(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"]); // ARROW_WIDGETS' keys
// Space on these, outside the viewer, is theirs (it presses a button, ticks a box, picks a radio).
const SPACE_WIDGETS = "button, a, input[type='checkbox'], input[type='radio'], [role='switch'], [role='checkbox'], [role='radio']";

export default (component) => mountOnce(component, "flickerViewer", (host) => new Viewer(host));

const retryDelay = (failures) => Math.min(MAX_RETRY_MS, RETRY_MS * 2 ** (failures - 1));
const frameList = (flags) => flags.reduce((list, flag, frame) => (flag && list.push(frame), list), []);
const GONE = 404; // what the routes answer for a video or boxes the server does not know (see frames.py)
const fetched = (response) => (response.ok ? response : Promise.reject({ status: response.status }));

class Viewer {
  constructor(host) {
    const part = (name) => host.querySelector(`.fv-${name}`);
    this.root = part("root");
    this.canvas = part("frame");
    this.stage = part("stage");
    this.loadingNote = part("loading");
    this.goneNote = part("gone");
    this.goneText = part("gone-text");
    this.label = part("label");
    this.nameText = part("name");
    this.status = part("status");
    this.verdictBox = part("verdict");
    this.playButton = part("play");
    this.playText = part("play-text");
    this.zoomText = part("zoom");
    this.jumpBox = part("jump");
    this.timeline = part("timeline");
    this.tip = part("tip");
    this.strip = part("strip");
    this.keys = part("keys");
    this.frames = new Map(); // frame -> {image, ready, urgent, loading (while in flight), failed}
    this.failures = new Map(); // frame -> how often it failed to load in a row
    this.boxes = null; // every box of the video: {offsets, boxes} (see frames.boxes_json)
    this.boxesUrl = null;
    this.boxesAttempt = null;
    this.boxesFailures = 0;
    this.video = null;
    this.current = 0;
    this.direction = 1;
    this.seekCount = null;
    this.announcing = null; // the frame a page waits to hear is drawn (announceShown)
    this.loading = 0; // frames being fetched ahead
    this.urgent = null; // {frame, entry}: the frame under the hand, being fetched first
    this.gone = false; // the server answered that it does not know this video (it was restarted)
    this.reported = null;
    this.playing = false;
    this.target = ALL; // the lane J / K follow
    this.chosen = null; // {frame, name}: the assertion a verdict on that frame answers, picked by a click
    this.given = []; // the verdicts given in this viewer, latest last: {frame, name, before} (Z takes one back)
    // "assertion:frame" -> {frame, verdict, assertion, undo, allowed, stored}: verdicts given here that Python's data does not
    // show yet. Each trigger carries them all: Streamlit keeps only the last trigger of a burst of keys.
    this.unsent = new Map();
    this.lanesBox = part("lanes");
    this.yes = part("yes");
    this.zoom = { level: 0, cx: 0, cy: 0 };
    this.size = { width: 0, height: 0 };
    this.offs = [];
    this.listen(window, "keydown", (event) => this.onKey(event));
    this.listen(window, "resize", () => this.layout());
    this.listen(window, "fv:seek", (event) => this.onSeek(event.detail));
    this.listen(this.root, "click", (event) => this.onClick(event));
    this.listen(this.root, "mousedown", (event) => event.target.closest("button") && event.preventDefault());
    this.listen(this.jumpBox, "keydown", (event) => event.key === "Enter" && this.jump());
    this.listenTimeline();
    this.listenFrame();
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(this.root);
  }

  listen(target, type, handler, options) {
    target.addEventListener(type, handler, options);
    this.offs.push(() => target.removeEventListener(type, handler, options));
  }

  destroy() {
    this.pause();
    clearTimeout(this.settleTimer);
    this.resize.disconnect();
    this.offs.forEach((off) => off());
    for (const [frame, entry] of this.frames) if (entry.loading) this.drop(frame, entry); // see Queue.destroy
  }

  // ---- data from Python ------------------------------------------------------------------

  update({ data, setStateValue, setTriggerValue }) {
    this.setState = setStateValue;
    this.trigger = setTriggerValue;
    if (this.video?.key !== data.video.key) this.reset(data.video);
    if (this.gone) this.found();
    if (this.boxesUrl !== data.video.boxes || this.boxesFailures) this.boxesWanted = data.video.boxes; // see prefetch
    for (const key of data.unsaved ?? []) this.unsent.delete(key); // refused by the store: the page says why
    this.setView(data.view);
    this.retryFailed();
    if (!this.size.width) this.layout();
    const [count, frame, reveal] = data.seek;
    if (count !== this.seekCount) {
      this.seekCount = count;
      this.reported = frame;
      this.announcing = data.announce ? frame : null; // the page waits to hear a frame is drawn (see render)
      this.goTo(frame, false);
      if (reveal) this.root.scrollIntoView({ block: "start", behavior: "smooth" });
    } else {
      this.render();
    }
    this.prefetch();
  }

  reset(video) {
    this.pause();
    this.video = video;
    showName(this.nameText, video.name);
    [...this.frames.keys()].forEach((frame) => this.drop(frame));
    this.urgent = null;
    this.failures.clear();
    this.given = [];
    this.unsent.clear();
    this.seekCount = null; // the new video's first move is made whatever its count
    this.current = 0;
    this.announced = null;
    this.zoom = { level: 0, cx: video.width / 2, cy: video.height / 2 };
    this.zoomText.textContent = "100%";
    this.canvas.classList.remove("fv-zoomed");
    this.size = { width: 0, height: 0 };
  }

  setView(view) {
    this.view = view;
    const lane = (name, flags, verdicts) => {
      const on = Uint8Array.from(flags, (c) => c === "1");
      return { name, ...view.assertions[name], flags: on, flagged: frameList(on), verdicts: { ...verdicts } };
    };
    const before = this.lanes?.length;
    this.lanes = [lane("flicker", view.flags, view.verdicts), ...view.siblings.map((s) => lane(s.name, s.flags, s.verdicts))];
    this.lane = Object.fromEntries(this.lanes.map((each) => [each.name, each]));
    for (const [key, { frame, verdict, assertion }] of this.unsent) { // Python caught up, or shown as given until it does
      const shown = this.lane[assertion];
      if (!shown || (shown.verdicts[frame] ?? null) === verdict) this.unsent.delete(key);
      else if (verdict) shown.verdicts[frame] = verdict;
      else delete shown.verdicts[frame];
    }
    this.flagCount = this.lane.flicker.flagged.length; // flicker's, as the page's "Flagged frames"
    const any = new Uint8Array(this.video.n);
    for (const each of this.lanes) each.flags.forEach((flag, frame) => flag && (any[frame] = 1));
    this.anyFlagged = frameList(any);
    const byFrame = (boxes) => new Map(Object.entries(boxes).map(([frame, rows]) => [Number(frame), rows]));
    this.imputed = byFrame(view.imputed);
    this.ghostRows = new Set(view.ghosts); // rows of this.boxes
    this.flipRows = new Map(view.flips); // row of this.boxes -> the class its neighbours agree on
    this.picks = new Set(view.selected);
    this.follow(this.lane[this.target] ? this.target : ALL);
    this.renderLanes();
    if (before !== undefined && before !== this.lanes.length) this.size = { width: 0, height: 0 }; // the timeline grows
    this.timelineBase = null;
  }

  // J / K (and prefetch of flagged frames) follow ``name``'s flags, or every lane's.
  follow(name) {
    this.target = name;
    this.flagged = name === ALL ? this.anyFlagged : this.lane[name].flagged;
    this.root.dataset.target = name;
    for (const button of this.lanesBox.querySelectorAll("button")) {
      button.classList.toggle("fv-chosen", button.dataset.lane === name);
      button.setAttribute("aria-pressed", button.dataset.lane === name);
    }
  }

  // L: the next lane for J / K (every lane, then each in turn).
  followNext() {
    if (this.lanes.length < 2) return;
    const names = [ALL, ...this.lanes.map((each) => each.name)];
    this.follow(names[(names.indexOf(this.target) + 1) % names.length]);
    this.timelineBase = null;
    this.render();
    this.prefetch();
  }

  // The lanes' keys under the timeline: colour, name and flagged count; with several lanes, buttons
  // that choose what J / K follow.
  renderLanes() {
    const several = this.lanes.length > 1;
    const key = (name, text, color, title) => {
      const item = document.createElement(several ? "button" : "span");
      if (several) item.type = "button";
      item.className = "fv-lane-key";
      item.dataset.lane = name;
      item.title = title;
      if (color) {
        const swatch = document.createElement("i");
        swatch.className = "fv-swatch";
        swatch.style.background = rgb(color);
        item.append(swatch);
      }
      item.append(text);
      return item;
    };
    const keys = this.lanes.map((each) => key(each.name, `${each.label} ${number(each.flagged.length)}`, each.color,
      `${each.label}: ${each.help}${several ? " (J / K follow this lane)" : ""}`));
    if (several) keys.unshift(key(ALL, `All ${number(this.anyFlagged.length)}`, null, "J / K go to frames any lane flags"));
    const label = document.createElement("span");
    label.className = "fv-hint";
    label.textContent = several ? "J / K (L):" : "";
    this.lanesBox.replaceChildren(...(several ? [label] : []), ...keys);
    this.root.dataset.lanes = this.lanes.map((each) => each.name).join(",");
    this.follow(this.target);
  }

  // The lanes that flag ``frame``, in order.
  firing(frame) {
    return this.lanes.filter((each) => each.flags[frame] === 1);
  }

  // The lane a verdict on ``frame`` answers: the one picked there by a click, else the lane J / K
  // follow, else the first that flags it (null: none does).
  answering(frame) {
    const firing = this.firing(frame), named = (name) => firing.find((each) => each.name === name);
    return (this.chosen?.frame === frame && named(this.chosen.name)) || named(this.target) || firing[0] || null;
  }

  // Frame ``frame``'s JPEG, fetched and decoded; ``urgent``: the frame under the hand, asked for at
  // once and first (``?now``: the server decodes it with a reader of its own). An image's src, not
  // a fetch(): on a page still busy drawing itself (a link just opened) each step of a fetch, its
  // blob and an image of it waited for the main thread (a link's frame came ~40 ms later).
  load(frame, urgent) {
    const image = new Image(), entry = { image, ready: false, urgent, loading: true };
    this.frames.set(frame, entry);
    if (urgent) this.urgent = { frame, entry };
    else this.loading++;
    image.fetchPriority = urgent ? "high" : "low";
    image.src = `${this.video.frames}${frame}.jpg${urgent ? "?now" : ""}`; // see frames.py
    image.decode().then(() => {
      if (entry.dropped) return;
      entry.ready = true;
      this.failures.delete(frame);
      if (Math.abs(frame - this.current) <= this.view.k + 1) this.render();
    }, () => {
      if (entry.dropped) return; // left behind by the hand, on purpose
      this.forgetLater(frame, entry); // a frame that did not decode, or the server is away for now...
      this.checkServer(() => this.lost()); // ...or it was restarted: it does not know this video (404)
    }).finally(() => {
      this.settled(entry);
      this.prefetch();
    });
    if (this.frames.size > CACHE_FRAMES) this.evict();
  }

  // A fetch is over (its image decoded or failed, or it was dropped): its place among the LOADING
  // fetches ahead, or as the urgent one, is free again. Once only: a dropped fetch is over at the drop.
  settled(entry) {
    if (!entry.loading) return;
    entry.loading = false;
    if (!entry.urgent) this.loading--;
    else if (this.urgent?.entry === entry) this.urgent = null;
  }

  // Forget ``frame`` (or that fetch of it: ``entry``), and stop fetching it if it is on its way (a
  // fetch the hand left behind is dropped, not waited for: the frame it moved to is asked for at
  // once). Chromium cancels an image's request once its src is gone.
  drop(frame, entry = this.frames.get(frame)) {
    if (!entry) return;
    if (this.frames.get(frame) === entry) this.frames.delete(frame);
    entry.dropped = true;
    // Chromium never settles decode() (nor fires load or error) for an image whose src goes while its
    // request is in flight: the fetch is over here, or its place among those ahead stayed taken for
    // good, and after three such drops (far jumps while the server was slow) nothing was fetched
    // ahead again: Play waited for the next frame for ever.
    if (entry.loading) {
      entry.image.removeAttribute("src");
      this.settled(entry);
    }
  }

  // The frames being fetched ahead that the hand no longer wants (it moved far away).
  dropStale() {
    const wanted = new Set(this.wanted());
    for (const [frame, entry] of this.frames) {
      if (entry.loading && !entry.urgent && !wanted.has(frame)) this.drop(frame);
    }
  }

  // The server does not know this video or its boxes: it was restarted (or this page's session
  // ended), and only a reload registers them again. Said in one line instead of "Loading frame..."
  // forever; the next run of the page (any widget) registers them again too (see found).
  // ``verdictOn``: the frame of a verdict that was not kept (said until the reload, whatever comes after).
  lost(verdictOn = null) {
    // a verdict given while the server was away (a fetch that failed says nothing) is no more kept
    verdictOn ??= [...this.unsent.values()][0]?.frame ?? null;
    for (const { frame, assertion, stored } of this.unsent.values()) {
      if (this.lane[assertion]) this.showVerdict(this.lane[assertion], frame, stored);
    }
    this.unsent.clear();
    if (verdictOn !== null) {
      this.goneText.textContent = `The app was restarted and did not keep the verdict on frame ${number(verdictOn)}: ` +
        "reload the page and give it again.";
    } else if (!this.gone) this.goneText.textContent = "The app was restarted: reload the page to go on reviewing.";
    if (!this.gone) [...this.frames].filter(([, entry]) => !entry.ready).forEach(([frame]) => this.drop(frame));
    this.gone = true;
    this.render();
  }

  found() {
    this.gone = false;
    this.render();
    this.prefetch();
  }

  // A reload opens the frame on screen: the page's URL may still name an older one (the move was
  // not heard: the server that would have heard it is gone).
  reload() {
    const url = new URL(window.location.href);
    url.searchParams.set("frame", this.current);
    window.location.assign(url.href);
  }

  // A frame that failed to load stays marked for a while (it is not asked for in a loop), then is
  // asked for again.
  forgetLater(frame, entry) {
    const failures = (this.failures.get(frame) ?? 0) + 1;
    this.failures.set(frame, failures);
    entry.failed = true;
    setTimeout(() => {
      if (this.frames.get(frame) !== entry) return;
      this.frames.delete(frame);
      this.prefetch();
    }, retryDelay(failures));
  }

  // Every frame that failed is asked for again now: the page ran, so its video is registered again
  // however long the last failure said to wait.
  retryFailed() {
    if (!this.failures.size) return;
    for (const frame of this.failures.keys()) if (this.frames.get(frame)?.failed) this.frames.delete(frame);
    this.failures.clear();
    this.prefetch();
  }

  // Every box of the video; after a failure, asked for again later, or at once when the page runs.
  loadBoxes(url, failures = 0) {
    const attempt = (this.boxesAttempt = {});
    this.boxesUrl = url;
    this.boxes = null;
    this.boxesFailures = failures;
    const current = () => this.boxesAttempt === attempt;
    fetch(url).then(fetched).then((response) => response.json()).then((boxes) => {
      if (!current()) return;
      this.boxes = boxes;
      this.boxesFailures = 0;
      this.render();
    }, (error) => {
      if (!current()) return;
      this.boxesFailures = failures + 1;
      if (error?.status === GONE) return this.lost(); // asked for again when the page runs (update)
      setTimeout(() => current() && this.loadBoxes(url, failures + 1), retryDelay(failures + 1));
    });
  }

  // Frame ``frame``'s boxes: [x0, y0, x1, y1, score, class] each.
  boxesOf(frame) {
    if (!this.boxes) return [];
    const { offsets, boxes } = this.boxes, rows = [];
    for (let row = offsets[frame]; row < offsets[frame + 1]; row++) rows.push(boxes.slice(6 * row, 6 * row + 6));
    return rows;
  }

  // The boxes of ``frame`` that made ghost and class flip fire: {ghosts: [box], flips: [[...box, from]]}
  // (none until the boxes are here).
  fired(frame) {
    const ghosts = [], flips = [];
    if (!this.boxes) return { ghosts, flips };
    const { offsets, boxes } = this.boxes;
    for (let row = offsets[frame]; row < offsets[frame + 1]; row++) {
      if (this.ghostRows.has(row)) ghosts.push(boxes.slice(6 * row, 6 * row + 6));
      if (this.flipRows.has(row)) flips.push([...boxes.slice(6 * row, 6 * row + 6), this.flipRows.get(row)]);
    }
    return { ghosts, flips };
  }

  // Farthest from the hand first, never a frame prefetch wants.
  evict() {
    const wanted = new Set(this.wanted()), at = this.current;
    const far = [...this.frames.keys()].filter((frame) => !wanted.has(frame))
      .sort((a, b) => Math.abs(b - at) - Math.abs(a - at));
    far.slice(0, this.frames.size - CACHE_FRAMES).forEach((frame) => this.drop(frame));
  }

  // A frame is ready to show once its image is decoded: a link's frame is drawn before the video's
  // boxes (megabytes on a long video) have arrived, and its boxes are drawn when they do.
  ready(frame) {
    return this.frames.get(frame)?.ready === true;
  }

  // The frame under the hand first, then what prefetch wants, LOADING at a time (none while the
  // pointer drags over the timeline: the frames around a passing frame are not wanted for long).
  prefetch() {
    if (!this.video || !this.view || this.gone) return;
    this.fetchCurrent();
    // The frame under the hand first, alone: its decode and draw do not share the page with the
    // video's boxes (megabytes of JSON on a long video) or the frames around it.
    if (this.scrubbing || (this.urgent && !this.ready(this.current))) return;
    if (this.boxesWanted) {
      const url = this.boxesWanted;
      this.boxesWanted = null;
      this.loadBoxes(url);
    }
    for (const frame of this.wanted()) {
      if (this.loading >= LOADING) return;
      if (!this.frames.has(frame)) this.load(frame, false);
    }
  }

  // The frame under the hand, asked for at once unless it is here or on its way as such. While the
  // pointer drags over the timeline, one such fetch at a time: the frame it rests on is fetched
  // when the one in flight is done, not every frame it passed. Any other move (the release among
  // them) drops a fetch for a frame the hand left, and one made ahead of time for this frame
  // (behind the others, on the server's other reader): the frame the hand landed on waits for none.
  fetchCurrent() {
    const entry = this.frames.get(this.current);
    if (entry && (entry.ready || entry.urgent || entry.failed)) return;
    if (this.urgent && this.scrubbing) return;
    if (this.urgent) this.drop(this.urgent.frame, this.urgent.entry);
    this.drop(this.current);
    this.load(this.current, true);
  }

  // The frames to keep ready, most wanted first: the strip (i-k..i+k); the strips of the flagged
  // frames J and K go to; the frames around the hand, nearest first and looking the way it moves
  // (a held key or playback finds its next frames here); then the strips of the other flagged
  // frames nearest the hand, so any seek onto a flagged frame lands on frames that are here.
  *wanted() {
    const n = this.video.n, at = this.current, way = this.direction >= 0 ? 1 : -1, k = this.view.k;
    const strip = function* (frame) {
      for (let other = Math.max(0, frame - k); other <= Math.min(n - 1, frame + k); other++) yield other;
    };
    yield* strip(at);
    const list = this.flagged, next = this.flaggedFrom(at + 1), previous = this.flaggedFrom(at) - 1;
    for (const index of way > 0 ? [next, previous] : [previous, next]) {
      if (index >= 0 && index < list.length) yield* strip(list[index]);
    }
    for (let distance = k + 1; distance <= AHEAD; distance++) {
      if (at + way * distance >= 0 && at + way * distance < n) yield at + way * distance;
      if (distance <= BEHIND && at - way * distance >= 0 && at - way * distance < n) yield at - way * distance;
    }
    for (const flagged of this.nearestFlagged(Math.floor(FLAGGED_FRAMES / (2 * k + 1)))) yield* strip(flagged);
  }

  // The index in this.flagged of the first flagged frame at or after ``frame`` (its length if none).
  flaggedFrom(frame) {
    const list = this.flagged;
    let low = 0;
    for (let high = list.length; low < high;) {
      const middle = (low + high) >> 1;
      if (list[middle] < frame) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  // Up to ``count`` flagged frames, nearest the hand first (ahead of it on a tie).
  *nearestFlagged(count) {
    const list = this.flagged, at = this.current;
    let after = this.flaggedFrom(at);
    for (let before = after - 1; count > 0 && (before >= 0 || after < list.length); count--) {
      const ahead = after < list.length ? list[after] - at : Infinity, behind = before >= 0 ? at - list[before] : Infinity;
      yield ahead < behind || (ahead === behind && this.direction >= 0) ? list[after++] : list[before--];
    }
  }

  // ---- moving ----------------------------------------------------------------------------

  goTo(frame, report = true) {
    frame = clamp(Math.round(frame), 0, this.video.n - 1);
    if (frame !== this.current) {
      this.direction = frame > this.current ? 1 : -1;
      this.endNudge(); // another frame: its own status, not a word about the last one
    }
    const far = Math.abs(frame - this.current) > FAR;
    this.current = frame;
    if (far) this.dropStale();
    this.render();
    this.prefetch();
    if (report) this.settleSoon();
  }

  // A held key moves only onto frames that are here: it waits for the rest instead of queueing
  // steps, so letting go stops the video at once.
  step(delta, held) {
    const target = clamp(this.current + delta, 0, this.video.n - 1);
    if (target === this.current) return;
    if (held && !this.ready(target)) {
      this.direction = Math.sign(delta);
      this.prefetch();
      return;
    }
    this.goTo(target);
  }

  toFlagged(direction) {
    const index = direction > 0 ? this.flaggedFrom(this.current + 1) : this.flaggedFrom(this.current) - 1;
    if (index >= 0 && index < this.flagged.length) this.goTo(this.flagged[index]);
    // past the last (or first) flagged frame the key did nothing, silently: a reviewer read it as broken
    else this.nudge(`No flagged frame ${direction > 0 ? "after" : "before"} this one`,
      "J / K go to the previous / next flagged frame (L picks which lane)");
  }

  // "Jump to frame": the box empties and lets go of the keys (a number left there would soon
  // disagree with the frame on screen, and the arrows step frames again).
  // A number box takes "1e2" (100, which parseInt read as 1); what is not a frame number is said.
  jump() {
    const text = this.jumpBox.value.trim();
    const frame = Number(text);
    const unreadable = this.jumpBox.validity.badInput || (text !== "" && !Number.isInteger(frame));
    this.jumpBox.value = "";
    this.jumpBox.blur();
    if (unreadable) this.nudge("Not a frame number", "Type a frame number, 0 up to the video's last, then Enter");
    else if (text !== "") this.goTo(frame);
  }

  // A seek from elsewhere on the page (the embedding map), for this video only.
  onSeek({ key, frame, reveal }) {
    if (!this.video || key !== this.video.key) return;
    this.goTo(frame);
    if (reveal) this.root.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  settleSoon() {
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      if (!this.playing && this.current !== this.reported) {
        this.reported = this.current;
        this.setState("frame", this.current);
      }
    }, SETTLE_MS);
  }

  togglePlay() {
    if (this.playing) this.pause();
    else this.play();
  }

  play() {
    if (this.current >= this.video.n - 1) this.goTo(0, false);
    this.playing = true;
    this.direction = 1;
    this.playButton.classList.add("fv-playing");
    this.playText.textContent = "Pause";
    const interval = 1000 / (this.video.fps || 10);
    let due = performance.now() + interval;
    const tick = () => {
      if (!this.playing) return;
      if (this.ready(this.current + 1)) this.goTo(this.current + 1, false);
      else this.prefetch(); // buffering: wait for the next frame rather than skip it
      if (this.current >= this.video.n - 1) return this.pause();
      due = Math.max(due + interval, performance.now());
      this.playTimer = setTimeout(tick, due - performance.now());
    };
    this.playTimer = setTimeout(tick, interval);
  }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    clearTimeout(this.playTimer);
    this.playButton.classList.remove("fv-playing");
    this.playText.textContent = "Play";
    this.settleSoon();
  }

  setVerdict(verdict) {
    const frame = this.current, lane = this.answering(frame), before = lane?.verdicts[frame] ?? null;
    if (!lane) return this.nudge();
    this.given.push({ frame, name: lane.name, before });
    this.answer(lane, frame, verdict, before);
  }

  // Z, as on the Verdicts page: the last verdict given here taken back (the store puts back the one
  // before it, with its author and note), on its frame.
  undoVerdict() {
    const last = this.given.pop(), lane = last && this.lane[last.name];
    if (!lane) return this.nudge("Nothing to undo", "Z takes back the verdicts given on this page, latest first");
    if (last.frame !== this.current) this.goTo(last.frame);
    this.answer(lane, last.frame, last.before, lane.verdicts[last.frame] ?? null, true);
  }

  // ``before``: the verdict on screen until now. The store is asked to take this one only over what
  // this page has seen there (``allowed``): never over a verdict given since in another tab.
  answer(lane, frame, verdict, before, undo = false) {
    this.showVerdict(lane, frame, verdict);
    const key = `${lane.name}:${frame}`, had = this.unsent.get(key);
    const entry = { frame, verdict, assertion: lane.name, undo, allowed: had ? [...had.allowed, had.verdict] : [before],
      stored: had ? had.stored : before }; // stored: what Python's data last showed (put back if not kept)
    this.unsent.set(key, entry);
    this.trigger("verdict", { ...entry, unsent: [...this.unsent.values()] });
    this.checkServer(() => {
      this.unsent.delete(key);
      this.showVerdict(lane, frame, entry.stored); // not kept: not shown as given
      this.lost(frame);
    });
  }

  // M / F / U where nothing flags the frame (or Z with nothing to undo): said for a moment in the
  // status line (the key did nothing, and silence read as broken); the next render puts it back.
  // It takes only the room the header has left (viewer.css: .fv-nudge), cut short where that is
  // little, the whole of it in its title: it cut the video's name to "vtes..." at 1280 px.
  nudge(text = "Nothing flagged here", // short: whole beside a name at 1280 px ("... to judge here" was cut)
    help = "M / F / U answer a flag; unflagged frames are judged as spot checks on the Verdicts page") {
    this.status.replaceChildren(Object.assign(document.createElement("span"), { textContent: text }));
    this.status.classList.add("fv-nudge");
    this.status.title = `${text}: ${help}`;
    this.statusShown = null;
    clearTimeout(this.nudgeTimer);
    // held for its moment: render() runs whenever a frame or boxes arrive, and erased it at once
    this.nudging = true;
    this.nudgeTimer = setTimeout(() => { this.endNudge(); this.render(); }, 2500);
  }

  endNudge() {
    this.nudging = false;
    clearTimeout(this.nudgeTimer);
  }

  showVerdict(lane, frame, verdict) {
    this.endNudge(); // the verdict's chip, at once
    if (verdict) lane.verdicts[frame] = verdict;
    else delete lane.verdicts[frame];
    this.timelineBase = null;
    this.render();
  }

  // Whether the server still knows this page (a HEAD of the boxes, past the browser's cache): ``lost``
  // runs when it does not (404). Asked when a frame fails (an image does not say why), and at each
  // verdict: a verdict reaches the server through a run of the page, which a restarted server does
  // not make (it does not know this page's session, and says nothing), so the note says at once that
  // this one was not kept.
  checkServer(lost) {
    if (this.gone) return lost(); // known already
    if (!this.boxesUrl) return;
    fetch(this.boxesUrl, { method: "HEAD", cache: "no-store" })
      .then((response) => response.status === GONE && lost(), () => {}); // away for now: Streamlit says so
  }

  // ---- input -----------------------------------------------------------------------------

  onKey(event) {
    if (!this.video || !this.root.isConnected || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    // Letters are left alone only where they are text; arrows also where a widget moves with them
    // (a slider, a radio group...): a click on any other widget leaves the keys to the viewer.
    const target = event.target instanceof Element ? event.target : null;
    if (target?.closest(ARROWS.has(event.key) ? ARROW_WIDGETS : TEXT_FIELDS)) return;
    if (event.key === " " && target?.closest(SPACE_WIDGETS) && !this.root.contains(target)) return;
    const n = this.video.n;
    const actions = {
      ArrowRight: () => this.step(event.shiftKey ? 10 : 1, event.repeat),
      ArrowLeft: () => this.step(event.shiftKey ? -10 : -1, event.repeat),
      Home: () => this.goTo(0),
      End: () => this.goTo(n - 1),
      " ": () => this.togglePlay(),
      j: () => this.toFlagged(-1),
      k: () => this.toFlagged(1),
      l: () => this.followNext(),
      m: () => this.setVerdict("miss"),
      f: () => this.setVerdict("false_alarm"),
      u: () => this.setVerdict("unsure"),
      z: () => this.undoVerdict(),
      "+": () => this.zoomIn(),
      "=": () => this.zoomIn(),
      "-": () => this.zoomBy(-1),
      0: () => this.zoomBy(-ZOOMS.length),
    };
    const action = actions[event.key.length === 1 ? event.key.toLowerCase() : event.key];
    if (!action) return;
    event.preventDefault();
    action();
  }

  onClick(event) {
    const slot = event.target.closest(".fv-slot");
    if (slot) return this.goTo(Number(slot.dataset.frame));
    const laneKey = event.target.closest("button.fv-lane-key");
    if (laneKey) {
      this.follow(laneKey.dataset.lane);
      this.timelineBase = null;
      this.render();
      return this.prefetch();
    }
    const chip = event.target.closest(".fv-chip");
    if (chip) {
      this.chosen = { frame: this.current, name: chip.dataset.lane };
      return this.render();
    }
    const action = event.target.closest("[data-action]")?.dataset.action;
    const actions = {
      prev: () => this.step(-1, false),
      next: () => this.step(1, false),
      "prev-flagged": () => this.toFlagged(-1),
      "next-flagged": () => this.toFlagged(1),
      play: () => this.togglePlay(),
      miss: () => this.setVerdict("miss"),
      false_alarm: () => this.setVerdict("false_alarm"),
      unsure: () => this.setVerdict("unsure"),
      clear: () => this.setVerdict(null),
      "zoom-in": () => this.zoomIn(),
      "zoom-out": () => this.zoomBy(-1),
      "zoom-fit": () => this.zoomBy(-ZOOMS.length),
      reload: () => this.reload(),
    };
    actions[action]?.();
  }

  listenTimeline() {
    const frameAt = (event) => {
      const box = this.timeline.getBoundingClientRect();
      return clamp(Math.floor(((event.clientX - box.left) / box.width) * this.video.n), 0, this.video.n - 1);
    };
    this.listen(this.timeline, "pointerdown", (event) => {
      this.timeline.setPointerCapture(event.pointerId);
      this.scrubbing = true;
      this.goTo(frameAt(event));
    });
    this.listen(this.timeline, "pointermove", (event) => {
      if (!this.video) return;
      const frame = frameAt(event);
      if (this.scrubbing) this.goTo(frame);
      this.showTip(frame, event);
    });
    const release = (event) => {
      if (!this.scrubbing) return;
      this.scrubbing = false;
      if (event.type === "pointerup") this.goTo(frameAt(event)); // the frame let go on, asked for at once...
      this.prefetch(); // ...then the frames around it
    };
    this.listen(this.timeline, "pointerup", release);
    this.listen(this.timeline, "pointercancel", release);
    this.listen(this.timeline, "pointerleave", () => (this.tip.hidden = true));
  }

  showTip(frame, event) {
    const parts = [`frame ${number(frame)}`, plural(this.view.counts[frame], "box", "boxes")];
    for (const lane of this.firing(frame)) {
      const verdict = lane.verdicts[frame];
      parts.push(`${lane.label}: ${this.describe(lane.name, frame)}${verdict ? ` (${VERDICT_NAMES[verdict]})` : ""}`);
    }
    if (this.picks.has(frame)) parts.push("selected");
    this.tip.textContent = parts.join(" · ");
    const box = this.timeline.getBoundingClientRect();
    this.tip.style.left = `${clamp(event.clientX - box.left, 80, box.width - 80)}px`;
    this.tip.hidden = false;
  }

  listenFrame() {
    let pan = null;
    this.listen(this.canvas, "dblclick", (event) => {
      const [x, y] = this.canvasPoint(event);
      this.zoomBy(this.zoom.level === ZOOMS.length - 1 ? -ZOOMS.length : 1, x, y);
    });
    this.listen(this.canvas, "wheel", (event) => {
      if (!event.ctrlKey) return; // plain wheel scrolls the page
      event.preventDefault();
      const [x, y] = this.canvasPoint(event);
      this.zoomBy(event.deltaY < 0 ? 1 : -1, x, y);
    }, { passive: false });
    this.listen(this.canvas, "pointerdown", (event) => {
      if (this.zoom.level === 0) return;
      this.canvas.setPointerCapture(event.pointerId);
      pan = { x: event.clientX, y: event.clientY, cx: this.zoom.cx, cy: this.zoom.cy };
      this.canvas.classList.add("fv-panning");
    });
    this.listen(this.canvas, "pointermove", (event) => {
      if (!pan) return;
      const scale = this.scale() / this.dpr;
      this.zoom.cx = pan.cx - (event.clientX - pan.x) / scale;
      this.zoom.cy = pan.cy - (event.clientY - pan.y) / scale;
      this.render();
    });
    this.listen(this.canvas, "pointerup", () => {
      pan = null;
      this.canvas.classList.remove("fv-panning");
    });
  }

  canvasPoint(event) {
    const box = this.canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * this.dpr, (event.clientY - box.top) * this.dpr];
  }

  // ---- zoom: ZOOMS[level] times the whole-frame scale, centred on (cx, cy) in video pixels ----

  scale() {
    return (this.canvas.width / this.video.width) * ZOOMS[this.zoom.level];
  }

  origin() {
    const scale = this.scale(), width = this.canvas.width / scale, height = this.canvas.height / scale;
    this.zoom.cx = clamp(this.zoom.cx, width / 2, this.video.width - width / 2);
    this.zoom.cy = clamp(this.zoom.cy, height / 2, this.video.height - height / 2);
    return [this.zoom.cx - width / 2, this.zoom.cy - height / 2];
  }

  // + (key or button) on a flagged frame: into its imputed box, the thing judged (about the frame's
  // centre, a box near its edge went out of view). From the whole frame the box is centred; from a
  // zoom that shows it, the zoom goes about the box where it is on screen, so it stays there.
  zoomIn() {
    const box = (this.imputed.get(this.current) || [])[0];
    if (!box) return this.zoomBy(1);
    const centre = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2];
    if (this.zoom.level === 0) {
      this.zoomBy(1);
      [this.zoom.cx, this.zoom.cy] = centre;
      return this.render();
    }
    const [x0, y0] = this.origin(), scale = this.scale();
    const x = (centre[0] - x0) * scale, y = (centre[1] - y0) * scale;
    const shown = x >= 0 && y >= 0 && x <= this.canvas.width && y <= this.canvas.height;
    if (!shown) return this.zoomBy(1); // a box panned out of view: the hand chose to look elsewhere
    this.zoomBy(1, x, y);
    this.keepInView(box); // about its centre, a box at the frame's edge lost its outer part (x 0-60: from x 8 at 2x)
    this.render();
  }

  // Pan the least that brings the whole of ``box`` into view, where it fits (the frame's edges still bound the view).
  keepInView(box) {
    const scale = this.scale(), halfW = this.canvas.width / scale / 2, halfH = this.canvas.height / scale / 2;
    if (box[2] - box[0] <= 2 * halfW) this.zoom.cx = clamp(this.zoom.cx, box[2] - halfW, box[0] + halfW);
    if (box[3] - box[1] <= 2 * halfH) this.zoom.cy = clamp(this.zoom.cy, box[3] - halfH, box[1] + halfH);
  }

  zoomBy(steps, x = this.canvas.width / 2, y = this.canvas.height / 2) {
    const [x0, y0] = this.origin(), before = this.scale();
    const pointX = x0 + x / before, pointY = y0 + y / before; // stays under the pointer
    this.zoom.level = clamp(this.zoom.level + steps, 0, ZOOMS.length - 1);
    const after = this.scale();
    this.zoom.cx = pointX - x / after + this.canvas.width / after / 2;
    this.zoom.cy = pointY - y / after + this.canvas.height / after / 2;
    this.zoomText.textContent = `${Math.round(ZOOMS[this.zoom.level] * 100)}%`;
    this.canvas.classList.toggle("fv-zoomed", this.zoom.level > 0);
    this.render();
  }

  // ---- layout and drawing ----------------------------------------------------------------

  // The frame gets what the viewport leaves below the page's top (title, header) once the
  // controls, timeline and strip have their room: the frame, its timeline and its neighbours are
  // on screen together when the page opens. Where that leaves the frame under COMFORTABLE_HEIGHT
  // (a 1280x720 screen drew it 320x240), the strip and the keys line go below the fold as far as needed.
  layout() {
    if (!this.video || !this.view) return;
    const width = this.root.clientWidth;
    if (!width || (width === this.size.width && window.innerHeight === this.size.height)) return;
    this.size = { width, height: window.innerHeight };
    this.dpr = window.devicePixelRatio || 1;
    this.setCanvasSize(this.timeline, width, TIMELINE_HEIGHT + LANE_HEIGHT * this.lanes.length);
    this.buildSlots(Math.min(2 * this.view.k + 1, this.video.n));
    const aspect = this.video.height / this.video.width;
    const others = this.root.offsetHeight - this.stage.offsetHeight, room = this.room() - 16;
    const below = this.strip.offsetHeight + this.keys.offsetHeight; // what may go below the fold
    const all = room - others, most = room - others + below;
    // never smaller in a taller window: up to COMFORTABLE_HEIGHT the strip makes room, past it the frame grows alone
    const height = Math.round(Math.min(width * aspect, Math.max(MIN_HEIGHT, all, Math.min(most, COMFORTABLE_HEIGHT))));
    this.setCanvasSize(this.canvas, Math.round(height / aspect), height);
    this.timelineBase = null;
    this.render();
  }

  // The height from the viewer's top to the bottom of the screen with the page scrolled to its top
  // (Streamlit scrolls its main section, not the window).
  room() {
    let box = this.root.parentElement;
    while (box && !/(auto|scroll)/.test(getComputedStyle(box).overflowY)) box = box.parentElement;
    if (!box) return window.innerHeight - this.root.getBoundingClientRect().top - window.scrollY;
    return box.getBoundingClientRect().bottom - this.root.getBoundingClientRect().top - box.scrollTop;
  }

  setCanvasSize(canvas, width, height) {
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    canvas.width = Math.round(width * this.dpr);
    canvas.height = Math.round(height * this.dpr);
  }

  render() {
    if (!this.video || !this.view || !this.canvas.width) return;
    const frame = this.current, entry = this.frames.get(frame), ready = this.ready(frame);
    this.label.textContent = `Frame ${number(frame)} / ${number(this.video.n - 1)}`;
    if (ready) {
      const [x0, y0] = this.origin();
      this.draw(this.canvas, entry, frame, this.scale(), x0, y0, 1);
      this.root.dataset.frame = frame; // the frame whose image is on screen (tests and benchmarks wait on it)
      this.root.dataset.boxes = this.boxes ? "drawn" : "loading"; // and whether its boxes are drawn on it
      this.root.dataset.zoom = `${ZOOMS[this.zoom.level]} ${Math.round(this.zoom.cx)} ${Math.round(this.zoom.cy)}`; // zoom, centre
      if (this.announcing !== null) this.announceShown(this.announcing); // the hand may have moved on: drawn is drawn
    }
    this.loadingNote.hidden = ready || this.gone;
    this.goneNote.hidden = !this.gone;
    this.root.dataset.gone = this.gone;
    if (frame !== this.announced) {
      this.announced = frame;
      window.dispatchEvent(new CustomEvent("fv:frame", { detail: { key: this.video.key, frame } }));
    }
    this.canvas.classList.toggle("fv-stale", !ready);
    this.renderStatus(frame);
    this.renderStrip();
    this.drawTimeline();
    this.root.dataset.view = this.view.id;
    this.root.dataset.flagged = this.flagCount;
  }

  // Tell the server a just-sent viewer has its first frame on screen (named by the frame it was sent
  // to, which the page waits on): the page draws the rest of itself only then
  // (ui/viewer/frames.wait_until_shown), so it does not hold up this frame.
  announceShown(frame) {
    this.announcing = null;
    const url = `${this.video.frames}${frame}/shown`;
    // once painted (the task after the next frame's paint): said at the draw, the page's next elements
    // came in before the paint and held it up by their own drawing (~80 ms on the 1080p video)
    requestAnimationFrame(() => setTimeout(() => fetch(url, { method: "POST" }).catch(() => {}), 0)); // unheard: the page waits less long
  }

  // What ``name``'s lane found on ``frame``, in a few words (``brief``: fewer, for a chip beside others).
  describe(name, frame, brief = false) {
    const missing = (this.imputed.get(frame) || []).length;
    if (name === "flicker") return brief ? `${missing} missing` : `${plural(missing, "object", "objects")} missing`;
    if (!this.boxes) return "";
    const { ghosts, flips } = this.fired(frame);
    if (name === "ghost") return brief ? plural(ghosts.length, "box", "boxes") : plural(ghosts.length, "one-frame box", "one-frame boxes");
    const texts = flips.map((box) => this.flipText(box));
    return brief && texts.length > 1 ? `${texts[0]} +${texts.length - 1}` : texts.join(", ");
  }

  // A flipped box's classes ([..., class, from]): the one its neighbours agree on, then its own here.
  flipText(box) {
    const name = (cls) => this.view.names[cls] ?? cls;
    return `${name(box[6])} \u2192 ${name(box[5])}`;
  }

  // "Flagged:" and a chip per lane that flags the frame (the one a verdict answers outlined; a
  // click on another makes the verdict answer that one), or that nothing flags it.
  renderStatus(frame) {
    if (this.nudging) return;
    const firing = this.firing(frame), answer = this.answering(frame), several = this.lanes.length > 1;
    this.status.className = `fv-status ${firing.length ? "fv-flagged" : "fv-clean"}${several ? " fv-several" : ""}`;
    // The chips are built anew only when they change: a click needs the same element under
    // mousedown and mouseup, and render() runs whenever a frame or the boxes arrive.
    const chips = firing.map((lane) => {
      const found = this.describe(lane.name, frame, several); // beside others, only the answered chip says more
      return { lane, answered: lane === answer, full: this.describe(lane.name, frame),
               text: !several ? found : SHORT[lane.name], detail: several && found && lane === answer ? ` \u00b7 ${found}` : "" };
    });
    const spot = firing.length ? undefined : this.lanes[0].verdicts[frame]; // lanes[0]: flicker, whose spot checks these are
    const shown = JSON.stringify([several, spot, chips.map((c) => [c.lane.name, c.answered, c.text, c.detail, c.full])]);
    if (shown !== this.statusShown) {
      this.statusShown = shown;
      this.status.title = ""; // a nudge's, gone with it (each chip has its own)
      if (!firing.length) {
        this.status.textContent = (several ? "Not flagged" : "No flicker") + (spot ? ` \u00b7 spot check: ${SPOT_CHECK[spot]}` : "");
      } else {
        const word = Object.assign(document.createElement("span"), { className: "fv-flagged-word", textContent: "Flagged:" });
        this.status.replaceChildren(...(several ? [] : [word]), ...chips.map(({ lane, answered, text, detail, full }) => {
          const chip = document.createElement("span"); // "Flagged:" beside several chips would crowd the line
          chip.className = `fv-chip${answered ? " fv-answer" : ""}`;
          chip.dataset.lane = lane.name;
          chip.style.setProperty("--lane", rgb(lane.color));
          chip.textContent = text;
          if (detail) { // what the answered lane found: left out where the line is narrow (viewer.css), never the names
            const more = document.createElement("span");
            more.className = "fv-chip-detail";
            more.textContent = detail;
            chip.append(more);
          }
          chip.title = `${lane.label}: ${full} (${lane.help})` + (firing.length > 1 ? ". Click: the verdict answers this one" : "");
          return chip;
        }));
      }
    }
    this.root.dataset.firing = firing.map((lane) => lane.name).join(",");
    this.verdictBox.classList.toggle("fv-off", !answer);
    const verdict = answer?.verdicts[frame];
    this.verdictBox.dataset.verdict = verdict || "";
    this.verdictBox.dataset.assertion = answer?.name || "";
    if (answer) {
      this.yes.textContent = YES[answer.name];
      this.yes.parentElement.title = YES_HELP[answer.name];
    }
    for (const button of this.verdictBox.querySelectorAll("button")) {
      button.classList.toggle("fv-chosen", button.dataset.action === verdict);
      button.setAttribute("aria-pressed", button.dataset.action === verdict);
      button.hidden = button.dataset.action === "clear" && !verdict;
    }
  }

  // One frame with its boxes onto ``canvas``: video pixels (x, y) land at ((x - x0) * scale, (y - y0) * scale).
  draw(canvas, entry, frame, scale, x0, y0, ink) {
    const context = canvas.getContext("2d"), view = this.view, dpr = this.dpr * ink;
    const image = entry.image, sx = image.naturalWidth / this.video.width;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.imageSmoothingEnabled = scale / this.dpr < 2; // zoomed in, pixels stay pixels
    context.drawImage(image, x0 * sx, y0 * sx, (canvas.width / scale) * sx, (canvas.height / scale) * sx,
      0, 0, canvas.width, canvas.height);
    const place = ([ax, ay, bx, by]) => [(ax - x0) * scale, (ay - y0) * scale, (bx - ax) * scale, (by - ay) * scale];
    const labels = [], marks = []; // the tags, drawn over every box; the marked boxes' placed first (the things judged)
    for (const [ax, ay, bx, by, score, cls] of this.boxesOf(frame)) {
      if (score < view.min_score) continue;
      const color = view.palette[cls % view.palette.length], box = place([ax, ay, bx, by]);
      context.setLineDash([]);
      context.lineWidth = 2 * dpr;
      context.strokeStyle = rgb(color);
      context.strokeRect(...box);
      labels.push({ text: `${view.names[cls] ?? cls} ${score.toFixed(2)}`, color, box, sides: TAG_SIDES.box });
    }
    for (const imputed of this.imputed.get(frame) || []) {
      const box = place(imputed);
      context.setLineDash([9 * dpr, 9 * dpr]);
      context.lineWidth = 3 * dpr;
      context.strokeStyle = rgb(view.imputed_color);
      context.strokeRect(...box);
      context.setLineDash([]);
      marks.push({ text: "imputed", color: view.imputed_color, box, sides: TAG_SIDES.mark });
    }
    marks.push(...this.drawFired(context, frame, place, dpr));
    if (ink === 1) {
      const spots = drawTags(context, [...marks, ...labels], this.dpr);
      canvas.dataset.tags = JSON.stringify(spots.map((spot) => spot.map(Math.round))); // where each went, marks first (tests)
    }
    const answer = this.answering(frame);
    if (ink === 1 && answer) {
      context.lineWidth = 6 * dpr;
      context.strokeStyle = rgb(answer.color);
      context.strokeRect(0, 0, canvas.width, canvas.height);
    }
  }

  // The boxes that made ghost and class flip fire: a ghost box outlined (dashed, a little outside
  // its own box), a flipped box outlined with both class names under it. Gives their tags.
  drawFired(context, frame, place, dpr) {
    const around = 4 * dpr, tags = [], outline = (box, color, dash, text) => {
      const [x, y, w, h] = place(box), ring = [x - around, y - around, w + 2 * around, h + 2 * around];
      context.setLineDash(dash);
      context.lineWidth = 2.5 * dpr;
      context.strokeStyle = rgb(color);
      context.strokeRect(...ring);
      context.setLineDash([]);
      tags.push({ text, color, box: ring, sides: TAG_SIDES.mark });
    };
    const { ghosts, flips } = this.fired(frame);
    if (this.lane.ghost) for (const box of ghosts) outline(box, this.lane.ghost.color, [5 * dpr, 4 * dpr], "ghost");
    const flip = this.lane["class-flip"];
    if (flip) for (const box of flips) outline(box, flip.color, [], this.flipText(box));
    return tags;
  }

  // i-k .. i+k (k is the assertion's half window), kept inside the video: no empty slots at the ends.
  renderStrip() {
    const n = this.video.n, count = Math.min(2 * this.view.k + 1, n);
    const first = clamp(this.current - this.view.k, 0, n - count);
    if (!this.slots || this.slots.length !== count) this.buildSlots(count);
    this.slots.forEach(({ slot, canvas, label }, position) => {
      const frame = first + position, offset = frame - this.current;
      slot.dataset.frame = frame;
      slot.classList.toggle("fv-current", offset === 0);
      const firing = this.firing(frame);
      slot.classList.toggle("fv-flagged", firing.length > 0);
      if (firing.length) slot.style.setProperty("--lane", rgb(firing[0].color));
      label.textContent = `${offset === 0 ? "i" : `i${offset > 0 ? "+" : "-"}${Math.abs(offset)}`} · frame ${number(frame)}`;
      const entry = this.frames.get(frame), context = canvas.getContext("2d");
      if (this.ready(frame)) this.draw(canvas, entry, frame, canvas.width / this.video.width, 0, 0, 0.6);
      else {
        context.fillStyle = "#e6e8ee";
        context.fillRect(0, 0, canvas.width, canvas.height);
      }
    });
  }

  buildSlots(count) {
    const gap = 8, aspect = this.video.width / this.video.height;
    const width = Math.floor(Math.min(STRIP_HEIGHT * aspect, (this.root.clientWidth - gap * (count - 1)) / count - 6));
    this.strip.replaceChildren();
    this.slots = Array.from({ length: count }, () => {
      const slot = document.createElement("div"), canvas = document.createElement("canvas"), label = document.createElement("div");
      slot.className = "fv-slot";
      slot.title = "Show this frame";
      label.className = "fv-slot-label";
      this.setCanvasSize(canvas, width, Math.round(width / aspect));
      slot.append(canvas, label);
      this.strip.append(slot);
      return { slot, canvas, label };
    });
  }

  frameX(frame, width) {
    return ((frame + 0.5) / this.video.n) * width;
  }

  drawTimeline() {
    const canvas = this.timeline, context = canvas.getContext("2d");
    if (!this.timelineBase) this.timelineBase = this.timelineLayer(canvas.width, canvas.height);
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(this.timelineBase, 0, 0);
    const x = this.frameX(this.current, canvas.width);
    this.drawCountLabel(context, canvas.width, x);
    context.fillStyle = CURSOR_COLOR;
    context.fillRect(x - this.dpr, 0, 2 * this.dpr, canvas.height);
  }

  // "N boxes" above the count line (the line never runs under it), at the left end unless the cursor
  // crosses it there (the first frames): then at the right end.
  drawCountLabel(context, width, cursorX) {
    const dpr = this.dpr, margin = 4 * dpr, gap = 3 * dpr;
    context.font = `${10 * dpr}px sans-serif`;
    const textWidth = context.measureText(this.countLabel).width;
    const crossed = cursorX + gap > margin && cursorX - gap < margin + textWidth;
    context.fillStyle = "rgba(80, 84, 96, 0.8)";
    context.textBaseline = "bottom";
    context.fillText(this.countLabel, crossed ? width - margin - textWidth : margin, (COUNT_TOP - 2) * dpr);
    context.textBaseline = "alphabetic";
  }

  // Everything but the cursor and the count's label, drawn once per change of thresholds, verdicts or size: boxes per
  // frame (max per pixel column when frames outnumber pixels), flags and picks above, verdicts below.
  timelineLayer(width, height) {
    const layer = document.createElement("canvas");
    layer.width = width;
    layer.height = height;
    const context = layer.getContext("2d"), n = this.video.n, dpr = this.dpr, counts = this.view.counts;
    const graph = TIMELINE_HEIGHT * dpr, top = COUNT_TOP * dpr, bottom = graph - 6 * dpr;
    const most = counts.reduce((a, b) => Math.max(a, b), 1);
    context.fillStyle = "rgba(128, 132, 149, 0.09)";
    context.fillRect(0, 0, width, height);
    const columns = Math.min(n, Math.floor(width));
    context.beginPath();
    for (let column = 0; column < columns; column++) {
      const from = Math.floor((column * n) / columns), to = Math.max(from + 1, Math.floor(((column + 1) * n) / columns));
      let value = 0;
      for (let frame = from; frame < to; frame++) value = Math.max(value, counts[frame]);
      const x = ((column + 0.5) / columns) * width, y = bottom - (value / most) * (bottom - top);
      if (column === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    }
    context.strokeStyle = COUNT_COLOR;
    context.lineWidth = 1.5 * dpr;
    context.stroke();
    this.countLabel = plural(most, "box", "boxes"); // drawn with the cursor, which it keeps clear of (drawCountLabel)
    const mark = (frame, y, color, radius) => {
      context.fillStyle = color;
      context.beginPath();
      context.arc(this.frameX(frame, width), y, radius * dpr, 0, 2 * Math.PI);
      context.fill();
    };
    const followed = (frame) => (this.target === ALL ? this.firing(frame)[0] : this.lane[this.target]).color;
    for (const frame of this.flagged) { // what J / K go to, faintly through the graph
      context.fillStyle = `rgba(${followed(frame).join(",")}, 0.25)`;
      context.fillRect(this.frameX(frame, width) - 0.5 * dpr, 0, Math.max(1, dpr), graph);
    }
    for (const frame of this.picks) mark(frame, 12 * dpr, PICK_COLOR, 2.5);
    this.lanes.forEach((lane, row) => this.drawLane(context, lane, graph + row * LANE_HEIGHT * dpr, width));
    return layer;
  }

  // One assertion's lane: its flagged frames as bars in its colour, its verdicts as dots on them.
  drawLane(context, lane, y, width) {
    const dpr = this.dpr, height = LANE_HEIGHT * dpr, followed = this.target === ALL || this.target === lane.name;
    const color = lane.color.join(","), bar = Math.max(1.5 * dpr, width / this.video.n);
    context.fillStyle = `rgba(${color}, ${followed ? 0.16 : 0.07})`;
    context.fillRect(0, y + dpr, width, height - 2 * dpr);
    context.fillStyle = `rgba(${color}, ${followed ? 1 : 0.55})`;
    for (const frame of lane.flagged) context.fillRect(this.frameX(frame, width) - bar / 2, y + 2 * dpr, bar, height - 4 * dpr);
    for (const [frame, verdict] of Object.entries(lane.verdicts)) {
      context.beginPath();
      context.arc(this.frameX(Number(frame), width), y + height / 2, 3.5 * dpr, 0, 2 * Math.PI);
      context.fillStyle = VERDICT_COLORS[verdict];
      context.fill();
      context.lineWidth = dpr;
      context.strokeStyle = "#fff";
      context.stroke();
    }
  }
}
