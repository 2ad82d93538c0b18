// The Verdicts page's review queue (st.components.v2, plain JS, no build step).
//
// Python sends the queue (its frames in order, each with its dashed boxes, and the verdicts given so
// far) and three addresses: the frames' JPEGs and the video's boxes (the viewer's routes, fetched as
// Review fetches them) and where verdicts go (ui/verdict_queue/routes.py). A verdict, by key or
// click, draws the next queued frame at once (its JPEG was loaded ahead) and is posted in the
// background, one request after another, so an Undo never overtakes the verdict it reverts. The
// page's figures catch up on a rerun: asked for with "Update the estimates", by itself once the plan
// is done, and when the frames this run sent run out. Holding Left / Right (or the i-1 / i+1
// buttons) shows the frame before / after with this frame's dashed boxes on it: where the
// neighbours saw the object.

const PRELOAD = 6; // queued frames after the one on screen whose JPEGs are loaded ahead
const KEEP_IMAGES = 40;
const HOVER_REST_MS = 60; // a pointer this long on an Open in Review link asks for its frame (onLinkHover)
const RETRY_MS = 1000; // the boxes, asked for again after a failure (doubled each time, up to 30 s)
const PEEKS = { ArrowLeft: -1, ArrowRight: 1 };
const VERDICTS = { m: "miss", f: "false_alarm", u: "unsure" };
const VERDICT_NAMES = { miss: "true miss", false_alarm: "false alarm", unsure: "unsure" };
const SPOT_NAMES = { miss: "object missing", false_alarm: "nothing missing", unsure: "unsure" }; // a frame no flag marks
// Where a letter is text: verdict keys are left alone there (and only there). Arrows also belong to
// the widgets that move with them.
// (TEXT_FIELDS and ARROW_WIDGETS: ui/mount.js, shared with the viewer.)

export default (component) => mountOnce(component, "verdictQueue", (host) => new Queue(host));

const PHASE_MESSAGE = "Choosing the rest of the plan from your verdicts...";
const REGISTER_WAIT_MS = 30000; // a restarted server's rerun of the page, which registers the queue again
const REGISTER_ASK_MS = 2000;

class Queue {
  constructor(host) {
    const part = (name) => host.querySelector(`.vq-${name}`);
    this.root = part("root");
    this.progressText = part("progress-text");
    this.barFill = part("bar-fill");
    this.done = part("done");
    this.work = part("work");
    this.label = part("label");
    this.nameText = part("name");
    this.status = part("status");
    this.why = part("why");
    this.refreshButton = host.querySelector('[data-action="refresh"]');
    this.refreshCount = part("since");
    this.yes = part("yes");
    this.no = part("no");
    this.canvas = part("frame");
    this.loading = part("loading");
    this.note = part("note");
    this.message = part("message");
    this.images = new Map(); // frame -> {image, ready}
    this.overlay = new Map(); // frame -> verdict (null: none) given here and not yet in Python's data
    this.posts = Promise.resolve();
    this.registrations = new Set(); // callbacks waiting for the page to register this queue again (see registeredAgain)
    this.boxes = null; // every box of the video: {offsets, boxes} (see ui/viewer/frames.boxes_json)
    this.shown = null;
    this.peek = 0; // -1 / 1 while the frame before / after is held on screen
    this.size = { width: 0, height: 0 };
    this.offs = [];
    this.warmed = new Set(); // frames asked for ahead of a link to Review (see onLinkHover)
    this.listen(window, "keydown", (event) => this.onKey(event));
    this.listen(window, "keyup", (event) => event.key in PEEKS && this.peekAt(0));
    this.listen(window, "blur", () => this.peekAt(0));
    for (const button of this.root.querySelectorAll("[data-peek]")) {
      this.listen(button, "pointerdown", () => this.peekAt(Number(button.dataset.peek)));
      for (const type of ["pointerup", "pointerleave", "pointercancel"]) this.listen(button, type, () => this.peekAt(0));
    }
    this.listen(window, "resize", () => this.layout());
    this.listen(this.root, "click", (event) => this.onClick(event));
    this.listen(this.root, "mousedown", (event) => event.target.closest("button") && event.preventDefault());
    // Esc leaves any text field (the note, the plan's size or seed after Enter), so M / F / U answer again
    this.listen(window, "keydown", (event) => event.key === "Escape" && event.target instanceof HTMLElement &&
      event.target.closest(TEXT_FIELDS) && event.target.blur());
    // Enter in the note is done typing: it keeps the note and lets the keys answer (it did nothing)
    this.listen(this.note, "keydown", (event) => event.key === "Enter" && !event.isComposing && this.note.blur());
    this.listen(document, "pointerover", (event) => this.onLinkHover(event));
    this.listen(document, "pointerout", () => clearTimeout(this.hoverTimer));
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(this.root);
  }

  // A hand resting on one of this page's "Open in Review" links (the reviewed list) is about to open
  // Review at that frame: the frame's JPEG is asked for now, so Review's viewer finds it encoded on
  // the server rather than decoding it then (~50-100 ms of a 1080p long-GOP video, after the press).
  // A fetch of its own, not one of this queue's images: those are dropped when the link is followed.
  onLinkHover(event) {
    const link = event.target instanceof Element ? event.target.closest(NAV_LINKS) : null;
    clearTimeout(this.hoverTimer);
    if (!link || !this.data) return;
    const url = new URL(link.href, location.href), frame = Number(url.searchParams.get("frame"));
    if (!url.pathname.endsWith("/review") || !url.searchParams.has("frame") || !Number.isInteger(frame) ||
        frame < 0 || frame >= this.data.video.n || this.warmed.has(`${this.data.frames_url}${frame}`)) return;
    this.hoverTimer = setTimeout(() => { // resting, not passing over on its way elsewhere
      this.warmed.add(`${this.data.frames_url}${frame}`);
      fetch(`${this.data.frames_url}${frame}.jpg`, { priority: "low" }).catch(() => {});
    }, HOVER_REST_MS);
  }

  listen(target, type, handler) {
    target.addEventListener(type, handler);
    this.offs.push(() => target.removeEventListener(type, handler));
  }

  destroy() {
    clearTimeout(this.hoverTimer);
    this.resize.disconnect();
    this.offs.forEach((off) => off());
    // Frames still on their way are dropped (Chromium cancels an image's request once its src is
    // gone): a link out of this page (Open in Review) must not wait behind them on the server.
    this.shown = null; // nothing is on screen any more: a dropped frame is not asked for again
    for (const known of this.images.values()) if (!known.ready) known.image.removeAttribute("src");
    this.images.clear();
  }

  update({ data, setTriggerValue }) {
    this.trigger = setTriggerValue;
    if (this.data?.video.key !== data.video.key) {
      this.images.clear();
      this.overlay.clear();
      this.size = { width: 0, height: 0 };
    }
    this.data = data;
    showName(this.nameText, data.video.name);
    this.registrations.forEach((heard) => heard());
    if (this.boxesUrl !== data.boxes_url) this.loadBoxes(data.boxes_url);
    this.entries = new Map(data.queue.map((entry) => [entry.frame, entry]));
    this.order = data.queue.map((entry) => entry.frame);
    for (const [frame, verdict] of this.overlay) { // Python has caught up with these
      if ((data.verdicts[frame] ?? null) === verdict || !this.entries.has(frame)) this.overlay.delete(frame);
    }
    this.note.maxLength = data.note_chars;
    this.layout();
    this.show();
  }

  loadBoxes(url, failures = 0) {
    this.boxesUrl = url;
    this.boxes = null;
    fetch(url).then((response) => (response.ok ? response.json() : Promise.reject(response.status))).then((boxes) => {
      if (this.boxesUrl !== url) return;
      this.boxes = boxes;
      if (this.shown !== null) this.showFrame(this.shown);
    }, () => this.boxesUrl === url &&
      setTimeout(() => this.boxesUrl === url && this.loadBoxes(url, failures + 1), Math.min(30000, RETRY_MS * 2 ** failures)));
  }

  // Frame ``frame``'s boxes above the minimum score: [x0, y0, x1, y1, score, class] each (none until
  // the boxes are here).
  boxesOf(frame) {
    if (!this.boxes) return [];
    const { offsets, boxes } = this.boxes, rows = [];
    for (let row = offsets[frame]; row < offsets[frame + 1]; row++) {
      if (boxes[6 * row + 4] >= this.data.min_score) rows.push(boxes.slice(6 * row, 6 * row + 6));
    }
    return rows;
  }

  verdictOf(frame) {
    return this.overlay.has(frame) ? this.overlay.get(frame) : (this.data.verdicts[frame] ?? null);
  }

  // ---- verdicts ----------------------------------------------------------------------------

  give(verdict) {
    const frame = this.shown;
    if (frame === null) return;
    this.peek = 0;
    const note = this.note.value.trim();
    this.note.value = "";
    if (document.activeElement === this.note) this.note.blur(); // a click with the note focused: the keys work again
    this.overlay.set(frame, verdict);
    this.show(); // the next frame now; the server hears of it meanwhile
    // the video it was given on: refused (409) if the tab has moved on to another video meanwhile
    this.post("verdict", { frame, verdict, note, video: this.data.video.key }).then(() => this.say(""), (error) => {
      if (this.overlay.get(frame) === verdict) this.overlay.delete(frame);
      if (!this.note.value) this.note.value = note;
      this.say(`Frame ${number(frame)}: the verdict was not saved (${error.message}).`, true);
      this.show();
    });
  }

  undo() {
    this.post("undo", { video: this.data.video.key }).then(({ frame, verdict, judged_since_by: since }) => {
      if (frame === null) return this.say("Nothing of yours to undo on this video.");
      if (since !== null) { // someone judged the frame after that verdict: theirs stands
        this.overlay.set(frame, verdict ?? null);
        const theirs = verdict ? `theirs (${VERDICT_NAMES[verdict]}) stays` : "they cleared it, and it stays clear";
        this.say(`Frame ${number(frame)} was judged again since, ${since ? `by ${since}` : "in another tab"}: ` +
          `your verdict is taken back and ${theirs}.`);
        return this.entries.has(frame) ? this.show() : this.refresh();
      }
      if (!this.entries.has(frame)) { // a frame this run did not send (judged on Review, or far after the plan)
        this.say(`Undone: frame ${number(frame)}.`);
        return this.refresh();
      }
      this.overlay.set(frame, verdict ?? null);
      this.say(`Undone: frame ${number(frame)}${verdict ? ` is ${VERDICT_NAMES[verdict]} again` : ""}.`);
      this.show();
    }, (error) => this.say(`Undo failed (${error.message}).`, true));
  }

  // One request at a time, in the order given; the address is read when it is sent (a rerun may
  // have registered the queue anew meanwhile). A server that forgot the queue (404: it was
  // restarted) gets it registered again by a rerun, and the request once more: a verdict given
  // across a restart is stored, not lost.
  post(kind, body) {
    const send = async (again = true) => {
      const url = this.data.post_url;
      const response = await fetch(`${url}/${kind}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.status === 404 && again) {
        await this.registeredAgain(url);
        return send(false);
      }
      if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
      return answer;
    };
    const result = this.posts.then(() => send(), () => send());
    this.posts = result.catch(() => {});
    return result;
  }

  // Resolves once a rerun has sent this queue under an address other than ``stale`` (rejects after
  // REGISTER_WAIT_MS: the page is not running, or the app is down). The rerun is asked for again
  // every REGISTER_ASK_MS: one asked before the page has reconnected to the restarted server is lost.
  registeredAgain(stale) {
    return new Promise((resolve, reject) => {
      const ask = () => this.root.isConnected && this.trigger("refresh", Date.now()); // not from a page left since
      const asking = setInterval(ask, REGISTER_ASK_MS);
      const stop = () => {
        clearInterval(asking);
        clearTimeout(timer);
        this.registrations.delete(heard);
      };
      const heard = () => {
        if (this.data.post_url === stale) return;
        stop();
        resolve();
      };
      const timer = setTimeout(() => {
        stop();
        reject(new Error("the app was restarted: reload the page"));
      }, REGISTER_WAIT_MS);
      this.registrations.add(heard);
      ask();
    });
  }

  // A rerun of the page once every verdict given so far is stored: the figures then include them.
  refresh() {
    this.posts.then(() => this.trigger("refresh", Date.now()));
  }

  say(text, failed = false) {
    this.message.textContent = text;
    this.message.classList.toggle("vq-ok", !failed);
  }

  // ---- input -------------------------------------------------------------------------------

  onKey(event) {
    if (!this.data || !this.root.isConnected || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target instanceof Element ? event.target : null;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (!(key in VERDICTS) && key !== "z" && !(key in PEEKS)) return;
    if (target?.closest(key in PEEKS ? ARROW_WIDGETS : TEXT_FIELDS)) return;
    event.preventDefault();
    if (event.repeat) return; // a held key gives one verdict, not one per frame it would rush through
    if (key in PEEKS) return this.peekAt(PEEKS[key]);
    if (key === "z") this.undo();
    else this.give(VERDICTS[key]);
  }

  onClick(event) {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.verdict) {
      if (event.detail) button.blur(); // a pointer's click: its focus ring read as an answer on the next frame (keys keep it)
      this.give(button.dataset.verdict);
    }
    else if (button.dataset.action === "undo") this.undo();
    else if (button.dataset.action === "refresh") this.refresh();
  }

  // ---- showing -----------------------------------------------------------------------------

  peekAt(step) {
    if (step === this.peek) return;
    this.peek = step;
    if (this.shown !== null) this.showFrame(this.shown);
  }

  show() {
    const phaseDue = this.secondPhaseDue();
    const frame = phaseDue ? null : this.order.find((f) => this.verdictOf(f) === null) ?? null;
    this.shown = frame;
    this.showProgress();
    this.work.hidden = frame === null;
    if (phaseDue && this.askedPhase !== this.data) { // the plan's second half is drawn from these verdicts
      this.askedPhase = this.data;
      this.say(PHASE_MESSAGE);
      this.refresh();
    } else if (!phaseDue && this.message.textContent === PHASE_MESSAGE) {
      this.say("");
    }
    if (!phaseDue && frame === null && this.data.more && this.askedMore !== this.data) { // the frames this run did not send
      this.askedMore = this.data;
      this.say("Fetching the next frames of the queue...");
      this.refresh();
    }
    this.root.querySelectorAll("[data-peek]").forEach((button) => (button.hidden = frame === null));
    if (frame !== null) {
      this.showFrame(frame);
      this.preload(frame);
    }
  }

  // Every frame of the plan's first phase judged, and the second not here yet: it comes with a rerun.
  secondPhaseDue() {
    const planned = this.data.queue.filter((entry) => entry.planned);
    return planned.length < this.data.planned_total && planned.every((entry) => this.verdictOf(entry.frame) !== null);
  }

  showProgress() {
    const planned = this.data.queue.filter((entry) => entry.planned);
    const done = planned.filter((entry) => this.verdictOf(entry.frame) !== null).length, total = this.data.planned_total;
    // still to judge after the plan: those sent without a verdict here, and those a later run sends
    const after = this.data.queue.filter((entry) => !entry.planned && this.verdictOf(entry.frame) === null).length +
      this.data.after_plan_unsent;
    // "of the plan": Review and Fleet count the flagged frames judged instead
    // what follows the plan is optional and left out of the figures: said in the title, whole ("19 more flagged frames after
    // the plan" read as 19 frames still owed to it); the line itself is short enough for one line at 1280 px (the whole
    // sentence was cut there, "..., optional (not counted)" first and then "(and 5 earlier verdicts outside it, ...")
    const outside = this.data.counted_outside; // a larger plan than before: progress starts lower, nothing is lost
    const reviewed = `Reviewed ${done} / ${total} of the plan`;
    this.progressText.textContent = reviewed + (outside ? ` (+${number(outside)} earlier, counted)` : "") +
      (after ? ` · then ${number(after)} optional` : "");
    this.progressText.title = reviewed +
      (outside ? ` (and ${plural(outside, "earlier verdict", "earlier verdicts")} outside it, also counted)` : "") +
      (after ? ` · then ${plural(after, "optional frame", "optional frames")}, not counted` : "");
    this.barFill.style.width = `${total ? (100 * done) / total : 0}%`;
    // the figures beside the queue wait for a run: say how far behind them the verdicts are, in a short badge (a
    // longer label wrapped the row at 1280 px and shrank the frame); an undo back to what they hold is no change, and
    // a verdict after the plan none either (the figures leave it out), unless it takes out one they count
    const since = [...this.overlay].filter(([frame, verdict]) => this.entries.get(frame)?.counts &&
      (this.data.verdicts[frame] ?? null) !== verdict).length;
    this.refreshCount.textContent = since ? `+${since}` : "";
    this.refreshCount.hidden = !since;
    this.refreshButton.title = since ? `Recompute the estimates: ${plural(since, "verdict", "verdicts")} given or taken back ` +
      "since the figures beside the queue were drawn" : "Recompute the estimates with every verdict given so far";
    this.refreshButton.classList.toggle("vq-due", since > 0);
    this.root.toggleAttribute("data-figures-behind", since > 0); // the page's notes that depend on it: queue.css
    this.root.dataset.reviewed = done;
    const complete = total > 0 && done === total;
    this.done.hidden = !complete;
    if (complete) {
      // one line (the frame keeps its room); what to do next is the page's, beside the figures
      // (the page says the plan is done, and what to do next, beside the figures)
      this.done.textContent = this.shown !== null ? "Every planned frame has a verdict; flagged frames after the plan follow."
        : this.data.more ? "Every planned frame has a verdict." : "Every frame of the queue has a verdict.";
      if (this.announced === false) this.refresh(); // just finished: the figures, once, with the whole plan in them
    }
    this.announced = complete;
  }

  showFrame(frame) {
    const entry = this.entries.get(frame), missing = entry.imputed.length;
    this.label.textContent = `Frame ${number(frame)} / ${number(this.data.video.n - 1)}`;
    this.status.className = `vq-status ${entry.flagged ? "vq-flagged" : "vq-clean"}`;
    // Review's words for the same flag (its chip reads "1 object missing"); a frame after the plan is shown only once the
    // plan is done, and the lines above say so and that it is not counted (here too it cut the chip and the file name at 1280 px)
    this.status.textContent = entry.flagged ? `Flagged: ${plural(missing, "object", "objects")} missing` : "Not flagged";
    // short enough for one line in the narrowest column: the buttons below never move between frames
    const before = this.data.earlier[frame] && this.verdictOf(frame) === null ? this.data.earlier[frame] : null;
    this.why.textContent = before // judged on Review or after a plan, before this plan drew it: not a random pick then
      ? `Judged outside the plan (${(entry.flagged ? VERDICT_NAMES : SPOT_NAMES)[before]}): judge it again to count it.`
      : entry.flagged ? "Is an object really missing where the dashed box is?"
      : "Spot check: is any object missing here? Yes: M. No: F (nothing missing).";
    this.status.title = this.status.textContent; // whole, where the line cuts it
    this.why.title = this.why.textContent;
    // a spot check has no flag to call true or false: the list of reviewed frames names it so too
    this.yes.textContent = entry.flagged ? "True miss" : "Object missing";
    this.no.textContent = entry.flagged ? "False alarm" : "Nothing missing";
    const other = frame + this.peek, peeking = this.peek !== 0 && other >= 0 && other < this.data.video.n;
    if (peeking) this.label.textContent = `Frame ${number(other)} (${this.peek < 0 ? "before" : "after"} ${number(frame)})`;
    const image = this.image(peeking ? other : frame, true);
    if (image.ready) this.draw(entry, image.image, peeking ? other : frame);
    this.loading.hidden = image.ready;
    this.canvas.classList.toggle("vq-stale", !image.ready);
    this.root.classList.toggle("vq-peeking", peeking);
  }

  image(frame, now = false) {
    let known = this.images.get(frame);
    if (!known) {
      known = { image: new Image(), ready: false };
      this.images.set(frame, known);
      known.image.src = `${this.data.frames_url}${frame}.jpg${now ? "?now" : ""}`; // ?now: decoded before those fetched ahead
      known.image.decode().then(() => {
        known.ready = true;
        if (this.onScreen(frame)) this.showFrame(this.shown);
      }, () => {
        this.images.delete(frame);
        if (this.onScreen(frame)) setTimeout(() => this.onScreen(frame) && this.showFrame(this.shown), 1000); // try again
      });
    }
    return known;
  }

  onScreen(frame) {
    return this.shown !== null && this.shown + this.peek === frame;
  }

  // The next queued frames, and the frames before and after this one (for a peek).
  preload(frame) {
    const ahead = [];
    for (let index = this.order.indexOf(frame) + 1; index < this.order.length && ahead.length < PRELOAD; index++) {
      if (this.verdictOf(this.order[index]) === null) ahead.push(this.order[index]);
    }
    const around = [frame - 1, frame + 1].filter((other) => other >= 0 && other < this.data.video.n);
    [...ahead, ...around].forEach((other) => this.image(other));
    if (this.images.size > KEEP_IMAGES) {
      const wanted = new Set([frame, ...ahead, ...around]);
      for (const other of this.images.keys()) {
        if (this.images.size <= KEEP_IMAGES) break;
        if (!wanted.has(other)) this.images.delete(other);
      }
    }
  }

  // The frame gets what the screen leaves below the queue's top once its other parts have their
  // room, so the buttons stay in view without scrolling.
  layout() {
    if (!this.data) return;
    // ``others``: the height of everything but the frame (a message that appears, the plan-done note)
    const width = this.root.clientWidth, others = this.root.offsetHeight - this.canvas.offsetHeight;
    const size = { width, height: window.innerHeight, others };
    if (!width || ["width", "height", "others"].every((name) => size[name] === this.size[name])) return;
    this.size = size;
    this.dpr = window.devicePixelRatio || 1;
    const { width: videoWidth, height: videoHeight } = this.data.video, aspect = videoHeight / videoWidth;
    const height = Math.round(Math.min(width * aspect, Math.max(200, this.room() - others - 16)));
    this.canvas.style.width = `${Math.round(height / aspect)}px`;
    this.canvas.style.height = `${height}px`;
    this.canvas.width = Math.round((height / aspect) * this.dpr);
    this.canvas.height = Math.round(height * this.dpr);
    if (this.shown !== null) this.showFrame(this.shown);
  }

  // The height from the queue's top to the bottom of the screen with the page scrolled to its top
  // (Streamlit scrolls its main section, not the window).
  room() {
    let box = this.root.parentElement;
    while (box && !/(auto|scroll)/.test(getComputedStyle(box).overflowY)) box = box.parentElement;
    if (!box) return window.innerHeight - this.root.getBoundingClientRect().top - window.scrollY;
    return box.getBoundingClientRect().bottom - this.root.getBoundingClientRect().top - box.scrollTop;
  }

  // ``frame``'s image with the detector's boxes on it, and ``entry``'s dashed boxes: ``frame`` is
  // entry's own, or a neighbour's during a peek (was the object there, where the dashed box is?).
  draw(entry, image, frame) {
    const canvas = this.canvas, context = canvas.getContext("2d"), data = this.data, dpr = this.dpr;
    const peeking = frame !== entry.frame, boxes = this.boxesOf(frame);
    const scale = canvas.width / data.video.width;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
    const place = ([ax, ay, bx, by]) => [ax * scale, ay * scale, (bx - ax) * scale, (by - ay) * scale];
    const labels = [], marks = []; // the tags, drawn over every box; the dashed boxes' placed first (the thing judged)
    for (const [ax, ay, bx, by, score, cls] of boxes) {
      const color = data.palette[cls % data.palette.length], [x, y, w, h] = place([ax, ay, bx, by]);
      context.setLineDash([]);
      context.lineWidth = 2 * dpr;
      context.strokeStyle = rgb(color);
      context.strokeRect(x, y, w, h);
      labels.push({ text: `${data.names[cls] ?? cls} ${score.toFixed(2)}`, color, box: [x, y, w, h], sides: TAG_SIDES.box });
    }
    for (const box of entry.imputed) {
      const [x, y, w, h] = place(box);
      context.setLineDash([9 * dpr, 9 * dpr]);
      context.lineWidth = 3 * dpr;
      context.strokeStyle = rgb(data.imputed_color);
      context.strokeRect(x, y, w, h);
      context.setLineDash([]);
      marks.push({ text: "imputed", color: data.imputed_color, box: [x, y, w, h], sides: TAG_SIDES.mark });
    }
    const spots = drawTags(context, [...marks, ...labels], dpr);
    if (entry.flagged && !peeking) {
      context.lineWidth = 6 * dpr;
      context.strokeStyle = rgb(data.flagged_color);
      context.strokeRect(0, 0, canvas.width, canvas.height);
    }
    if (!peeking) this.root.dataset.frame = entry.frame; // the frame whose image is on screen (tests and benchmarks wait on it)
    // what is drawn, for tests: how many boxes, of which frame, and where each tag went
    const tags = JSON.stringify(spots.map((spot) => spot.map(Math.round))); // the dashed boxes' first
    Object.assign(this.canvas.dataset, { boxes: boxes.length, boxesFrame: frame, tags });
  }
}
