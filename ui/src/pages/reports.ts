// Reports: alarms per day by kind (a chart), transit times per route, the share of transits
// released without inspection, device utilisation; each table exports as CSV.

import { all, api } from "../api";
import { downloadCsv, h, replace } from "../dom";
import type { Ctx } from "../main";
import { human, KINDS, zoneName } from "./alarms";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A stacked bar chart of alarms per day, by kind. */
function chart(items: { day: string; kind: string; count: number }[]): SVGElement {
  const days = [...new Set(items.map((i) => i.day))].sort();
  const kinds = KINDS.filter((k) => items.some((i) => i.kind === k));
  const totals = days.map((d) => items.filter((i) => i.day === d).reduce((s, i) => s + i.count, 0));
  const max = Math.max(1, ...totals);
  const W = 720, H = 260, left = 40, bottom = 40, top = 10;
  const bw = Math.min(60, (W - left - 10) / Math.max(1, days.length) - 8);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H + 20 * Math.ceil(kinds.length / 4)}`, role: "img", "aria-label": "Alarms per day by kind", class: "chart", id: "alarms-chart" });
  root.appendChild(svg("line", { x1: left, y1: H - bottom, x2: W - 5, y2: H - bottom, stroke: "#555" }));
  for (let t = 0; t <= 4; t++) {
    const v = Math.round((max * t) / 4);
    const y = H - bottom - ((H - bottom - top) * v) / max;
    root.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 11 }, String(v)));
    root.appendChild(svg("line", { x1: left, y1: y, x2: W - 5, y2: y, stroke: "#ddd" }));
  }
  days.forEach((d, i) => {
    const x = left + 8 + i * (bw + 8);
    let y = H - bottom;
    kinds.forEach((k) => {
      const n = items.filter((it) => it.day === d && it.kind === k).reduce((s, it) => s + it.count, 0);
      if (!n) return;
      const hgt = ((H - bottom - top) * n) / max;
      y -= hgt;
      const r = svg("rect", { x, y, width: bw, height: hgt, fill: PALETTE[KINDS.indexOf(k) % PALETTE.length] });
      r.appendChild(svg("title", {}, `${d} ${human(k)}: ${n}`));
      root.appendChild(r);
    });
    root.appendChild(svg("text", { x: x + bw / 2, y: H - bottom + 14, "text-anchor": "middle", "font-size": 11 }, d.slice(5)));
  });
  kinds.forEach((k, i) => {
    const x = left + (i % 4) * 170;
    const y = H + 4 + Math.floor(i / 4) * 20;
    root.appendChild(svg("rect", { x, y, width: 12, height: 12, fill: PALETTE[KINDS.indexOf(k) % PALETTE.length] }));
    root.appendChild(svg("text", { x: x + 16, y: y + 10, "font-size": 11 }, human(k)));
  });
  return root;
}

function table(id: string, header: string[], rows: (string | number)[][]): HTMLElement {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "grid compact", id },
      h("thead", null, h("tr", null, header.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, rows.map((r) => h("tr", null, r.map((c) => h("td", null, c))))),
    ),
    h("button", { class: "csv", onclick: () => downloadCsv(`${id}.csv`, header, rows) }, "Export CSV"),
  );
}

export async function reportsPage(ctx: Ctx): Promise<void> {
  replace(ctx.main, h("h1", null, "Reports"), h("p", { class: "loading" }, "Computing…"));
  try {
    const [alarms, counts, transits, devices, decisions] = await Promise.all([
      api<{ items: { day: string; kind: string; grade: number; count: number }[] }>("/statistics/alarms"),
      api<{ items: { state: string; count: number }[]; total: number; quick_mode?: any }>("/statistics/transits"),
      all<any>("/transits", 50000),
      all<any>("/devices", 50000),
      api<any>("/statistics/decisions").catch(() => null),
    ]);
    // Transit times per route: from sealing to the last change, for transits that ended.
    const ended = transits.filter((t) => ["released", "inspection", "unsealed", "closed"].includes(t.state) && t.transit.sealed_at);
    const perRoute = new Map<string, number[]>();
    for (const t of ended) {
      const k = `${zoneName(t.transit.departure)} → ${zoneName(t.transit.destination)}`;
      const hours = (Date.parse(t.updated_at) - Date.parse(t.transit.sealed_at)) / 3600_000;
      if (!perRoute.has(k)) perRoute.set(k, []);
      perRoute.get(k)!.push(hours);
    }
    const routeRows = [...perRoute.entries()].map(([k, v]) => {
      v.sort((a, b) => a - b);
      return [k, v.length, (v.reduce((s, x) => s + x, 0) / v.length).toFixed(2), v[Math.floor(v.length / 2)].toFixed(2), v[v.length - 1].toFixed(2)];
    });
    const n = (s: string) => counts.items.find((i) => i.state === s)?.count ?? 0;
    const pct = (x: number | null | undefined) => (x === null || x === undefined ? null : `${(100 * x).toFixed(1)}%`);
    // The decisions recorded with their proposals; before any, the transits' states.
    const decided = n("released") + n("inspection");
    const share =
      pct(decisions?.released_without_inspection_share) ??
      (decided ? `${((100 * n("released")) / decided).toFixed(1)}%` : "no decision yet");
    const hitRate = pct(decisions?.inspection_hit_rate) ?? "no inspection result yet";
    const quick = counts.quick_mode ?? {};
    const quickRate = pct(quick.automatic_unseal_rate) ?? "no gate decision yet";
    const inUse = devices.filter((d) => ["assigned", "sealed", "in_transit"].includes(d.device.state)).length;
    const utilisation = devices.length ? `${((100 * inUse) / devices.length).toFixed(1)}%` : "no device";
    replace(
      ctx.main,
      h("h1", null, "Reports"),
      h(
        "div",
        { class: "kpis" },
        h("div", { class: "kpi", id: "kpi-release" }, h("b", null, share), h("span", null, "released without inspection")),
        h("div", { class: "kpi", id: "kpi-hit-rate" }, h("b", null, hitRate), h("span", null, `inspections that found something${decisions ? ` (${decisions.overrides} decisions against the proposal)` : ""}`)),
        h("div", { class: "kpi", id: "kpi-quick-mode" }, h("b", null, quickRate), h("span", null, `unsealed automatically at arrival gates (${quick.automatic_unseals ?? 0} of ${quick.arrival_gate_decisions ?? 0})`)),
        h("div", { class: "kpi", id: "kpi-utilisation" }, h("b", null, utilisation), h("span", null, `device utilisation (${inUse} of ${devices.length} in use)`)),
        h("div", { class: "kpi" }, h("b", null, counts.total), h("span", null, "transits declared")),
      ),
      h("h2", null, "Alarms per day, by kind"),
      alarms.items.length ? chart(alarms.items) : h("p", { class: "muted" }, "No alarm yet."),
      table("alarms-per-day", ["day", "kind", "grade", "count"], alarms.items.map((i) => [i.day, i.kind, i.grade, i.count])),
      h("h2", null, "Transit times per route (hours, sealing to decision)"),
      routeRows.length ? table("transit-times", ["route", "transits", "mean", "median", "max"], routeRows) : h("p", { class: "muted" }, "No transit has ended yet."),
      h("h2", null, "Transits by state"),
      table("transits-by-state", ["state", "count"], counts.items.map((i) => [human(i.state), i.count])),
    );
  } catch (e) {
    replace(ctx.main, h("h1", null, "Reports"), h("p", { class: "error", role: "alert" }, `Cannot compute the reports: ${(e as Error).message}`));
  }
}
