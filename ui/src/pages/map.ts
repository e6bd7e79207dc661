// The live map: every supervised transit the caller sees, coloured by state, clustered when
// zoomed out, with counts and a search; refreshed from the live stream without reloading.

import { api } from "../api";
import { h, replace, when } from "../dom";
import { MapView, markerColor, COLORS, type Marker } from "../map";
import type { Ctx } from "../main";

export interface MapItem {
  id: string;
  device: string;
  state: string;
  at?: [number, number];
  t?: string;
  grade: number;
  lost: boolean;
  plate?: string;
  containers?: string[];
  carrier?: string;
  departure?: string;
  destination?: string;
}

declare global {
  interface Window {
    /** Hooks for the browser tests (performance): not used by the UI itself. */
    sealwatchMap?: { view: MapView; inject: (n: number) => number };
  }
}

export function toMarkers(items: MapItem[]): Marker[] {
  return items
    .filter((i) => i.at)
    .map((i) => ({ id: i.id, lon: i.at![0], lat: i.at![1], grade: i.grade, lost: i.lost }));
}

export async function mapPage(ctx: Ctx): Promise<void> {
  const counts = h("div", { class: "counts", id: "map-counts", "aria-live": "polite" }, "Loading…");
  const search = h("input", {
    id: "map-search",
    type: "search",
    placeholder: "Transit, plate, container, device, carrier",
    "aria-label": "Search transits",
  });
  const results = h("ul", { class: "results", id: "map-results" });
  const legend = h(
    "ul",
    { class: "legend", "aria-label": "Legend" },
    h("li", null, h("span", { class: "swatch", style: `background:${COLORS.normal}` }), "normal"),
    [1, 2, 3, 4].map((g) =>
      h("li", null, h("span", { class: "swatch", style: `background:${COLORS.grade[g]}` }), `alarm grade ${g}`),
    ),
    h("li", null, h("span", { class: "swatch lost", style: `background:${COLORS.lost}` }), "communication lost"),
  );
  const mapHost = h("div", { class: "map-host", id: "live-map" });
  const side = h(
    "aside",
    { class: "side" },
    h("h1", null, "Live map"),
    counts,
    h("label", { for: "map-search", class: "sr-only" }, "Search"),
    search,
    results,
    legend,
  );
  replace(ctx.main, h("div", { class: "map-page" }, side, mapHost));
  ctx.main.classList.add("full");
  ctx.cleanup(() => ctx.main.classList.remove("full"));
  const view = new MapView(mapHost);
  view.onSelect = (id) => ctx.navigate(`/transits/${encodeURIComponent(id)}`);
  let items: MapItem[] = [];
  let synthetic: Marker[] = [];
  // The view follows the fleet (all markers in sight) until the user moves it: early on only a
  // few transits have reported, and a view fitted to them alone would hide the rest.
  let following = true;
  for (const ev of ["pointerdown", "wheel", "keydown"]) mapHost.addEventListener(ev, () => (following = false), { once: true });

  const render = () => {
    const alarmed = items.filter((i) => i.grade > 0).length;
    const lost = items.filter((i) => i.lost).length;
    replace(
      counts,
      h("span", { class: "count normal", id: "count-normal" }, h("b", null, items.length - alarmed), " normal"),
      h("span", { class: "count alarmed", id: "count-alarmed" }, h("b", null, alarmed), " alarmed"),
      h("span", { class: "count lost" }, h("b", null, lost), " lost"),
      synthetic.length ? h("span", { class: "count" }, h("b", null, synthetic.length), " synthetic") : null,
    );
    view.setMarkers([...toMarkers(items), ...synthetic]);
    if (following && items.length) view.fitMarkers();
    filter();
  };
  const filter = () => {
    const q = search.value.trim().toLowerCase();
    if (!q) {
      replace(results);
      return;
    }
    const hits = items
      .filter((i) =>
        [i.id, i.device, i.plate, i.carrier, ...(i.containers ?? [])].some((v) => v?.toLowerCase().includes(q)),
      )
      .slice(0, 50);
    replace(
      results,
      hits.length === 0 ? h("li", { class: "muted" }, "No transit matches") : null,
      hits.map((i) =>
        h(
          "li",
          null,
          h(
            "button",
            {
              class: "result",
              onclick: () => {
                if (i.at) {
                  following = false;
                  view.center = i.at;
                  view.zoom = Math.max(view.zoom, 11);
                  view.request();
                }
              },
              ondblclick: () => ctx.navigate(`/transits/${encodeURIComponent(i.id)}`),
            },
            h("span", { class: "swatch", style: `background:${markerColor(i)}` }),
            h("b", null, i.id),
            " ",
            h("span", { class: "muted" }, [i.plate, i.containers?.join(" "), i.carrier].filter(Boolean).join(" · ")),
          ),
          " ",
          h("a", { href: `/transits/${encodeURIComponent(i.id)}` }, "open"),
          i.t ? h("small", { class: "muted" }, ` last ${when(i.t)}`) : null,
        ),
      ),
    );
  };
  search.addEventListener("input", filter);

  let pending = false;
  let loading = false;
  const load = async () => {
    if (loading) {
      pending = true;
      return;
    }
    loading = true;
    try {
      const r = await api<{ items: MapItem[] }>("/map");
      items = r.items;
      render();
    } catch (e) {
      replace(counts, h("span", { class: "error", role: "alert" }, `Cannot load the map: ${(e as Error).message}`));
    } finally {
      loading = false;
      if (pending) {
        pending = false;
        setTimeout(load, 500);
      }
    }
  };
  await load();
  // Events and alarms on the stream change states and grades: refresh (at most once a
  // second); positions come with the same answer, and a slow poll keeps them moving between
  // events.
  let timer: number | undefined;
  const unsub = ctx.live.subscribe(() => {
    if (timer === undefined) {
      timer = window.setTimeout(() => {
        timer = undefined;
        load();
      }, 1000);
    }
  });
  // The answer is every marker: asked at most once a second on events, and every 10 s.
  const poll = window.setInterval(load, 10_000);
  ctx.cleanup(() => {
    unsub();
    clearInterval(poll);
    if (timer !== undefined) clearTimeout(timer);
  });
  window.sealwatchMap = {
    view,
    inject: (n: number) => {
      // Synthetic markers spread over Eurasia and Africa, a few alarmed: for the
      // performance test of 10,000 live transits.
      let seed = 42;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
      synthetic = Array.from({ length: n }, (_, k) => ({
        id: `synthetic-${k}`,
        lon: -10 + rnd() * 140,
        lat: -30 + rnd() * 85,
        grade: rnd() < 0.05 ? 1 + Math.floor(rnd() * 4) : 0,
        lost: rnd() < 0.02,
      }));
      render();
      return synthetic.length;
    },
  };
  ctx.cleanup(() => {
    window.sealwatchMap = undefined;
  });
}
