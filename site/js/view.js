// The map view: world coordinates are the normalised map ([0, 1]², y up);
// screen coordinates are CSS pixels (y down). zoom 1 fits the unit square.

export const MIN_ZOOM = 0.5;
export const MAX_ZOOM = 4000;

export class View {
  constructor() {
    this.cx = 0.5;
    this.cy = 0.5;
    this.zoom = 1;
    this.width = 1;
    this.height = 1;
  }

  resize(width, height) {
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
  }

  /** CSS pixels per map unit. */
  get scale() {
    return Math.min(this.width, this.height) * 0.92 * this.zoom;
  }

  toScreen(x, y) {
    const s = this.scale;
    return [this.width / 2 + (x - this.cx) * s, this.height / 2 - (y - this.cy) * s];
  }

  toWorld(sx, sy) {
    const s = this.scale;
    return [this.cx + (sx - this.width / 2) / s, this.cy - (sy - this.height / 2) / s];
  }

  /** Move by a screen offset (dragging right moves the map right). */
  panBy(dx, dy) {
    const s = this.scale;
    this.cx -= dx / s;
    this.cy += dy / s;
    this.clampCentre();
  }

  /** Multiply zoom by factor, keeping the world point under (sx, sy) fixed. */
  zoomAt(sx, sy, factor) {
    const [wx, wy] = this.toWorld(sx, sy);
    this.zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, this.zoom * factor));
    const s = this.scale;
    this.cx = wx - (sx - this.width / 2) / s;
    this.cy = wy + (sy - this.height / 2) / s;
    this.clampCentre();
  }

  set(cx, cy, zoom) {
    this.cx = cx;
    this.cy = cy;
    this.zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom));
    this.clampCentre();
  }

  /** Keep the map's centre within reach: the view may not wander off the map. */
  clampCentre() {
    this.cx = Math.min(1.2, Math.max(-0.2, this.cx));
    this.cy = Math.min(1.2, Math.max(-0.2, this.cy));
  }

  /** World rectangle in view: [x0, y0, x1, y1]. */
  bounds() {
    const [x0, y1] = this.toWorld(0, 0);
    const [x1, y0] = this.toWorld(this.width, this.height);
    return [x0, y0, x1, y1];
  }
}

/** Smooth step 0..1 for fly-to animations. */
export function ease(t) {
  return t < 0.5 ? 4 * t * t * t : 1 - Math.pow(-2 * t + 2, 3) / 2;
}

/** View state at fraction t of a flight (zoom interpolated in log space). */
export function interpolateView(from, to, t) {
  const e = ease(Math.min(1, Math.max(0, t)));
  return {
    cx: from.cx + (to.cx - from.cx) * e,
    cy: from.cy + (to.cy - from.cy) * e,
    zoom: Math.exp(Math.log(from.zoom) + (Math.log(to.zoom) - Math.log(from.zoom)) * e),
  };
}
