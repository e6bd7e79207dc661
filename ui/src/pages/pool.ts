// The device pool across stations (docs/pool.md): every station's devices by state and its
// net inflow, the devices' life-cycle counts, and the rebalancing plan — which devices move from
// where to where so that every station keeps its dynamic safety stock, at the least transport
// cost.

import { api, ApiError } from "../api";
import { h, replace } from "../dom";
import type { Ctx } from "../main";
import { human } from "./alarms";

interface StationStock {
  id: string;
  name: string;
  zone: string;
  by_state: Record<string, number>;
  departures: number;
  arrivals: number;
  net_inflow: number;
}

interface Overview {
  stations: StationStock[];
  by_state: Record<string, number>;
  by_phase: [string, number][];
  entered_last_30_days: Record<string, number>;
  history_days: number;
}

const IN_SERVICE = ["assigned", "sealed", "in_transit", "awaiting_return"];

function n(v: number | undefined): string {
  return String(v ?? 0);
}

export async function poolPage(ctx: Ctx): Promise<void> {
  replace(ctx.main, h("h1", null, "Device pool"), h("p", { class: "loading" }, "Loading the pool…"));
  let o: Overview;
  try {
    o = await api<Overview>("/pool");
  } catch (e) {
    replace(ctx.main, h("h1", null, "Device pool"), h("p", { class: "error", role: "alert" }, `Cannot load the pool: ${(e as Error).message}`));
    return;
  }
  const stock = h(
    "table",
    { id: "pool-stock" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["Station", "In stock", "Charging", "In return", "Repair", "In service", `Left (${o.history_days} d)`, "Arrived", "Net inflow"].map((c) => h("th", { scope: "col" }, c)),
      ),
    ),
    h(
      "tbody",
      null,
      o.stations.map((s) =>
        h(
          "tr",
          { "data-station": s.id },
          h("th", { scope: "row" }, `${s.name} (${s.id})`),
          h("td", null, n(s.by_state.in_stock)),
          h("td", null, n(s.by_state.charging)),
          h("td", null, n(s.by_state.in_return)),
          h("td", null, n(s.by_state.maintenance)),
          h("td", null, String(IN_SERVICE.reduce((a, k) => a + (s.by_state[k] ?? 0), 0))),
          h("td", null, String(s.departures)),
          h("td", null, String(s.arrivals)),
          h("td", { class: s.net_inflow < 0 ? "error" : "" }, (s.net_inflow > 0 ? "+" : "") + s.net_inflow),
        ),
      ),
    ),
  );
  const lifecycle = h(
    "ul",
    { class: "plain", id: "pool-lifecycle" },
    Object.entries(o.by_state).map(([state, count]) =>
      h("li", null, `${human(state)}: ${count}`, o.entered_last_30_days[state] ? h("small", { class: "muted" }, ` (${o.entered_last_30_days[state]} entered in 30 days)`) : ""),
    ),
  );

  const lead = h("input", { id: "plan-lead-days", type: "number", min: "1", max: "60", value: "3", "aria-label": "Lead time in days" });
  const level = h("input", { id: "plan-service-level", type: "number", min: "0.5", max: "0.999", step: "0.01", value: "0.95", "aria-label": "Service level" });
  const result = h("div", { id: "plan-result" });
  const make: HTMLButtonElement = h(
    "button",
    {
      class: "primary",
      id: "make-plan",
      onclick: async () => {
        make.disabled = true;
        replace(result, h("p", { class: "loading" }, "Solving…"));
        try {
          const r = await api<any>(`/pool/plan?lead_days=${encodeURIComponent(lead.value)}&service_level=${encodeURIComponent(level.value)}`);
          replace(result, planView(r.plan));
        } catch (e) {
          replace(result, h("p", { class: "error", role: "alert" }, e instanceof ApiError ? e.message : String(e)));
        } finally {
          make.disabled = false;
        }
      },
    },
    "Make the plan",
  );

  replace(
    ctx.main,
    h("h1", null, "Device pool"),
    h("section", { class: "card" }, h("h2", null, "Stock per station"), o.stations.length ? stock : h("p", { class: "muted" }, "No station registered.")),
    h(
      "section",
      { class: "card" },
      h("h2", null, "Life cycle"),
      h(
        "p",
        { id: "pool-phases" },
        (o.by_phase ?? []).map(([phase, count], i) => h("span", null, i ? " → " : "", h("b", null, String(count)), ` ${human(phase)}`)),
      ),
      lifecycle,
    ),
    h(
      "section",
      { class: "card" },
      h("h2", null, "Rebalancing plan"),
      h("p", { class: "muted" }, "Every station is filled up to its dynamic safety stock (forecast demand over the lead time plus a margin for its variability) at the least transport cost, solved exactly."),
      h("div", { class: "actions" }, h("label", { for: "plan-lead-days" }, "Lead time (days) "), lead, h("label", { for: "plan-service-level" }, " Service level "), level, make),
      result,
    ),
  );
}

function planView(plan: any): HTMLElement {
  const moves = plan.moves as any[];
  return h(
    "div",
    null,
    h(
      "p",
      { id: "plan-summary" },
      `${moves.reduce((a, m) => a + m.devices, 0)} devices in ${moves.length} shipment${moves.length === 1 ? "" : "s"}, total cost ${plan.total_cost.toFixed(2)}`,
      plan.shortfall_devices ? h("span", { class: "error" }, ` — the pool is short by ${plan.shortfall_devices} devices`) : "",
    ),
    moves.length
      ? h(
          "table",
          { id: "plan-moves" },
          h("thead", null, h("tr", null, ["From", "To", "Devices", "Cost", "Which"].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            null,
            moves.map((m) =>
              h("tr", null, h("td", null, m.from), h("td", null, m.to), h("td", null, String(m.devices)), h("td", null, m.cost.toFixed(2)), h("td", null, h("small", null, m.device_ids.join(" ")))),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No move needed: every station holds its safety stock."),
    h(
      "table",
      { id: "plan-stations" },
      h("thead", null, h("tr", null, ["Station", "Before", "Target", "Sent", "Received", "After", "Short"].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        null,
        (plan.stations as any[]).map((s) =>
          h(
            "tr",
            null,
            h("th", { scope: "row" }, s.id),
            ...[s.stock_before, s.target, s.sent, s.received, s.stock_after, s.shortfall].map((v) => h("td", null, String(v))),
          ),
        ),
      ),
    ),
  );
}
