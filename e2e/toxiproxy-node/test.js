// toxiproxy-node-client against `faultline toxiproxy-server`, unchanged:
// every call the client has, and each toxic's effect seen on a socket.
// Run by the e2e suite (e2e/toxiproxy_node_test.go) with TOXIPROXY_URL set;
// prints "ok" and exits 0, or prints what failed and exits 1.
"use strict";
const assert = require("node:assert/strict");
const net = require("node:net");
const { Toxiproxy, ToxiproxyError } = require("toxiproxy-node-client");

const url = process.env.TOXIPROXY_URL;
if (!url) {
  console.error("TOXIPROXY_URL is not set");
  process.exit(2);
}

// An echo server on loopback: the proxies' upstream.
function echoServer() {
  return new Promise((resolve) => {
    const sockets = new Set();
    const srv = net.createServer((s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
      s.pipe(s);
    });
    srv.listen(0, "127.0.0.1", () => resolve({
      addr: `127.0.0.1:${srv.address().port}`,
      close: () => { for (const s of sockets) s.destroy(); srv.close(); },
    }));
  });
}

// connect opens a socket to host:port.
function connect(addr) {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => resolve(s));
    s.once("error", reject);
  });
}

// roundTrip writes msg and resolves with the milliseconds until it came
// back; it rejects with the socket's error.
function roundTrip(s, msg) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    let got = "";
    const onData = (d) => {
      got += d.toString();
      if (got.length >= msg.length) {
        cleanup();
        assert.equal(got, msg);
        resolve(Date.now() - start);
      }
    };
    const onError = (e) => { cleanup(); reject(e); };
    const onEnd = () => { cleanup(); reject(new Error("EOF")); };
    const timer = setTimeout(() => { cleanup(); reject(new Error("timed out")); }, 10000);
    const cleanup = () => { clearTimeout(timer); s.off("data", onData); s.off("error", onError); s.off("end", onEnd); };
    s.on("data", onData);
    s.once("error", onError);
    s.once("end", onEnd);
    s.write(msg);
  });
}

// closed resolves with the error code (or "EOF") that ends s.
function closed(s) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("still open after 10s")), 10000);
    s.once("error", (e) => { clearTimeout(timer); resolve(e.code); });
    s.once("end", () => { clearTimeout(timer); resolve("EOF"); });
    s.resume();
  });
}

async function expectStatus(promise, status) {
  await assert.rejects(promise, (e) => e instanceof ToxiproxyError && e.message.includes(`status code ${status}`));
}

async function main() {
  const up = await echoServer();
  const toxiproxy = new Toxiproxy(url);
  try {
    const version = await toxiproxy.getVersion();
    assert.equal(JSON.parse(version).version, "2.12.0");

    const proxy = await toxiproxy.createProxy({ name: "node", listen: "127.0.0.1:0", upstream: up.addr });
    assert.equal(proxy.name, "node");
    assert.equal(proxy.enabled, true);
    assert.notEqual(proxy.listen, "127.0.0.1:0");
    await expectStatus(toxiproxy.createProxy({ name: "node", listen: "127.0.0.1:0", upstream: up.addr }), 409);
    await expectStatus(toxiproxy.get("missing"), 404);

    const all = await toxiproxy.getAll();
    assert.ok(all.node, "getAll has the proxy");
    assert.equal((await toxiproxy.get("node")).listen, proxy.listen);

    // latency, added while a connection is live, acts on it.
    const s = await connect(proxy.listen);
    await roundTrip(s, "hello");
    const latency = await proxy.addToxic({ type: "latency", stream: "downstream", toxicity: 1, attributes: { latency: 200, jitter: 0 } });
    assert.equal(latency.name, "latency_downstream");
    assert.deepEqual(latency.attributes, { latency: 200, jitter: 0 });
    const took = await roundTrip(s, "slow");
    assert.ok(took >= 200, `round trip ${took}ms with a 200ms latency`);
    const updated = await latency.update({ attributes: { jitter: 10 } });
    assert.deepEqual(updated.attributes, { latency: 200, jitter: 10 });
    const fetched = await proxy.getToxic("latency_downstream");
    assert.equal(fetched.toxicity, 1);
    await expectStatus(proxy.getToxic("missing"), 404);
    await expectStatus(proxy.addToxic({ type: "latency", stream: "downstream", toxicity: 1, attributes: {} }), 409);
    await expectStatus(proxy.addToxic({ type: "nope", stream: "downstream", toxicity: 1, attributes: {} }), 400);
    await updated.remove();
    await roundTrip(s, "after removal");

    // bandwidth 0 holds bytes; removing it delivers them.
    const cut = await proxy.addToxic({ name: "cut", type: "bandwidth", stream: "upstream", toxicity: 1, attributes: { rate: 0 } });
    const held = roundTrip(s, "held");
    await new Promise((r) => setTimeout(r, 200));
    await cut.remove();
    await held;

    // reset_peer: the client sees ECONNRESET.
    const gone = closed(s); // listening before the reset can arrive
    await proxy.addToxic({ type: "reset_peer", stream: "downstream", toxicity: 1, attributes: { timeout: 0 } });
    assert.equal(await gone, "ECONNRESET");
    await toxiproxy.reset();
    assert.equal((await toxiproxy.get("node")).enabled, true);

    // limit_data closes after N bytes.
    await proxy.addToxic({ type: "limit_data", stream: "downstream", toxicity: 1, attributes: { bytes: 4 } });
    const s2 = await connect(proxy.listen);
    let n = 0;
    s2.on("data", (d) => { n += d.length; });
    const end2 = closed(s2);
    s2.write("0123456789");
    await end2;
    assert.equal(n, 4);
    await toxiproxy.reset();

    // down: disable refuses, enable listens again on the same address.
    const down = await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream, name: proxy.name });
    assert.equal(down.enabled, false);
    await assert.rejects(connect(proxy.listen), (e) => e.code === "ECONNREFUSED");
    const upAgain = await down.update({ enabled: true, listen: proxy.listen, upstream: proxy.upstream, name: proxy.name });
    assert.equal(upAgain.listen, proxy.listen);
    const s3 = await connect(proxy.listen);
    await roundTrip(s3, "up");
    s3.destroy();

    // populate: per name, create or keep.
    const populated = await toxiproxy.populate([
      { name: "node", listen: proxy.listen, upstream: up.addr, enabled: true },
      { name: "node2", listen: "127.0.0.1:0", upstream: up.addr, enabled: true },
    ]);
    assert.equal(populated.node.listen, proxy.listen);
    assert.ok(populated.node2);

    await proxy.remove();
    await populated.node2.remove();
    await expectStatus(toxiproxy.get("node"), 404);
    s.destroy();
    s2.destroy();
  } finally {
    up.close();
  }
}

main().then(() => { console.log("ok"); }, (e) => { console.error(e); process.exit(1); });
