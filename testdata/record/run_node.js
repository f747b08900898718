#!/usr/bin/env node
// Plays one scenario (see gen_scenarios.py) with the Node `ws` library and
// logs every frame this process sends into a raw truth file.
//
// usage: node run_node.js ROLE SCENARIO.json RAW_TRUTH.jsonl [READY_FILE]
//   ROLE: both | server | client
//
// Same lock-step protocol as run_py.py. Who logs what:
//   - every message, ping, pong and close an application sends, by its sender;
//   - ws answers a ping with an automatic pong just before emitting 'ping', so
//     the answering side logs it there ("auto": true);
//   - a Python peer's automatic pong is invisible to it, so the node pinger
//     logs it when the pong arrives;
//   - ws echoes a received close (code and reason, or an empty close for
//     1005); the echoing side logs it ("auto": true).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const { performance } = require('perf_hooks');
const { WebSocket, WebSocketServer } = require('ws');
const https = require('https');
const WS_VERSION = require('ws/package.json').version;

const INLINE_LIMIT = 2048;

class Truth {
  constructor(path, serverPort) {
    this.fd = fs.openSync(path, 'w');
    this.serverPort = serverPort;
  }

  log(conn, clientPort, dir, opcode, payload, extra = {}) {
    const rec = {
      t: Math.round((performance.timeOrigin + performance.now()) * 1e6),
      conn,
      client_port: clientPort,
      server_port: this.serverPort,
      dir,
      opcode,
      len: payload.length,
      sha256: crypto.createHash('sha256').update(payload).digest('hex'),
    };
    if (payload.length <= INLINE_LIMIT) {
      if (opcode === 'text') rec.text = payload.toString('utf8');
      else if (opcode !== 'close') rec.b64 = payload.toString('base64');
    }
    if (extra.close) {
      rec.close_code = extra.close[0];
      rec.close_reason = extra.close[1];
    }
    rec.compressed = extra.compressed === undefined ? null : extra.compressed;
    if (extra.frames !== undefined) rec.frames = extra.frames;
    if (extra.auto) rec.auto = true;
    rec.impl = `node-ws/${WS_VERSION} node/${process.versions.node}`;
    fs.writeSync(this.fd, JSON.stringify(rec) + '\n');
  }
}

function closePayload(code, reason) {
  if (code === null || code === undefined || code === 1005) return [Buffer.alloc(0), [null, '']];
  const r = Buffer.from(reason, 'utf8');
  const buf = Buffer.alloc(2 + r.length);
  buf.writeUInt16BE(code, 0);
  r.copy(buf, 2);
  return [buf, [code, reason]];
}

// Mirrors ws' Sender#send: once deflate is negotiated every message is
// compressed unless {compress: false}; the threshold only applies when this
// side's no_context_takeover was negotiated, and is judged on the first frame.
function willCompress(ws, compressOpt, firstLen) {
  const pmd = ws._extensions && ws._extensions['permessage-deflate'];
  if (!pmd || compressOpt === false) return false;
  const noCtx = pmd.params[pmd._isServer ? 'server_no_context_takeover' : 'client_no_context_takeover'];
  return noCtx ? firstLen >= pmd._threshold : true;
}

// Every connection gets its message queue and close promise at once, so no
// event is missed between steps.
function attach(ws) {
  const queue = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const m = { data: Buffer.from(data), isBinary };
    if (waiters.length) waiters.shift()(m);
    else queue.push(m);
  });
  ws.closed = new Promise((resolve) => {
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
  });
  ws.nextMessage = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r)));
}

function sendFrame(ws, data, opts) {
  return new Promise((resolve, reject) => ws.send(data, opts, (err) => (err ? reject(err) : resolve())));
}

class Player {
  constructor(scenario, truth, role) {
    this.truth = truth;
    this.me = role === 'client' ? 'c' : 's';
    this.peerImpl = role === 'server' ? scenario.client_impl : scenario.server.impl;
  }

  dirOf(side) {
    return side === 'c' ? 'c2s' : 's2c';
  }

  async play(ws, conn, clientPort, actions) {
    const mine = this.dirOf(this.me);
    ws.on('ping', (data) => {
      if (ws.readyState === WebSocket.OPEN) {
        this.truth.log(conn, clientPort, mine, 'pong', Buffer.from(data), { compressed: false, frames: 1, auto: true });
      }
    });
    for (const a of actions) {
      if (a.from === this.me) await this.send(ws, conn, clientPort, a);
      else await this.receive(ws, conn, clientPort, a);
    }
    await ws.closed;
  }

  async send(ws, conn, clientPort, a) {
    const mine = this.dirOf(this.me);
    const peerDir = this.dirOf(this.me === 'c' ? 's' : 'c');
    const log = (...args) => this.truth.log(conn, clientPort, ...args);
    const frags = (a.frags || []).map((f) => Buffer.from(f, 'base64'));
    if (a.op === 'text' || a.op === 'binary') {
      const payload = Buffer.concat(frags);
      const compressed = willCompress(ws, a.compress, frags[0].length);
      log(mine, a.op, payload, { compressed, frames: frags.length });
      for (let i = 0; i < frags.length; i++) {
        await sendFrame(ws, frags[i], {
          binary: a.op === 'binary',
          compress: a.compress !== false,
          fin: i === frags.length - 1,
        });
      }
    } else if (a.op === 'ping') {
      log(mine, 'ping', frags[0], { compressed: false, frames: 1 });
      const pong = new Promise((resolve) => ws.once('pong', resolve));
      ws.ping(frags[0]);
      const got = await pong;
      if (!Buffer.from(got).equals(frags[0])) throw new Error(`conn ${conn}: pong payload differs`);
      if (this.peerImpl === 'python') log(peerDir, 'pong', frags[0], { compressed: false, frames: 1, auto: true });
    } else if (a.op === 'pong') {
      log(mine, 'pong', frags[0], { compressed: false, frames: 1 });
      await new Promise((resolve, reject) => ws.pong(frags[0], undefined, (err) => (err ? reject(err) : resolve())));
    } else if (a.op === 'close') {
      const [payload, info] = closePayload(a.code, a.reason);
      log(mine, 'close', payload, { compressed: false, frames: 1, close: info });
      if (a.code === null) ws.close();
      else ws.close(a.code, a.reason);
      const got = await ws.closed;
      const expected = a.code === null ? 1005 : a.code;
      if (got.code !== expected || got.reason !== (a.reason || '')) {
        throw new Error(`conn ${conn}: peer replied ${JSON.stringify(got)} to ${JSON.stringify(a)}`);
      }
    } else {
      throw new Error(`unknown op ${a.op}`);
    }
  }

  async receive(ws, conn, clientPort, a) {
    if (a.op === 'text' || a.op === 'binary') {
      const expected = Buffer.concat(a.frags.map((f) => Buffer.from(f, 'base64')));
      const m = await ws.nextMessage();
      if (m.isBinary !== (a.op === 'binary') || !m.data.equals(expected)) {
        throw new Error(`conn ${conn}: unexpected message (${m.data.length} bytes, binary=${m.isBinary})`);
      }
    } else if (a.op === 'close') {
      const got = await ws.closed;
      const [payload, info] = closePayload(got.code, got.reason);
      this.truth.log(conn, clientPort, this.dirOf(this.me), 'close', payload, {
        compressed: false, frames: 1, auto: true, close: info,
      });
      const expected = a.code === null ? 1005 : a.code;
      if (got.code !== expected || got.reason !== (a.reason || '')) {
        throw new Error(`conn ${conn}: got close ${JSON.stringify(got)}, expected ${JSON.stringify(a)}`);
      }
    }
    // Pings and pongs from the peer are handled inside ws.
  }
}

function deflateOption(d) {
  if (d === null) return false;
  if (d === 'default') return true;
  return d;
}

function url(scenario, i) {
  const host = scenario.host.includes(':') ? `[${scenario.host}]` : scenario.host;
  return `${scenario.tls ? 'wss' : 'ws'}://${host}:${scenario.port}/c/${i}`;
}

// wss:// (record_tls.sh): TLS options of a scenario's "tls" object; keys are
// logged by node's --tls-keylog, certificate from TLS_CERT / TLS_KEY.
function tlsOptions(scenario) {
  const t = scenario.tls;
  const o = { maxVersion: t.max_version === '1.2' ? 'TLSv1.2' : 'TLSv1.3' };
  if (t.ciphers) o.ciphers = t.ciphers;
  if (t.ciphersuites) o.ciphers = t.ciphersuites;
  return o;
}

function runServer(scenario, truth, readyFile) {
  const player = new Player(scenario, truth, 'server');
  const conns = scenario.connections;
  let finished = 0;
  return new Promise((resolveListening, rejectAll) => {
    const done = new Promise((resolveDone, rejectDone) => {
      let server = null;
      if (scenario.tls) {
        server = https.createServer({
          ...tlsOptions(scenario),
          cert: fs.readFileSync(process.env.TLS_CERT),
          key: fs.readFileSync(process.env.TLS_KEY),
        });
        server.listen(scenario.port, scenario.host);
      }
      const wss = new WebSocketServer({
        ...(server ? { server } : { host: scenario.host, port: scenario.port }),
        perMessageDeflate: deflateOption(scenario.server.deflate),
      });
      wss.on('error', rejectAll);
      wss.on('listening', () => {
        if (readyFile) fs.writeFileSync(readyFile, 'ready\n');
        resolveListening({ done });
      });
      wss.on('connection', (ws, req) => {
        attach(ws);
        const i = Number(req.url.split('/').pop());
        player.play(ws, i, req.socket.remotePort, conns[i].actions).then(() => {
          finished += 1;
          if (finished === conns.length) wss.close(() => (server ? server.close(() => resolveDone()) : resolveDone()));
        }, rejectDone);
      });
    });
  });
}

function open(scenario, i, spec) {
  return new Promise((resolve, reject) => {
    const tls = scenario.tls ? { ...tlsOptions(scenario), rejectUnauthorized: false, servername: 'localhost' } : {};
    const ws = new WebSocket(url(scenario, i), { perMessageDeflate: deflateOption(spec.client_deflate), ...tls });
    attach(ws);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function runClients(scenario, truth) {
  const player = new Player(scenario, truth, 'client');
  const conns = scenario.connections;
  if (scenario.concurrent) {
    const sockets = [];
    for (let i = 0; i < conns.length; i++) sockets.push(await open(scenario, i, conns[i]));
    await Promise.all(sockets.map((ws, i) => player.play(ws, i, ws._socket.localPort, conns[i].actions)));
  } else {
    for (let i = 0; i < conns.length; i++) {
      const ws = await open(scenario, i, conns[i]);
      await player.play(ws, i, ws._socket.localPort, conns[i].actions);
    }
  }
}

async function main() {
  const [role, path, raw, readyFile] = process.argv.slice(2);
  const scenario = JSON.parse(fs.readFileSync(path, 'utf8'));
  const truth = new Truth(raw, scenario.port);
  if (role === 'server') {
    const { done } = await runServer(scenario, truth, readyFile);
    await done;
  } else if (role === 'client') {
    await runClients(scenario, truth);
  } else if (role === 'both') {
    const { done } = await runServer(scenario, truth);
    await runClients(scenario, truth);
    await done;
  } else {
    throw new Error(`unknown role ${role}`);
  }
}

const watchdog = setTimeout(() => {
  console.error('run_node.js: timed out');
  process.exit(2);
}, 60000);
watchdog.unref();

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
