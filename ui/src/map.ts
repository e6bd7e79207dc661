// The map: a canvas drawn with d3-geo from the bundled Natural Earth outline (world-atlas), so it
// works offline; raster tiles under it when the site configures a tile server. Markers are
// clustered with supercluster when zoomed out; pan with the mouse, a finger or the arrow keys,
// zoom with the wheel or + and -.

import { geoMercator, geoPath, type GeoPermissibleObjects } from "d3-geo";
import { feature, mesh } from "topojson-client";
import Supercluster from "supercluster";
import countries110 from "world-atlas/countries-110m.json";

export interface Marker {
  id: string;
  lon: number;
  lat: number;
  /** 0 normal, 1-4 the highest unresolved alarm grade. */
  grade: number;
  lost: boolean;
  label?: string;
}

export interface Overlay {
  kind: "line" | "area" | "point";
  coordinates: any;
  color: string;
  width?: number;
  dash?: number[];
  label?: string;
  /** For areas and points: a radius in metres (circles). */
  radiusM?: number;
}

/** Colours that read for colour-blind eyes too, each with a shape cue (grade number, ring). */
export const COLORS = {
  normal: "#1b7f3b",
  lost: "#6b6b6b",
  // White text on each reaches 4.5:1 (WCAG AA): grade 1 a dark amber, grade 2 a burnt orange.
  grade: ["#1b7f3b", "#8a6a00", "#b34700", "#c0392b", "#7b1fa2"],
  land: "#e9e4d8",
  sea: "#c9dcea",
  border: "#b8ad98",
};

export function markerColor(m: { grade: number; lost: boolean }): string {
  if (m.lost) return COLORS.lost;
  return COLORS.grade[Math.min(4, Math.max(0, m.grade))];
}

const TILE = 256;
const topo = countries110 as any;
let land: GeoPermissibleObjects = feature(topo, topo.objects.land) as any;
let borders: GeoPermissibleObjects = mesh(topo, topo.objects.countries, (a: any, b: any) => a !== b) as any;
let detailed = false;
/** Changes when the finer outline arrives: cached drawings of the coarse one are stale. */
let outlineVersion = 0;
const listeners = new Set<() => void>();

/** The finer outline (1:50m), loaded once after the first drawing. */
function loadDetail(): void {
  if (detailed) return;
  detailed = true;
  import("world-atlas/countries-50m.json").then((m) => {
    const t = (m as any).default ?? m;
    land = feature(t, t.objects.land) as any;
    borders = mesh(t, t.objects.countries, (a: any, b: any) => a !== b) as any;
    outlineVersion++;
    listeners.forEach((f) => f());
  });
}

export class MapView {
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private projection = geoMercator();
  /** Map zoom (web-map levels: 0 is the world in 256 pixels). */
  zoom = 2;
  center: [number, number] = [60, 30];
  private index: Supercluster<any, any> | null = null;
  private markers: Marker[] = [];
  overlays: Overlay[] = [];
  private tiles = new Map<string, HTMLImageElement>();
  private base: { canvas: HTMLCanvasElement; zoom: number; center: [number, number]; width: number; height: number; version: number } | null = null;
  private rebuild: number | undefined;
  private frame = 0;
  private hits: { x: number; y: number; r: number; ids: string[]; zoomTo?: number; at?: [number, number] }[] = [];
  onSelect: (id: string) => void = () => {};
  /** Frame durations (ms) of the last draws, for the performance test. */
  readonly frameTimes: number[] = [];

  constructor(
    private host: HTMLElement,
    private tileUrl: string | null = document
      .querySelector('meta[name="sealwatch-tile-url"]')
      ?.getAttribute("content") ?? null,
  ) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "map-canvas";
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute("role", "application");
    this.canvas.setAttribute(
      "aria-label",
      "Map. Arrow keys pan, plus and minus zoom, Enter opens the transit under the centre.",
    );
    host.appendChild(this.canvas);
    this.ctx = this.canvas.getContext("2d")!;
    this.bind();
    const redraw = () => this.request();
    listeners.add(redraw);
    new ResizeObserver(redraw).observe(host);
    this.request();
  }

  setMarkers(markers: Marker[]): void {
    this.markers = markers;
    // Clusters carry their highest grade and whether any device is lost (map/reduce), so a
    // frame never walks a cluster's leaves.
    this.index = new Supercluster<any, any>({
      radius: 48,
      maxZoom: 13,
      map: (p: any) => ({ grade: p.grade, lost: p.lost ? 1 : 0 }),
      reduce: (acc: any, p: any) => {
        acc.grade = Math.max(acc.grade, p.grade);
        acc.lost = Math.max(acc.lost, p.lost);
      },
    });
    this.index.load(
      markers.map((m) => ({
        type: "Feature" as const,
        geometry: { type: "Point" as const, coordinates: [m.lon, m.lat] },
        properties: { id: m.id, grade: m.grade, lost: m.lost },
      })),
    );
    this.request();
  }

  /** Centres and zooms on a box `[[w, s], [e, n]]`. */
  fit(bounds: [[number, number], [number, number]], maxZoom = 12): void {
    const [[w, s], [e, n]] = bounds;
    const width = this.canvas.clientWidth || 800;
    const height = this.canvas.clientHeight || 500;
    this.center = [(w + e) / 2, (s + n) / 2];
    const y = (lat: number) => Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360));
    const dx = Math.max(1e-6, (e - w) / 360);
    const dy = Math.max(1e-6, (y(n) - y(s)) / (2 * Math.PI));
    const z = Math.min(Math.log2((width * 0.8) / TILE / dx), Math.log2((height * 0.8) / TILE / dy));
    this.zoom = Math.max(1, Math.min(maxZoom, z));
    this.request();
  }

  fitMarkers(): void {
    const pts = this.markers;
    if (pts.length === 0) return;
    let [w, s, e, n] = [180, 90, -180, -90];
    for (const m of pts) {
      w = Math.min(w, m.lon);
      e = Math.max(e, m.lon);
      s = Math.min(s, m.lat);
      n = Math.max(n, m.lat);
    }
    // At least a few degrees across: a fleet that has only just started reporting (all near
    // one office) still shows the coast and borders around it, not a blank square of land.
    const MIN_SPAN_DEG = 6;
    const [cx, cy] = [(w + e) / 2, (s + n) / 2];
    const half = (span: number) => Math.max(span + 1, MIN_SPAN_DEG) / 2;
    const [hx, hy] = [half(e - w), half(n - s)];
    this.fit([
      [cx - hx, cy - hy],
      [cx + hx, cy + hy],
    ]);
  }

  request(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private setup(): { width: number; height: number } {
    const dpr = window.devicePixelRatio || 1;
    const width = this.host.clientWidth || 800;
    const height = this.host.clientHeight || 500;
    if (this.canvas.width !== Math.round(width * dpr) || this.canvas.height !== Math.round(height * dpr)) {
      this.canvas.width = Math.round(width * dpr);
      this.canvas.height = Math.round(height * dpr);
      this.canvas.style.width = `${width}px`;
      this.canvas.style.height = `${height}px`;
    }
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.projection
      .scale((TILE * 2 ** this.zoom) / (2 * Math.PI))
      .center(this.center)
      .translate([width / 2, height / 2]);
    return { width, height };
  }

  /** Screen position of a point. */
  project(lon: number, lat: number): [number, number] {
    return this.projection([lon, lat]) as [number, number];
  }

  draw(): void {
    const started = performance.now();
    const { width, height } = this.setup();
    const ctx = this.ctx;
    ctx.fillStyle = COLORS.sea;
    ctx.fillRect(0, 0, width, height);
    const path = geoPath(this.projection, ctx);
    if (this.tileUrl) {
      this.drawTiles(width, height);
    } else {
      this.drawBase(width, height);
    }
    if (this.zoom > 5) loadDetail();
    for (const o of this.overlays) this.drawOverlay(o, path);
    this.drawMarkers(width, height);
    this.frameTimes.push(performance.now() - started);
    if (this.frameTimes.length > 2000) this.frameTimes.splice(0, 1000);
  }

  /**
   * The land and borders. Projecting the outline is the costly part of a frame, so it is drawn
   * once into an off-screen canvas, and while the map pans or zooms that image is moved and
   * scaled; the outline is drawn again once the view has rested for a moment.
   */
  private drawBase(width: number, height: number): void {
    const dpr = window.devicePixelRatio || 1;
    const b = this.base;
    const fresh =
      b && b.zoom === this.zoom && b.center[0] === this.center[0] && b.center[1] === this.center[1] && b.width === width && b.height === height && b.version === outlineVersion;
    if (b && b.width === width && b.height === height && !fresh) {
      // Where the cached image's centre is now, and how much larger.
      const scale = 2 ** (this.zoom - b.zoom);
      const [x, y] = this.project(b.center[0], b.center[1]);
      const w = width * scale;
      const hgt = height * scale;
      this.ctx.drawImage(b.canvas, x - w / 2, y - hgt / 2, w, hgt);
      clearTimeout(this.rebuild);
      this.rebuild = window.setTimeout(() => {
        this.renderBase(width, height, dpr);
        this.request();
      }, 150);
      return;
    }
    if (!fresh) this.renderBase(width, height, dpr);
    this.ctx.drawImage(this.base!.canvas, 0, 0, width, height);
  }

  private renderBase(width: number, height: number, dpr: number): void {
    const canvas = this.base?.canvas ?? document.createElement("canvas");
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    const ctx = canvas.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const projection = geoMercator()
      .scale((TILE * 2 ** this.zoom) / (2 * Math.PI))
      .center(this.center)
      .translate([width / 2, height / 2]);
    const path = geoPath(projection, ctx);
    ctx.beginPath();
    path(land);
    ctx.fillStyle = COLORS.land;
    ctx.fill();
    ctx.beginPath();
    path(borders);
    ctx.strokeStyle = COLORS.border;
    ctx.lineWidth = 0.8;
    ctx.stroke();
    this.base = { canvas, zoom: this.zoom, center: [...this.center] as [number, number], width, height, version: outlineVersion };
  }

  private drawOverlay(o: Overlay, path: ReturnType<typeof geoPath>): void {
    const ctx = this.ctx;
    ctx.save();
    ctx.setLineDash(o.dash ?? []);
    if (o.kind === "line") {
      ctx.beginPath();
      path({ type: "LineString", coordinates: o.coordinates } as any);
      ctx.strokeStyle = o.color;
      ctx.lineWidth = o.width ?? 3;
      ctx.lineJoin = "round";
      ctx.stroke();
    } else if (o.kind === "area") {
      ctx.beginPath();
      path({ type: "Polygon", coordinates: o.coordinates } as any);
      ctx.fillStyle = o.color + "33";
      ctx.strokeStyle = o.color;
      ctx.lineWidth = 1.5;
      ctx.fill();
      ctx.stroke();
    } else {
      const [x, y] = this.project(o.coordinates[0], o.coordinates[1]);
      const metresPerPixel = (40075016 * Math.cos((o.coordinates[1] * Math.PI) / 180)) / (TILE * 2 ** this.zoom);
      const r = o.radiusM ? Math.max(4, o.radiusM / metresPerPixel) : (o.width ?? 6);
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fillStyle = o.radiusM ? o.color + "33" : o.color;
      ctx.strokeStyle = o.color;
      ctx.lineWidth = 2;
      ctx.fill();
      ctx.stroke();
      if (o.label && this.zoom > 8) {
        ctx.fillStyle = "#222";
        ctx.font = "11px system-ui, sans-serif";
        ctx.fillText(o.label, x + r + 3, y + 4);
      }
    }
    ctx.restore();
  }

  private drawMarkers(width: number, height: number): void {
    this.hits = [];
    if (!this.index) return;
    const ctx = this.ctx;
    const nw = this.projection.invert!([0, 0])!;
    const se = this.projection.invert!([width, height])!;
    const clusters = this.index.getClusters(
      [Math.max(-180, nw[0]), Math.max(-85, se[1]), Math.min(180, se[0]), Math.min(85, nw[1])],
      Math.floor(this.zoom),
    );
    ctx.font = "bold 11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const c of clusters) {
      const [lon, lat] = c.geometry.coordinates;
      const [x, y] = this.project(lon, lat);
      const p: any = c.properties;
      if (p.cluster) {
        const grade = p.grade as number;
        const lost = Boolean(p.lost);
        const n = p.point_count as number;
        const r = 12 + Math.min(18, Math.log2(n) * 3);
        ctx.beginPath();
        ctx.arc(x, y, r, 0, 2 * Math.PI);
        ctx.fillStyle = grade > 0 ? COLORS.grade[grade] : lost ? COLORS.lost : COLORS.normal;
        ctx.globalAlpha = 0.85;
        ctx.fill();
        ctx.globalAlpha = 1;
        ctx.strokeStyle = "#fff";
        ctx.lineWidth = 2;
        ctx.stroke();
        ctx.fillStyle = "#fff";
        ctx.fillText(String(n), x, y);
        const zoomTo = this.index.getClusterExpansionZoom(p.cluster_id);
        this.hits.push({ x, y, r, ids: [], zoomTo, at: [lon, lat] });
      } else {
        const r = p.grade > 0 ? 8 : 6;
        ctx.beginPath();
        ctx.arc(x, y, r, 0, 2 * Math.PI);
        ctx.fillStyle = markerColor(p);
        ctx.fill();
        ctx.strokeStyle = "#fff";
        ctx.lineWidth = 2;
        ctx.stroke();
        if (p.lost) {
          // A lost device: a dashed ring, so the state does not rest on colour alone.
          ctx.setLineDash([3, 3]);
          ctx.beginPath();
          ctx.arc(x, y, r + 4, 0, 2 * Math.PI);
          ctx.strokeStyle = COLORS.lost;
          ctx.stroke();
          ctx.setLineDash([]);
        } else if (p.grade > 0) {
          ctx.fillStyle = "#fff";
          ctx.fillText(String(p.grade), x, y + 0.5);
        }
        this.hits.push({ x, y, r: r + 3, ids: [p.id] });
      }
    }
  }

  private drawTiles(width: number, height: number): void {
    const z = Math.max(0, Math.min(18, Math.round(this.zoom)));
    const scale = 2 ** (this.zoom - z);
    const n = 2 ** z;
    const [cx, cy] = this.world(this.center[0], this.center[1], z);
    const size = TILE * scale;
    const x0 = Math.floor((cx * TILE - width / 2 / scale) / TILE);
    const y0 = Math.floor((cy * TILE - height / 2 / scale) / TILE);
    const x1 = Math.floor((cx * TILE + width / 2 / scale) / TILE);
    const y1 = Math.floor((cy * TILE + height / 2 / scale) / TILE);
    for (let x = x0; x <= x1; x++) {
      for (let y = Math.max(0, y0); y <= Math.min(n - 1, y1); y++) {
        const wx = ((x % n) + n) % n;
        const url = this.tileUrl!.replace("{z}", String(z)).replace("{x}", String(wx)).replace("{y}", String(y));
        let img = this.tiles.get(url);
        if (!img) {
          img = new Image();
          img.crossOrigin = "anonymous";
          img.onload = () => this.request();
          img.src = url;
          this.tiles.set(url, img);
        }
        if (img.complete && img.naturalWidth > 0) {
          const sx = width / 2 + (x - cx) * size;
          const sy = height / 2 + (y - cy) * size;
          this.ctx.drawImage(img, sx, sy, size + 0.5, size + 0.5);
        }
      }
    }
  }

  /** Tile coordinates (fractional) of a point at zoom z. */
  private world(lon: number, lat: number, z: number): [number, number] {
    const n = 2 ** z;
    const x = ((lon + 180) / 360) * n;
    const r = (lat * Math.PI) / 180;
    const y = ((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n;
    return [x, y];
  }

  panBy(dx: number, dy: number): void {
    const width = this.canvas.clientWidth;
    const height = this.canvas.clientHeight;
    const c = this.projection.invert!([width / 2 - dx, height / 2 - dy]);
    if (c) this.center = [c[0], Math.max(-80, Math.min(80, c[1]))];
    this.request();
  }

  zoomBy(delta: number, at?: [number, number]): void {
    const before = at ? this.projection.invert!(at) : null;
    this.zoom = Math.max(1, Math.min(16, this.zoom + delta));
    if (before && at) {
      this.setup();
      const after = this.project(before[0], before[1]);
      this.panBy(at[0] - after[0], at[1] - after[1]);
    }
    this.request();
  }

  private bind(): void {
    let drag: { x: number; y: number; moved: boolean } | null = null;
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, moved: false };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
      drag.x = e.clientX;
      drag.y = e.clientY;
      this.panBy(dx, dy);
    });
    c.addEventListener("pointerup", (e) => {
      const wasClick = drag && !drag.moved;
      drag = null;
      if (!wasClick) return;
      const rect = c.getBoundingClientRect();
      this.pick(e.clientX - rect.left, e.clientY - rect.top);
    });
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const rect = c.getBoundingClientRect();
        this.zoomBy(e.deltaY < 0 ? 0.5 : -0.5, [e.clientX - rect.left, e.clientY - rect.top]);
      },
      { passive: false },
    );
    c.addEventListener("keydown", (e) => {
      const step = 80;
      const keys: Record<string, () => void> = {
        ArrowLeft: () => this.panBy(step, 0),
        ArrowRight: () => this.panBy(-step, 0),
        ArrowUp: () => this.panBy(0, step),
        ArrowDown: () => this.panBy(0, -step),
        "+": () => this.zoomBy(1),
        "=": () => this.zoomBy(1),
        "-": () => this.zoomBy(-1),
        Enter: () => this.pick(c.clientWidth / 2, c.clientHeight / 2, 30),
      };
      const f = keys[e.key];
      if (f) {
        e.preventDefault();
        f();
      }
    });
  }

  private pick(x: number, y: number, slack = 0): void {
    for (const hit of [...this.hits].reverse()) {
      if (Math.hypot(hit.x - x, hit.y - y) <= hit.r + slack) {
        if (hit.ids.length) this.onSelect(hit.ids[0]);
        else if (hit.at && hit.zoomTo !== undefined) {
          this.center = hit.at;
          this.zoom = Math.min(16, hit.zoomTo + 0.5);
          this.request();
        }
        return;
      }
    }
  }
}
