// The web client page in a real browser: headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) loads the page from a
// server's WebSocket listener, shows only the nick form until the welcome,
// registers (after a refused nick), lists who is online, and chats with a
// plain TCP client of the same server: a message from TCP shown,
// messages to everyone, to one user and to a room received by TCP, text
// from others never turned into HTML. Prints `ok ...` per step, exits
// non-zero at the first failure, and saves a screenshot.
//
//   npm install --prefix tests/browser
//   node tests/browser/page.js http://127.0.0.1:WSPORT/ TCPPORT shot.png
//
// tests/browser.rs runs it from `cargo test` (installing what it needs);
// CHAT_CHROMIUM names another Chromium than /usr/bin/chromium.
'use strict';
const { chromium } = require('playwright-core');
const net = require('net');

const DEADLINE_MS = 10000;

// A length-prefixed JSON client of the chat server (docs/protocol.md).
function tcpClient(port) {
  const sock = net.connect(port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  const got = [];
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4) {
      const n = buf.readUInt32BE(0);
      if (buf.length < 4 + n) break;
      got.push(JSON.parse(buf.subarray(4, 4 + n).toString('utf8')));
      buf = buf.subarray(4 + n);
    }
  });
  return {
    got,
    send(obj) {
      const body = Buffer.from(JSON.stringify(obj));
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      sock.write(Buffer.concat([head, body]));
    },
    // Resolves with the first frame that matches, or fails at the deadline.
    waitFor(pred, what) {
      return new Promise((resolve, reject) => {
        const end = Date.now() + DEADLINE_MS;
        const poll = () => {
          const hit = got.find(pred);
          if (hit) return resolve(hit);
          if (Date.now() > end) return reject(new Error('TCP client never got ' + what));
          setTimeout(poll, 10);
        };
        poll();
      });
    },
    end() { sock.destroy(); },
  };
}

const ok = (what) => console.log('ok ' + what);
const logHas = (page, text) => page.waitForFunction(
  (t) => document.getElementById('log').textContent.includes(t), text, { timeout: DEADLINE_MS, polling: 20 });

(async () => {
  const [url, tcpPort, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHAT_CHROMIUM || '/usr/bin/chromium',
    // Playwright adds --headless and a fresh, empty --user-data-dir. Without
    // the background-networking flags Chromium tries to reach Google's
    // hosts at every start, which a closed network refuses.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const bob = tcpClient(+tcpPort);
    bob.send({ type: 'hello', nick: 'bob' });
    await bob.waitFor((m) => m.type === 'welcome', 'its welcome');

    await page.goto(url);
    await page.waitForSelector('#state.open', { timeout: DEADLINE_MS });
    ok('page loaded and connected');
    if (await page.isVisible('#app') || !(await page.isVisible('#login'))) {
      throw new Error('before registration the chat panel shows, or the nick form does not');
    }
    ok('the chat panel is hidden before registration');
    await page.fill('#nick', 'bob');
    await page.click('#join');
    await page.waitForFunction(() => document.getElementById('login-error').textContent.includes('taken'),
      null, { timeout: DEADLINE_MS });
    ok('a taken nick is refused in plain words');
    await page.fill('#nick', 'alice');
    await page.click('#join');
    await page.waitForSelector('#app:not([hidden])', { timeout: DEADLINE_MS });
    await bob.waitFor((m) => m.type === 'presence' && m.nick === 'alice' && m.state === 'online', 'alice online');
    if (await page.isVisible('#login')) throw new Error('the nick form still shows after the welcome');
    ok('registered');
    await page.waitForFunction(() => {
      const t = document.getElementById('users').textContent;
      return t.includes('bob') && t.includes('alice (you)');
    }, null, { timeout: DEADLINE_MS });
    ok('the users online are listed');

    bob.send({ type: 'all', text: 'hello <b>alice</b> from tcp' });
    await logHas(page, 'hello <b>alice</b> from tcp');
    if ((await page.$$('#log b')).length) throw new Error('text from others became HTML');
    ok('a TCP client\'s message is shown, as text');

    await page.fill('#text', 'hello everyone');
    await page.press('#text', 'Enter');
    await bob.waitFor((m) => m.type === 'all' && m.from === 'alice' && m.text === 'hello everyone', 'the broadcast');
    await page.waitForFunction(() => {
      const a = document.querySelector('#log .line.mine .ack');
      return a && a.textContent === '\u2713 1';
    }, null, { timeout: DEADLINE_MS });
    ok('a message to everyone reaches the TCP client');

    await page.selectOption('#target', '@bob');
    await page.fill('#text', 'hi bob, privately');
    await page.press('#text', 'Enter');
    await bob.waitFor((m) => m.type === 'msg' && m.text === 'hi bob, privately', 'the private message');
    ok('a message to one user reaches the TCP client');

    bob.send({ type: 'join', room: '#rust' });
    await bob.waitFor((m) => m.type === 'joined', 'joined');
    await page.fill('#text', '/join #rust');
    await page.press('#text', 'Enter');
    await page.waitForFunction(() => document.getElementById('rooms').textContent.includes('#rust'),
      null, { timeout: DEADLINE_MS });
    await page.fill('#text', 'hi room');
    await page.press('#text', 'Enter');
    await bob.waitFor((m) => m.type === 'room' && m.room === '#rust' && m.text === 'hi room', 'the room message');
    ok('a message to a room reaches the TCP client');

    bob.send({ type: 'msg', to: 'alice', text: 'private reply' });
    bob.send({ type: 'room', room: '#rust', text: 'room reply' });
    await logHas(page, 'private reply');
    await logHas(page, 'room reply');
    ok('private and room messages from TCP are shown');

    if (errors.length) throw new Error('page errors: ' + errors.join('; '));
    if (shot) await page.screenshot({ path: shot });
    bob.end();
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error('FAILED: ' + e.message);
  process.exit(1);
});
