// Drives Debian's /usr/bin/chromium with playwright-core (never a browser download).
// A JSON-lines protocol on stdin/stdout so pytest can steer one page step by step:
//   {"id": 1, "op": "goto", "url": "..."}            -> {"id": 1, "ok": true}
//   {"id": 2, "op": "wait_text", "selector": "#x", "text": "abc", "timeout": 20000}
//   {"id": 3, "op": "text", "selector": "#x"}        -> {"id": 3, "ok": true, "value": "..."}
//   {"id": 4, "op": "eval", "js": "document.title"}  -> {"id": 4, "ok": true, "value": ...}
//   {"id": 5, "op": "screenshot", "path": "x.png"}
//   {"id": 6, "op": "log"}                           -> console messages and page errors so far
//   {"id": 7, "op": "close"}
// Usage: node browser.mjs <fresh user-data-dir>
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const userDataDir = process.argv[2];
if (!userDataDir) {
  console.error('usage: node browser.mjs <fresh user-data-dir>');
  process.exit(2);
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const page = context.pages()[0] || (await context.newPage());
const log = [];
page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
page.on('requestfailed', (r) => log.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));

async function waitText(selector, text, timeout) {
  // Resolves with the element's text once it contains `text` (or exists, if no text).
  await page.waitForFunction(
    ([sel, want]) => {
      const el = document.querySelector(sel);
      return el && (want == null || el.innerText.includes(want));
    },
    [selector, text ?? null],
    { timeout, polling: 100 },
  );
  return page.innerText(selector);
}

const ops = {
  goto: async (c) => { await page.goto(c.url, { waitUntil: 'load', timeout: c.timeout ?? 90000 }); },
  reload: async (c) => { await page.reload({ waitUntil: 'load', timeout: c.timeout ?? 90000 }); },
  wait_text: (c) => waitText(c.selector, c.text, c.timeout ?? 30000),
  text: (c) => page.innerText(c.selector, { timeout: c.timeout ?? 5000 }),
  eval: (c) => page.evaluate(c.js),
  fill: async (c) => { await page.fill(c.selector, c.value); },
  click: async (c) => { await page.click(c.selector); },
  screenshot: async (c) => { await page.screenshot({ path: c.path, fullPage: c.fullPage ?? true }); },
  log: () => log.splice(0),
  close: async () => { await context.close(); },
};

const reply = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
reply({ id: 0, ok: true, value: { version: context.browser()?.version() ?? null } });

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
    const op = ops[cmd.op];
    if (!op) throw new Error(`browser: unknown op ${cmd.op}`);
    const value = await op(cmd);
    reply({ id: cmd.id, ok: true, value: value ?? null });
    if (cmd.op === 'close') break;
  } catch (e) {
    reply({ id: cmd?.id ?? null, ok: false, error: String(e?.message ?? e) });
  }
}
process.exit(0);
