// The browser suite's harness: a real `sealwatch demo` on a free port, and Debian's Chromium
// driven by playwright-core (never a downloaded browser).

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const PASSWORD = "demo-password-not-secret";
/** The demo's clock speed in the suite: journeys move, and a test's minutes stay short. */
export const SPEED = 30;

export function binary() {
  if (process.env.SEALWATCH_BIN) return process.env.SEALWATCH_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
  return join(target, "debug", "sealwatch");
}

export function chromiumPath() {
  return process.env.CHROMIUM ?? "/usr/bin/chromium";
}

/** Starts `sealwatch demo` and waits until it has printed its address and token. */
export async function startDemo() {
  const bin = binary();
  if (!existsSync(bin)) throw new Error(`no sealwatch binary at ${bin}: build it (cargo build -p sealwatch) or set SEALWATCH_BIN`);
  const dir = mkdtempSync(join(tmpdir(), "sealwatch-ui-test-"));
  const child = spawn(bin, ["demo", "--listen", "127.0.0.1:0", "--speed", String(SPEED), "--data-dir", dir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = [];
  child.stderr.on("data", (d) => output.push(String(d)));
  const lines = createInterface({ input: child.stdout });
  const ready = new Promise((resolveReady, reject) => {
    let addr = null;
    let token = null;
    const timer = setTimeout(() => reject(new Error(`the demo did not start in 60 s:\n${output.join("")}`)), 60_000);
    lines.on("line", (line) => {
      output.push(line + "\n");
      const m = line.match(/listening on http:\/\/(\S+)/);
      if (m) addr = m[1];
      const t = line.trim().match(/^export SEALWATCH_TOKEN=(\S+)/);
      if (t) token = t[1];
      if (addr && token && /transits declared/.test(line)) {
        clearTimeout(timer);
        resolveReady({ base: `http://${addr}`, token });
      }
    });
    child.on("exit", (code) => reject(new Error(`the demo exited (${code}):\n${output.join("")}`)));
  });
  const { base, token } = await ready;
  return {
    base,
    token,
    output,
    async stop() {
      child.kill("SIGINT");
      await new Promise((r) => {
        const t = setTimeout(() => {
          child.kill("SIGKILL");
          r();
        }, 10_000);
        child.on("exit", () => {
          clearTimeout(t);
          r();
        });
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launch() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
}

/** A fresh browser context signed in as `username` through the sign-in form. */
export async function signIn(browser, base, username, viewport = { width: 1360, height: 850 }) {
  const context = await browser.newContext({ viewport, baseURL: base });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto("/");
  await page.fill("#username", username);
  await page.fill("#password", PASSWORD);
  await page.click("form.signin button[type=submit]");
  await page.waitForSelector("header.top #who", { timeout: 15_000 });
  return { context, page, errors };
}

/** The API with the demo's administrator token (what a gateway or script would do). */
export async function apiCall(demo, method, path, body) {
  const r = await fetch(`${demo.base}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${demo.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    data = text;
  }
  return { status: r.status, data };
}

export function percentile(values, p) {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))];
}
