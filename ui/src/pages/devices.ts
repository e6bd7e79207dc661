// Devices and stations: each station's stock by state, battery and last report; a device's
// history (what it sent besides positions, and the commands sent to it).

import { all, api } from "../api";
import { age, downloadCsv, h, replace, when } from "../dom";
import type { Ctx } from "../main";
import { human } from "./alarms";

const STATES = ["in_production", "warehoused", "in_delivery", "in_stock", "charging", "assigned", "sealed", "in_transit", "awaiting_return", "in_return", "maintenance", "lost", "retired"];

export async function devicesPage(ctx: Ctx): Promise<void> {
  replace(ctx.main, h("h1", null, "Devices and stations"), h("p", { class: "loading" }, "Loading the registry…"));
  let stations: any[] = [];
  let devices: any[] = [];
  try {
    [stations, devices] = await Promise.all([all("/stations"), all("/devices", 50000)]);
  } catch (e) {
    replace(ctx.main, h("h1", null, "Devices and stations"), h("p", { class: "error", role: "alert" }, `Cannot load the registry: ${(e as Error).message}`));
    return;
  }
  const byStation = new Map<string, any[]>();
  for (const d of devices) {
    const k = d.device.station ?? "(none)";
    if (!byStation.has(k)) byStation.set(k, []);
    byStation.get(k)!.push(d);
  }
  const filter = h("select", { id: "device-station", "aria-label": "Station" }, h("option", { value: "" }, "every station"), stations.map((s) => h("option", { value: s.id }, s.name ?? s.id)));
  const body = h("tbody");
  const csv = h("button", { id: "devices-csv" }, "Export CSV");
  const shown = () => devices.filter((d) => !filter.value || d.device.station === filter.value);
  const render = () =>
    replace(
      body,
      shown().map((d) =>
        h(
          "tr",
          { "data-device": d.device.id },
          h("td", null, h("a", { href: `/devices/${encodeURIComponent(d.device.id)}` }, d.device.id)),
          h("td", null, d.device.station ?? ""),
          h("td", null, human(d.device.state ?? "")),
          h("td", null, d.device.kind ?? ""),
          h("td", null, battery(d.device.battery_pct)),
          h("td", null, d.device.last_report_at ? `${when(d.device.last_report_at)} (${age(d.device.last_report_at)} ago)` : "never"),
        ),
      ),
    );
  filter.addEventListener("change", render);
  csv.addEventListener("click", () =>
    downloadCsv("devices.csv", ["id", "station", "state", "kind", "battery_pct", "last_report_at"], shown().map((d) => [d.device.id, d.device.station, d.device.state, d.device.kind, d.device.battery_pct, d.device.last_report_at])),
  );
  const stock = h(
    "table",
    { class: "grid compact", id: "stock" },
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "Station"), STATES.map((s) => h("th", { scope: "col" }, human(s))), h("th", { scope: "col" }, "total"))),
    h(
      "tbody",
      null,
      stations.map((s) => {
        const list = byStation.get(s.id) ?? [];
        return h(
          "tr",
          { "data-station": s.id },
          h("th", { scope: "row" }, s.name ?? s.id),
          STATES.map((st) => {
            const n = list.filter((d) => d.device.state === st).length;
            return h("td", { class: n ? "" : "zero" }, n);
          }),
          h("td", null, list.length),
        );
      }),
    ),
  );
  replace(
    ctx.main,
    h("h1", null, "Devices and stations"),
    h("h2", null, "Stock per station, by state"),
    h("div", { class: "table-wrap" }, stock),
    h("h2", null, "Devices"),
    h("div", { class: "toolbar" }, h("label", null, "Station ", filter), csv),
    h("div", { class: "table-wrap" }, h("table", { class: "grid", id: "device-list" }, h("thead", null, h("tr", null, ["Device", "Station", "State", "Kind", "Battery", "Last report"].map((c) => h("th", { scope: "col" }, c)))), body)),
  );
  render();
}

function battery(pct: number | undefined): HTMLElement | string {
  if (pct === undefined || pct === null) return "";
  const low = pct < 20;
  return h("span", { class: low ? "battery low" : "battery" }, h("meter", { min: 0, max: 100, low: 20, high: 50, optimum: 100, value: pct, "aria-hidden": "true" }), ` ${Math.round(pct)}%`);
}

export async function devicePage(ctx: Ctx, id: string): Promise<void> {
  const enc = encodeURIComponent(id);
  replace(ctx.main, h("h1", null, `Device ${id}`), h("p", { class: "loading" }, "Loading…"));
  try {
    const d = await api<any>(`/devices/${enc}`);
    const [log, commands, lifecycle] = await Promise.all([
      api<any>(`/devices/${enc}/log`).then((r) => r.items ?? r).catch(() => []),
      api<any>(`/devices/${enc}/commands`).then((r) => r.items ?? r).catch(() => []),
      api<any>(`/devices/${enc}/history`).then((r) => r.items ?? []).catch(() => []),
    ]);
    const dev = d.device ?? d;
    replace(
      ctx.main,
      h("p", null, h("a", { href: "/devices" }, "← Devices and stations")),
      h("h1", null, `Device ${id}`),
      h(
        "dl",
        { class: "facts" },
        [
          ["State", human(dev.state ?? "")],
          ["Station", dev.station],
          ["Kind", dev.kind],
          ["Model", dev.model],
          ["Battery", dev.battery_pct !== undefined ? `${dev.battery_pct}%` : ""],
          ["Last report", when(dev.last_report_at)],
          ["Last position", d.last_position ? `${d.last_position.lat.toFixed(5)}, ${d.last_position.lon.toFixed(5)} at ${when(d.last_position.t)}` : ""],
          ["Registered", when(d.registered_at)],
        ]
          .filter(([, v]) => v)
          .map(([k, v]) => [h("dt", null, k), h("dd", null, String(v))]),
      ),
      h("h2", null, "Life cycle"),
      lifecycle.length
        ? h(
            "ol",
            { class: "plain", id: "device-lifecycle" },
            lifecycle.map((c: any) =>
              h("li", null, h("time", null, when(c.at)), ` ${c.from_state ? `${human(c.from_state)} → ` : ""}${human(c.to_state)}`, c.station ? ` at ${c.station}` : "", h("small", { class: "muted" }, ` (${c.cause})`)),
            ),
          )
        : h("p", { class: "muted" }, "No state change recorded."),
      h("h2", null, "History"),
      Array.isArray(log) && log.length
        ? h("ol", { class: "plain", id: "device-history" }, log.map((e: any) => h("li", null, h("time", null, when(e.t ?? e.at ?? e.received_at)), " ", e.kind ?? "", " ", e.source ?? "")))
        : h("p", { class: "muted" }, "Nothing but positions reported."),
      h("h2", null, "Commands"),
      Array.isArray(commands) && commands.length
        ? h("ol", { class: "plain" }, commands.map((c: any) => h("li", null, h("time", null, when(c.created_at ?? c.at)), ` ${c.kind} — ${c.state}`)))
        : h("p", { class: "muted" }, "No command sent."),
    );
  } catch (e) {
    replace(ctx.main, h("h1", null, `Device ${id}`), h("p", { class: "error", role: "alert" }, `Cannot load it: ${(e as Error).message}`));
  }
}
