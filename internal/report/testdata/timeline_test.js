// Unit tests of the timeline model (assets/timeline.js), run by node from
// TestTimelineModel. Each failure prints "FAIL: ..." and sets the exit code.
"use strict";
var T = require("../assets/timeline.js");
var failed = 0;
function eq(got, want, what) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    console.log("FAIL: " + what + ": got " + JSON.stringify(got) + ", want " + JSON.stringify(want));
    failed++;
  }
}
function at(ms) { return new Date(Date.UTC(2026, 0, 1) + ms).toISOString(); }
var seq = 0;
function ev(proxy, ms, kind, fields) {
  var e = { seq: ++seq, time: at(ms), kind: kind };
  for (var k in fields) e[k] = fields[k];
  return { id: seq, proxy: proxy, event: e };
}

// A lifecycle: lanes per proxy and connection, fault spans by name and
// direction, counters.
var m = new T.Model();
[
  ev("db", 0, "accepted", { conn: 1 }),
  ev("db", 1, "borrowed", { conn: 1, upstream: 4, reused: true, idle: "2ms" }),
  ev("db", 2, "fault-applied", { conn: 1, fault: "latency-1", fault_kind: "latency", dir: "up" }),
  ev("db", 2, "fault-applied", { conn: 1, fault: "latency-1", fault_kind: "latency", dir: "down" }),
  ev("db", 3, "fault-fired", { conn: 1, fault: "latency-1", dir: "down" }),
  ev("db", 5, "fault-cleared", { conn: 1, fault: "latency-1", dir: "up" }),
  ev("web", 6, "accepted", { conn: 1 }),
  ev("db", 8, "interrupted", { conn: 1, upstream: 4, took: "10µs" }),
  ev("db", 9, "discarded", { conn: 1, upstream: 4, reason: "unread" }),
  ev("db", 10, "closed", { conn: 1, upstream: 4, by: "client", how: "FIN", bytes_up: 7, bytes_down: 9 }),
  ev("db", 11, "discarded", { upstream: 5, reason: "idle-timeout" })
].forEach(function (e) { m.add(e); });
eq(Array.from(m.lanes.keys()), ["db/c1", "web/c1", "db/u5"], "lanes");
var l = m.lanes.get("db/c1");
eq([l.start - m.t0, l.end - m.t0, l.upstream, l.reused, l.closedBy, l.how, l.reason, l.bytesUp, l.bytesDown],
  [0, 10, 4, true, "client", "FIN", "unread", 7, 9], "db conn 1");
eq(l.spans.map(function (s) { return [s.dir, s.start - m.t0, s.end - m.t0, s.fired]; }),
  [["up", 2, 5, 0], ["down", 2, 10, 1]], "spans: up cleared at 5, down ends with the connection");
eq(m.lanes.get("web/c1").end, null, "web conn 1 is open");
var c = m.counters;
eq([c.events, c.conns, c.open, c.faultsFired, c.discards, c.bytesUp, c.bytesDown],
  [11, 2, 1, 1, { unread: 1, "idle-timeout": 1 }, 7, 9], "counters");

// A violation is marked on each lane its events name.
m.violation({ proxy: "db", check: "CheckX", what: "bad", events: [{ seq: 9, conn: 1, upstream: 4, time: at(9) }, { seq: 11, upstream: 5, time: at(11) }] });
eq([m.lanes.get("db/c1").violations.length, m.lanes.get("db/u5").violations.length, m.lanes.get("web/c1").violations.length], [1, 1, 0], "violations");

// A bounded model drops the oldest closed lanes first.
var b = new T.Model({ maxLanes: 3 });
b.add(ev("p", 0, "accepted", { conn: 1 }));
b.add(ev("p", 1, "accepted", { conn: 2 }));
b.add(ev("p", 2, "closed", { conn: 2, by: "client", how: "FIN" }));
b.add(ev("p", 3, "accepted", { conn: 3 }));
b.add(ev("p", 4, "accepted", { conn: 4 }));
eq(Array.from(b.lanes.keys()), ["p/c1", "p/c3", "p/c4"], "bounded: closed conn 2 dropped before open conn 1");
b.add(ev("p", 5, "accepted", { conn: 5 }));
eq(Array.from(b.lanes.keys()), ["p/c3", "p/c4", "p/c5"], "bounded: then the oldest open one");

// Marks per lane are bounded, the first (accepted) kept.
var many = new T.Model();
many.add(ev("p", 0, "accepted", { conn: 1 }));
for (var i = 0; i < 500; i++) many.add(ev("p", 1 + i, "fault-fired", { conn: 1, fault: "f" }));
var ml = many.lanes.get("p/c1");
eq([ml.marks.length, ml.marks[0].kind, ml.events.length], [200, "accepted", 200], "bounded marks");

// Bad times do not break the model.
var bad = new T.Model();
bad.add({ id: 1, proxy: "p", event: { seq: 1, time: "not a time", kind: "accepted", conn: 1 } });
eq(bad.lanes.size, 1, "bad time");

if (failed) process.exit(1);
console.log("ok");
