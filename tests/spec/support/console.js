// Opens a page in headless Chromium and reports what its console saw, for the specs.
//   node console.js USER_DATA_DIR URL
// Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on
// its fd 3, replies and events on its fd 4, each message JSON ended by a NUL byte), so nothing
// listens on a port. Prints one JSON object: { "messages": [ { level, source, text, url } ],
// "dom": the rendered page's outerHTML }, where messages are every console call
// (Runtime.consoleAPICalled), uncaught exception (Runtime.exceptionThrown) and browser log entry
// (Log.entryAdded: failed loads, security violations, interventions) until the load event.
// Exits 2 with a message on standard error when Chromium fails or 30 s pass.
'use strict';
const { spawn } = require('child_process');

const [userDataDir, url] = process.argv.slice(2);
if (!userDataDir || !url) {
  process.stderr.write('usage: node console.js USER_DATA_DIR URL\n');
  process.exit(2);
}

const chromium = spawn('chromium', [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--user-data-dir=' + userDataDir, '--remote-debugging-pipe', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });

let stderr = '';
chromium.stderr.on('data', (d) => { stderr += d; });

function fail(message) {
  process.stderr.write(`console.js: ${message}\n${stderr}`);
  chromium.kill('SIGKILL');
  process.exit(2);
}
const timer = setTimeout(() => fail('no load event within 30 s'), 30000);
chromium.on('error', (e) => fail(`cannot start chromium: ${e.message}`));
chromium.on('exit', (code, signal) => { if (!finished) fail(`chromium exited (${code}, ${signal})`); });

let nextId = 1;
let finished = false;
const pending = new Map();
const waiting = new Map();
const messages = [];

function send(method, params, sessionId) {
  const id = nextId++;
  const msg = { id, method, params: params || {} };
  if (sessionId) msg.sessionId = sessionId;
  chromium.stdio[3].write(JSON.stringify(msg) + '\0');
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
}

function once(method) {
  return new Promise((resolve) => waiting.set(method, resolve));
}

function text(arg) {
  if (arg.value !== undefined) return String(arg.value);
  return arg.description || arg.type;
}

function event(msg) {
  const p = msg.params;
  if (msg.method === 'Runtime.consoleAPICalled') {
    messages.push({ level: p.type, source: 'console-api', text: p.args.map(text).join(' '),
                    url: (p.stackTrace && p.stackTrace.callFrames[0] || {}).url || '' });
  } else if (msg.method === 'Runtime.exceptionThrown') {
    const d = p.exceptionDetails;
    messages.push({ level: 'error', source: 'exception',
                    text: (d.exception && d.exception.description) || d.text, url: d.url || '' });
  } else if (msg.method === 'Log.entryAdded') {
    messages.push({ level: p.entry.level, source: p.entry.source, text: p.entry.text, url: p.entry.url || '' });
  }
  const w = waiting.get(msg.method);
  if (w) {
    waiting.delete(msg.method);
    w(p);
  }
}

let buffer = '';
chromium.stdio[4].on('data', (chunk) => {
  buffer += chunk.toString('utf8');
  let end;
  while ((end = buffer.indexOf('\0')) >= 0) {
    const msg = JSON.parse(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
    if (msg.id !== undefined && pending.has(msg.id)) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
    } else if (msg.method) {
      event(msg);
    }
  }
});

(async () => {
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  await send('Runtime.enable', {}, sessionId);
  await send('Log.enable', {}, sessionId);
  await send('Page.enable', {}, sessionId);
  const loaded = once('Page.loadEventFired');
  const nav = await send('Page.navigate', { url }, sessionId);
  if (nav.errorText) fail(`cannot open ${url}: ${nav.errorText}`);
  await loaded;
  // a round trip after the load event: every event sent before it has arrived
  const dom = await send('Runtime.evaluate',
    { expression: 'document.documentElement.outerHTML', returnByValue: true }, sessionId);
  finished = true;
  clearTimeout(timer);
  process.stdout.write(JSON.stringify({ messages, dom: dom.result.value }) + '\n');
  await send('Browser.close').catch(() => {});
  chromium.kill('SIGKILL');
})().catch((e) => fail(e.message));
