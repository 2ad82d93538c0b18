// The local selection's embedding map (st.components.v2, plain JS, no build step).
//
// Every frame is a point in the 2D embedding, coloured by its flicker score, selected frames ringed
// and the viewer's frame marked. Consecutive frames look alike, so they lie along curves where their
// points overlap, and a click on overlapping points used to open a neighbour of the frame meant.
// Here the points that would overlap at the current zoom are spread around their place (each in
// turn, in frame order, at the nearest free spot of a small spiral), and a click opens the frame
// whose drawn point is nearest, the one the tooltip names. The map and the viewer talk through
// window events: "fv:seek" moves the viewer, "fv:frame" says where it is, so a click waits for no
// rerun and the marker follows every step.

const RADIUS = 3.5; // a point's radius, CSS pixels
const GAP = 2 * RADIUS + 1; // drawn points are at least this far apart
const HIT = 10; // a click this close to a drawn point opens its frame
const SPIRAL_TRIES = 150;
const GOLDEN_ANGLE = Math.PI * (3 - Math.sqrt(5));
const HEIGHT = 420;
const PAD = 14;
const ZOOM_STEP = 1.6;
const MAX_ZOOM = 256;
const DRAG_PX = 4; // a press that moves less than this is a click, not a pan
const RING_COLOR = "#9467bd";
const HERE_COLOR = "#ff7f0e";
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

export default (component) => mountOnce(component, "embeddingMap", (host) => new EmbeddingMap(host));

function viridis(score) {
  const t = clamp(score, 0, 1) * (VIRIDIS.length - 1), i = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - i;
  return `rgb(${VIRIDIS[i].map((c, j) => Math.round(c + (VIRIDIS[i + 1][j] - c) * f)).join(",")})`;
}

class EmbeddingMap {
  constructor(host) {
    const part = (name) => host.querySelector(`.fm-${name}`);
    this.root = part("root");
    this.canvas = part("canvas");
    this.tip = part("tip");
    this.data = null;
    this.current = null;
    this.hover = -1;
    this.zoom = 1;
    this.offset = [0, 0]; // CSS pixels of the zoomed plane left of and above the canvas
    this.offs = [];
    this.listen(window, "fv:frame", (event) => this.onFrame(event.detail));
    this.listen(this.root, "click", (event) => this.onButton(event));
    this.listenCanvas();
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(this.root);
    // Where a frame's point is drawn, in client pixels, or null off the map (tests and benchmarks click it).
    this.root.pointOf = (frame) => this.pointOf(frame);
  }

  listen(target, type, handler, options) {
    target.addEventListener(type, handler, options);
    this.offs.push(() => target.removeEventListener(type, handler, options));
  }

  destroy() {
    this.resize.disconnect();
    this.offs.forEach((off) => off());
  }

  update({ data }) {
    const other = this.data?.key !== data.key;
    this.data = data;
    this.picks = new Set(data.selected);
    const bounds = (values) => values.reduce(([low, high], value) => [Math.min(low, value), Math.max(high, value)],
      [Infinity, -Infinity]);
    this.bounds = [bounds(data.x), bounds(data.y)];
    if (other) {
      this.current = data.frame;
      this.zoom = 1;
      this.offset = [0, 0];
    }
    this.width = 0;
    this.layout();
  }

  // ---- where points go -------------------------------------------------------------------

  layout() {
    if (!this.data) return;
    const width = this.canvas.parentElement.clientWidth;
    if (!width || width === this.width) return;
    this.width = width;
    this.dpr = window.devicePixelRatio || 1;
    this.canvas.style.height = `${HEIGHT}px`;
    this.canvas.width = Math.round(width * this.dpr);
    this.canvas.height = Math.round(HEIGHT * this.dpr);
    this.place();
  }

  // A frame's place on the zoomed plane (CSS pixels, before the pan offset): the fitted bounds fill
  // the canvas at zoom 1, larger y up.
  planePoint(frame) {
    const [[x0, x1], [y0, y1]] = this.bounds, w = (this.width - 2 * PAD) * this.zoom, h = (HEIGHT - 2 * PAD) * this.zoom;
    return [PAD + ((this.data.x[frame] - x0) / (x1 - x0 || 1)) * w, PAD + ((y1 - this.data.y[frame]) / (y1 - y0 || 1)) * h];
  }

  // Each point in frame order at its place, or, when that is closer than GAP to a point already
  // placed, at the nearest free spot of a spiral around it. Pans move every point alike, so this
  // runs on zoom and size changes only.
  place() {
    const n = this.data.x.length, cells = new Map();
    this.px = new Float32Array(n);
    this.py = new Float32Array(n);
    const cellOf = (x, y) => `${Math.floor(x / GAP)},${Math.floor(y / GAP)}`;
    const right = (this.width - 2 * PAD) * this.zoom + 2 * PAD - RADIUS, bottom = (HEIGHT - 2 * PAD) * this.zoom + 2 * PAD - RADIUS;
    const free = (x, y) => {
      if (x < RADIUS || y < RADIUS || x > right || y > bottom) return false; // spread within the map, not off it
      const gx = Math.floor(x / GAP), gy = Math.floor(y / GAP);
      for (let dx = -1; dx <= 1; dx++) {
        for (let dy = -1; dy <= 1; dy++) {
          for (const other of cells.get(`${gx + dx},${gy + dy}`) || []) {
            if ((this.px[other] - x) ** 2 + (this.py[other] - y) ** 2 < GAP * GAP) return false;
          }
        }
      }
      return true;
    };
    for (let frame = 0; frame < n; frame++) {
      const [x0, y0] = this.planePoint(frame);
      let [x, y] = [x0, y0];
      for (let turn = 1; turn <= SPIRAL_TRIES && !free(x, y); turn++) {
        const radius = 0.6 * GAP * Math.sqrt(turn);
        [x, y] = [x0 + radius * Math.cos(turn * GOLDEN_ANGLE), y0 + radius * Math.sin(turn * GOLDEN_ANGLE)];
      }
      if (!free(x, y)) [x, y] = [x0, y0]; // no room nearby (a dense crowd at this zoom): its own place
      this.px[frame] = x;
      this.py[frame] = y;
      const cell = cellOf(x, y);
      if (!cells.has(cell)) cells.set(cell, []);
      cells.get(cell).push(frame);
    }
    this.base = null;
    this.draw();
  }

  // The frame whose drawn point is nearest (canvas CSS pixels), within HIT, or -1.
  nearest(x, y) {
    let best = -1, bestDistance = HIT * HIT;
    const [ox, oy] = this.offset;
    for (let frame = 0; frame < this.px.length; frame++) {
      const distance = (this.px[frame] - ox - x) ** 2 + (this.py[frame] - oy - y) ** 2;
      if (distance <= bestDistance) [best, bestDistance] = [frame, distance];
    }
    return best;
  }

  pointOf(frame) {
    if (!this.px || frame < 0 || frame >= this.px.length) return null;
    const x = this.px[frame] - this.offset[0], y = this.py[frame] - this.offset[1];
    if (x < 0 || y < 0 || x > this.width || y > HEIGHT) return null;
    const box = this.canvas.getBoundingClientRect();
    return [box.left + x, box.top + y];
  }

  // ---- zoom and pan ----------------------------------------------------------------------

  zoomBy(factor, x = this.width / 2, y = HEIGHT / 2) {
    const zoom = clamp(this.zoom * factor, 1, MAX_ZOOM), scale = zoom / this.zoom;
    // the plane point under (x, y) stays there: plane coordinates scale about the padding corner
    this.offset = [(this.offset[0] + x - PAD) * scale + PAD - x, (this.offset[1] + y - PAD) * scale + PAD - y];
    this.zoom = zoom;
    this.clampOffset();
    this.place();
  }

  clampOffset() {
    const spare = (size) => (size - 2 * PAD) * (this.zoom - 1);
    this.offset = [clamp(this.offset[0], 0, spare(this.width)), clamp(this.offset[1], 0, spare(HEIGHT))];
  }

  onButton(event) {
    const action = event.target.closest("[data-action]")?.dataset.action;
    if (action === "zoom-in") this.zoomBy(ZOOM_STEP);
    else if (action === "zoom-out") this.zoomBy(1 / ZOOM_STEP);
    else if (action === "fit") this.zoomBy(1 / this.zoom);
  }

  listenCanvas() {
    let press = null;
    const at = (event) => {
      const box = this.canvas.getBoundingClientRect();
      return [event.clientX - box.left, event.clientY - box.top];
    };
    this.listen(this.canvas, "pointerdown", (event) => {
      this.canvas.setPointerCapture(event.pointerId);
      press = { at: at(event), offset: [...this.offset], panned: false };
    });
    this.listen(this.canvas, "pointermove", (event) => {
      const [x, y] = at(event);
      if (press && (press.panned || Math.hypot(x - press.at[0], y - press.at[1]) >= DRAG_PX)) {
        press.panned = true;
        this.canvas.classList.add("fm-panning");
        this.offset = [press.offset[0] - (x - press.at[0]), press.offset[1] - (y - press.at[1])];
        this.clampOffset();
        this.base = null;
        this.draw();
        return;
      }
      this.setHover(this.nearest(x, y), x, y);
    });
    this.listen(this.canvas, "pointerup", (event) => {
      const clicked = press && !press.panned ? this.nearest(...at(event)) : -1;
      press = null;
      this.canvas.classList.remove("fm-panning");
      if (clicked >= 0) this.seek(clicked);
    });
    this.listen(this.canvas, "pointerleave", () => this.setHover(-1));
    this.listen(this.canvas, "dblclick", (event) => this.zoomBy(ZOOM_STEP * ZOOM_STEP, ...at(event)));
    this.listen(this.canvas, "wheel", (event) => {
      if (!event.ctrlKey) return; // a plain wheel scrolls the page
      event.preventDefault();
      this.zoomBy(event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, ...at(event));
    }, { passive: false });
  }

  setHover(frame, x, y) {
    this.canvas.classList.toggle("fm-on-point", frame >= 0);
    if (frame >= 0) {
      const parts = [`frame ${frame.toLocaleString("en-US")}`, `flicker ${this.data.score[frame].toFixed(2)}`];
      if (this.picks.has(frame)) parts.push("selected");
      if (frame === this.current) parts.push("in the viewer");
      this.tip.textContent = parts.join(" · ");
      this.tip.style.left = `${clamp(x, 70, this.width - 70)}px`;
      this.tip.style.top = `${y}px`;
    }
    this.tip.hidden = frame < 0;
    if (frame !== this.hover) {
      this.hover = frame;
      this.draw();
    }
  }

  seek(frame) {
    this.current = frame;
    this.draw();
    window.dispatchEvent(new CustomEvent("fv:seek", { detail: { key: this.data.key, frame, reveal: true } }));
  }

  onFrame({ key, frame }) {
    if (!this.data || key !== this.data.key || frame === this.current) return;
    this.current = frame;
    this.draw();
  }

  // ---- drawing ---------------------------------------------------------------------------

  draw() {
    if (!this.px || !this.canvas.width) return;
    const context = this.canvas.getContext("2d"), dpr = this.dpr;
    if (!this.base) this.base = this.baseLayer();
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    context.drawImage(this.base, 0, 0);
    context.setTransform(dpr, 0, 0, dpr, 0, 0);
    const ring = (frame, radius, color, width) => {
      if (frame === null || frame < 0 || frame >= this.px.length) return;
      context.beginPath();
      context.arc(this.px[frame] - this.offset[0], this.py[frame] - this.offset[1], radius, 0, 2 * Math.PI);
      context.strokeStyle = color;
      context.lineWidth = width;
      context.stroke();
    };
    ring(this.hover, RADIUS + 2, "#31333f", 2);
    ring(this.current, RADIUS + 4, HERE_COLOR, 3);
    this.root.dataset.frame = this.current; // the frame marked (tests wait on it)
  }

  // The points and the selection's rings, redrawn on zoom, pan, size and data changes only.
  baseLayer() {
    const layer = document.createElement("canvas"), dpr = this.dpr, [ox, oy] = this.offset;
    layer.width = this.canvas.width;
    layer.height = this.canvas.height;
    const context = layer.getContext("2d");
    context.setTransform(dpr, 0, 0, dpr, 0, 0);
    context.fillStyle = "rgba(128, 132, 149, 0.07)";
    context.fillRect(0, 0, this.width, HEIGHT);
    const visible = (frame) => {
      const x = this.px[frame] - ox, y = this.py[frame] - oy;
      return x > -GAP && y > -GAP && x < this.width + GAP && y < HEIGHT + GAP;
    };
    for (let frame = 0; frame < this.px.length; frame++) {
      if (!visible(frame)) continue;
      context.beginPath();
      context.arc(this.px[frame] - ox, this.py[frame] - oy, RADIUS, 0, 2 * Math.PI);
      context.fillStyle = viridis(this.data.score[frame]);
      context.fill();
    }
    context.strokeStyle = RING_COLOR;
    context.lineWidth = 1.5;
    for (const frame of this.picks) {
      if (!visible(frame)) continue;
      context.beginPath();
      context.arc(this.px[frame] - ox, this.py[frame] - oy, RADIUS + 2, 0, 2 * Math.PI);
      context.stroke();
    }
    return layer;
  }
}
