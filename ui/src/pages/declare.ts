// Declare and seal, for office officers: the supervision information with inline validation
// (ISO 6346 container numbers, every required field), a device paired from the station's
// stock, then sealing.

import { all, api, ApiError } from "../api";
import { h, replace } from "../dom";
import type { Ctx } from "../main";

const LETTERS: Record<string, number> = {};
{
  // ISO 6346 letter values: A=10, skipping multiples of 11.
  let v = 10;
  for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
    if (v % 11 === 0) v++;
    LETTERS[c] = v++;
  }
}

/** Why a container number is not valid ISO 6346, or null when it is. */
export function iso6346Error(input: string): string | null {
  const s = input.replace(/\s+/g, "").toUpperCase();
  if (s.length !== 11) return `expected 11 characters (4 letters, 7 digits), found ${s.length}`;
  if (!/^[A-Z]{3}[UJZR]/.test(s)) return "the first 4 characters must be the owner code and U, J, Z or R";
  if (!/^\d{7}$/.test(s.slice(4))) return "the serial number and check digit (last 7 characters) must be digits";
  let sum = 0;
  for (let i = 0; i < 10; i++) {
    const c = s[i];
    const v = /\d/.test(c) ? Number(c) : LETTERS[c];
    sum += v * 2 ** i;
  }
  const expected = (sum % 11) % 10;
  const found = Number(s[10]);
  return found === expected ? null : `check digit is ${found}, expected ${expected}`;
}

export async function declarePage(ctx: Ctx): Promise<void> {
  replace(ctx.main, h("h1", null, "Declare and seal"), h("p", { class: "loading" }, "Loading zones and stations…"));
  const [zones, stations] = await Promise.all([
    api<any[]>("/zones").catch(() => []),
    all<any>("/stations").catch(() => []),
  ]);
  const offices = zones.filter((z) => z.kind === "office");
  const field = (
    name: string,
    label: string,
    input: HTMLInputElement | HTMLSelectElement,
    hint = "",
  ): HTMLElement => {
    input.id = `f-${name}`;
    input.name = name;
    input.setAttribute("aria-describedby", `e-${name}`);
    return h(
      "div",
      { class: "field" },
      h("label", { for: `f-${name}` }, label),
      input,
      hint ? h("small", { class: "muted" }, hint) : null,
      h("span", { class: "field-error", id: `e-${name}`, role: "status" }),
    );
  };
  const zoneOptions = () => [
    h("option", { value: "" }, "— choose —"),
    offices.map((z) => h("option", { value: z.id }, `${z.name ?? z.id} (${z.id})`)),
  ];
  const id = h("input", { required: true, placeholder: "T-2026-0001", autocomplete: "off" });
  const station = h(
    "select",
    { required: true },
    h("option", { value: "" }, "— choose —"),
    stations.map((s) => h("option", { value: s.id }, `${s.name ?? s.id}`)),
  );
  const device = h("select", { required: true }, h("option", { value: "" }, "choose a station first"));
  const mode = h("select", null, ["road", "rail", "multimodal"].map((m) => h("option", { value: m }, m)));
  const departure = h("select", { required: true }, zoneOptions());
  const destination = h("select", { required: true }, zoneOptions());
  const hours = h("input", { type: "number", min: 1, max: 240, value: 8, required: true });
  const number = h("input", { required: true, placeholder: "declaration number" });
  const carrier = h("input", { required: true, placeholder: "organisation id, e.g. CARRIER-A" });
  const plate = h("input", { required: true, placeholder: "licence plate" });
  const containers = h("input", { placeholder: "CSQU3054383, …" });
  const driver = h("input", { placeholder: "name" });
  const cargo = h("input", { required: true, placeholder: "goods description" });
  const submit = h("button", { type: "submit", class: "primary", id: "declare-submit" }, "Declare, pair and seal");
  const result = h("div", { id: "declare-result", role: "status" });

  station.addEventListener("change", async () => {
    replace(device, h("option", { value: "" }, "loading the stock…"));
    try {
      const stock = await all<any>(`/devices?station=${encodeURIComponent(station.value)}&state=in_stock`);
      replace(
        device,
        h("option", { value: "" }, stock.length ? "— choose a device —" : "no device in stock here"),
        stock.map((d) => h("option", { value: d.device.id }, `${d.device.id}${d.device.battery_pct !== undefined ? ` · battery ${d.device.battery_pct}%` : ""}`)),
      );
      const st = stations.find((s) => s.id === station.value);
      if (st && !departure.value) departure.value = st.zone;
    } catch (e) {
      replace(device, h("option", { value: "" }, `cannot load the stock: ${(e as Error).message}`));
    }
  });

  const setError = (name: string, message: string) => {
    const el = document.getElementById(`e-${name}`)!;
    el.textContent = message;
    const input = document.getElementById(`f-${name}`);
    input?.setAttribute("aria-invalid", message ? "true" : "false");
  };
  const validate = (): boolean => {
    let ok = true;
    const required: [string, HTMLInputElement | HTMLSelectElement, string][] = [
      ["id", id, "a transit id is required"],
      ["station", station, "choose the station whose stock the device comes from"],
      ["device", device, "choose a device from the station's stock"],
      ["departure", departure, "choose the office of departure"],
      ["destination", destination, "choose the office of destination"],
      ["number", number, "the declaration number is required"],
      ["carrier", carrier, "the carrier is required"],
      ["plate", plate, "the licence plate is required"],
      ["cargo", cargo, "describe the goods"],
    ];
    for (const [name, input, message] of required) {
      const bad = !input.value.trim();
      setError(name, bad ? message : "");
      ok &&= !bad;
    }
    const list = containers.value.split(/[,;]/).map((c) => c.trim()).filter(Boolean);
    const bad = list.map((c) => [c, iso6346Error(c)] as const).filter(([, e]) => e);
    setError("containers", bad.map(([c, e]) => `${c}: ${e}`).join("; "));
    ok &&= bad.length === 0;
    if (departure.value && departure.value === destination.value) {
      setError("destination", "the destination must differ from the departure");
      ok = false;
    }
    const h_ = Number(hours.value);
    const badHours = !(h_ >= 1 && h_ <= 240);
    setError("hours", badHours ? "between 1 and 240 hours" : "");
    ok &&= !badHours;
    return ok;
  };
  containers.addEventListener("input", () => {
    const list = containers.value.split(/[,;]/).map((c) => c.trim()).filter(Boolean);
    setError("containers", list.map((c) => [c, iso6346Error(c)] as const).filter(([, e]) => e).map(([c, e]) => `${c}: ${e}`).join("; "));
  });

  const form = h(
    "form",
    {
      class: "form",
      id: "declare-form",
      novalidate: true,
      onsubmit: async (e: Event) => {
        e.preventDefault();
        replace(result);
        if (!validate()) {
          replace(result, h("p", { class: "error", role: "alert" }, "Some fields need attention (see above)."));
          (form.querySelector('[aria-invalid="true"]') as HTMLElement | null)?.focus();
          return;
        }
        submit.disabled = true;
        submit.textContent = "Declaring…";
        const list = containers.value.split(/[,;]/).map((c) => c.replace(/\s+/g, "").toUpperCase()).filter(Boolean);
        const now = Date.now();
        const dep = zones.find((z) => z.id === departure.value);
        const dst = zones.find((z) => z.id === destination.value);
        const centre = (z: any) => (z.area.type === "Point" ? z.area.coordinates : z.area.coordinates[0][0]);
        const body: any = {
          id: id.value.trim(),
          device: device.value,
          mode: mode.value,
          departure: departure.value,
          destination: destination.value,
          deadline: new Date(now + Number(hours.value) * 3600_000).toISOString().replace(/\.\d+Z$/, "Z"),
          vehicle: { plate: plate.value.trim(), containers: list },
          cargo: [{ type: cargo.value.trim(), quantity: 1, unit: "LOT" }],
          declaration: { number: number.value.trim(), carrier: carrier.value.trim() },
        };
        if (dep && dst) body.route = { type: "LineString", coordinates: [centre(dep), centre(dst)] };
        if (driver.value.trim()) body.driver = { name: driver.value.trim() };
        const enc = encodeURIComponent(body.id);
        try {
          await api("/transits", { method: "POST", body });
          submit.textContent = "Sealing…";
          await api(`/transits/${enc}/actions`, { method: "POST", body: { action: "seal" } });
          replace(
            result,
            h("p", { class: "ok" }, "Declared and sealed: ", h("a", { href: `/transits/${enc}`, id: "declared-link" }, body.id)),
          );
          form.reset();
        } catch (err) {
          replace(result, h("p", { class: "error", role: "alert" }, err instanceof ApiError ? `Refused: ${err.message}` : String(err)));
        } finally {
          submit.disabled = false;
          submit.textContent = "Declare, pair and seal";
        }
      },
    },
    h(
      "fieldset",
      null,
      h("legend", null, "Transit and device"),
      field("id", "Transit id", id),
      field("station", "Station", station),
      field("device", "Device from the station's stock", device),
      field("mode", "Mode", mode),
    ),
    h(
      "fieldset",
      null,
      h("legend", null, "Route and time"),
      field("departure", "Office of departure", departure),
      field("destination", "Office of destination", destination),
      field("hours", "Time allowed (hours)", hours),
    ),
    h(
      "fieldset",
      null,
      h("legend", null, "Declaration, vehicle and goods"),
      field("number", "Declaration number", number),
      field("carrier", "Carrier", carrier),
      field("plate", "Licence plate", plate),
      field("containers", "Container numbers (ISO 6346)", containers, "comma-separated; the check digit is verified"),
      field("driver", "Driver (personal data: customs only)", driver),
      field("cargo", "Goods", cargo),
    ),
    submit,
    result,
  );
  replace(ctx.main, h("h1", null, "Declare and seal"), form);
  id.focus();
}
