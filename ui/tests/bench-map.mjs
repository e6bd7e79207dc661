// The live map with 10,000 real transits (not part of the suite: it takes minutes). A demo is
// started, 10,000 devices and transits are registered and declared through the API, each
// device reports once, and then: how long GET /api/v1/map takes, and how long the browser
// takes from opening the map to the markers drawn, and per frame while panning and zooming.
//
//   SEALWATCH_BIN=target/debug/sealwatch node ui/tests/bench-map.mjs [N]

import { apiCall, launch, percentile, signIn, startDemo } from "./harness.mjs";

const N = Number(process.argv[2] ?? 10_000);
const CONCURRENCY = 8;

async function pool(n, f) {
  let next = 0;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) {
      const i = next++;
      await f(i);
    }
  });
  await Promise.all(workers);
}

const demo = await startDemo();
const browser = await launch();
try {
  const station = "ST-e0.CN-YIWU-PORT";
  // The service's clock (the demo's runs fast): when its transits were declared.
  const first = await apiCall(demo, "GET", "/transits?limit=1");
  const at = Date.parse(first.data.items[0].declared_at);
  let t0 = Date.now();
  await pool(N, async (i) => {
    const id = `B${String(i).padStart(5, "0")}`;
    const d = await apiCall(demo, "POST", "/devices", { id: `DEV-${id}`, kind: "active", state: "sealed", station, model: "bench" });
    if (d.status !== 200) throw new Error(`device ${id}: ${d.status} ${JSON.stringify(d.data)}`);
    const t = await apiCall(demo, "POST", "/transits", {
      id: `T-${id}`,
      device: `DEV-${id}`,
      departure: "e0.CN-YIWU-PORT",
      destination: "e0.CN-NINGBO-BEILUN",
      sealed_at: new Date(at).toISOString(),
      declaration: { number: `BENCH${String(i).padStart(8, "0")}`, carrier: ["CARRIER-A", "CARRIER-B"][i % 2] },
    });
    if (t.status !== 201) throw new Error(`transit ${id}: ${t.status} ${JSON.stringify(t.data)}`);
  });
  const declareS = (Date.now() - t0) / 1000;
  // One report per device, spread over Eurasia and Africa, a few seals cut (alarms).
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const obs = Array.from({ length: N }, (_, i) => ({
    device: `DEV-B${String(i).padStart(5, "0")}`,
    t: new Date(at + 1000).toISOString(),
    lat: -30 + rnd() * 85,
    lon: -10 + rnd() * 140,
    lock: "locked",
    rope: rnd() < 0.02 ? "cut" : "intact",
    battery_pct: 80,
    seq: 1,
  }));
  for (let k = 0; k < N; k += 5000) {
    const r = await apiCall(demo, "POST", "/observations", obs.slice(k, k + 5000));
    if (r.status !== 200) throw new Error(`observations: ${r.status}`);
  }
  // The registry's last positions follow the log shortly: wait until the map has them.
  let items = 0;
  for (let k = 0; k < 60 && items < N; k++) {
    const m = await apiCall(demo, "GET", "/map");
    items = m.data.items.filter((x) => x.at && x.id.startsWith("T-B")).length;
    if (items < N) await new Promise((r) => setTimeout(r, 1000));
  }
  // Uncached answers (the service shares one for a second), then one shared.
  const api = [];
  for (let k = 0; k < 5; k++) {
    await new Promise((r) => setTimeout(r, 1100));
    t0 = performance.now();
    await apiCall(demo, "GET", "/map");
    api.push(performance.now() - t0);
  }
  t0 = performance.now();
  await apiCall(demo, "GET", "/map");
  const sharedMs = performance.now() - t0;
  const { page } = await signIn(browser, demo.base, "supervisor");
  t0 = Date.now();
  await page.goto("/map");
  await page.waitForFunction((n) => Number(document.querySelector("#count-normal b")?.textContent ?? 0) + Number(document.querySelector("#count-alarmed b")?.textContent ?? 0) >= n, N, { timeout: 60_000 });
  const openMs = Date.now() - t0;
  await page.evaluate(() => {
    window.sealwatchMap.view.frameTimes.length = 0;
  });
  const box = await page.locator("#live-map canvas").boundingBox();
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  for (let round = 0; round < 3; round++) {
    await page.mouse.move(cx, cy);
    await page.mouse.down();
    for (let k = 0; k < 30; k++) await page.mouse.move(cx + (k % 15) * 12 - 90, cy + (k % 10) * 8 - 40);
    await page.mouse.up();
    for (let k = 0; k < 6; k++) {
      await page.mouse.wheel(0, k < 3 ? -200 : 200);
      await page.waitForTimeout(30);
    }
  }
  const draws = await page.evaluate(() => window.sealwatchMap.view.frameTimes.slice());
  console.log(
    JSON.stringify({
      transits: N,
      markers_with_position: items,
      register_and_declare_s: +declareS.toFixed(1),
      map_api_ms_p50: +percentile(api, 50).toFixed(0),
      map_api_ms_max: +Math.max(...api).toFixed(0),
      map_api_shared_ms: +sharedMs.toFixed(0),
      map_open_to_drawn_ms: openMs,
      draws: draws.length,
      draw_p50_ms: +percentile(draws, 50).toFixed(1),
      draw_p95_ms: +percentile(draws, 95).toFixed(1),
    }),
  );
} finally {
  await browser.close();
  await demo.stop();
}
