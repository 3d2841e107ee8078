/* clew report: the whole-run views drawn on canvas — every client op on a zoomable timeline
 * (faults coloured by kind, with their targets, and one row per node for its log lines),
 * and the merged, searchable per-node list (node logs, fault ledger, client ops).
 * The ops arrive as base64 typed columns (reports/columns.py); text goes into the page with
 * textContent only. report.js calls window.clewViews.* with its helpers. */
(function () {
  "use strict";
  // A Map, not an object: a kind named "constructor" or "__proto__" (a foreign ledger may
  // have one) met Object's own properties there, and no chart was drawn.
  var FAULT_COLORS = new Map([
    ["partition", "#8e44ad"], ["pause", "#16a085"], ["kill", "#6d4c41"], ["packet", "#2c3e50"],
    ["clock", "#b7950b"], ["disk-full", "#5d6d7e"], ["bug", "#d35400"]
  ]);
  var SPARE = ["#1abc9c", "#7d3c98", "#a04000", "#117864", "#4a235a", "#7b7d7d"];
  function faultColor(kind) {
    kind = String(kind);
    if (FAULT_COLORS.has(kind)) return FAULT_COLORS.get(kind);
    var h = 0;
    for (var i = 0; i < kind.length; i++) h = (h * 31 + kind.charCodeAt(i)) >>> 0;
    FAULT_COLORS.set(kind, SPARE[h % SPARE.length]);
    return FAULT_COLORS.get(kind);
  }
  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16 & 255) + "," + (n >> 8 & 255) + "," + (n & 255) + "," + a + ")";
  }
  function bytes(b64) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(b64); // native: no per-byte loop
    var s = atob(b64), n = s.length, out = new Uint8Array(n);
    for (var i = 0; i < n; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function decode(b64, Type) {
    if (b64 === null || b64 === undefined) return null;
    var b = bytes(b64);
    return new Type(b.buffer, 0, b.byteLength / Type.BYTES_PER_ELEMENT);
  }

  /* The ops as columns, with per-lane lists and the lookups the views need. */
  var UINT = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array };
  var SINT = { 1: Int8Array, 2: Int16Array, 4: Int32Array };
  function opsModel(d) {
    var o = d.ops;
    function ints(name) { return o[name] ? decode(o[name], UINT[o[name + "_bytes"]]) : null; }
    var m = {
      n: o.shown, total: o.total,
      start: decode(o.start, Float32Array), dur: decode(o.dur, Float32Array),
      lane: ints("lane"), kind: decode(o.kind, Uint8Array), f: decode(o.f, Uint8Array),
      node: decode(o.node, Uint8Array), key: ints("key"), val: ints("val"),
      keyNone: o.key_bytes ? Math.pow(2, 8 * o.key_bytes) - 1 : -1,
      valNone: o.val_bytes ? Math.pow(2, 8 * o.val_bytes) - 1 : -1,
      // integer values inline (reports/columns.py): the lowest number is none, the next null
      valInts: o.val_ints ? decode(o.val_ints, SINT[o.val_int_bytes]) : null,
      valIntNone: o.val_int_bytes ? -Math.pow(2, 8 * o.val_int_bytes - 1) : 0,
      lanes: o.lanes, fNames: o.f_names, nodes: o.nodes, texts: o.texts, keyTexts: o.key_texts,
      lo: o.lo, hi: o.hi > o.lo ? o.hi : o.lo + 1
    };
    var gap = ints("gap"), index = new Float64Array(m.n), at = 0, maxDur = 0;
    for (var i = 0; i < m.n; i++) {
      at += gap[i]; index[i] = at;
      if (m.dur[i] > maxDur) maxDur = m.dur[i];
    }
    m.index = index;
    m.maxDur = maxDur;
    return m;
  }
  function opText(m, i) {
    var KIND = ["ok", "fail", "info", "pending"];
    var s = m.f[i] < m.fNames.length ? m.fNames[m.f[i]] : "?";
    if (m.key && m.key[i] !== m.keyNone) s += " [" + m.keyTexts[m.key[i]] + "]";
    if (m.val && m.val[i] !== m.valNone) s += " " + m.texts[m.val[i]];
    else if (m.valInts && m.valInts[i] !== m.valIntNone) s += " " + (m.valInts[i] === m.valIntNone + 1 ? "null" : m.valInts[i]);
    return s + " · " + KIND[m.kind[i]];
  }
  /* Rows of the timeline: one per worker (process mod concurrency) or one per process. */
  function rowsOf(m, byWorker, conc) {
    var labels = [], laneRow = new Uint32Array(m.lanes.length);
    if (byWorker) {
      var members = [];
      for (var w = 0; w < conc; w++) { members.push([]); }
      m.lanes.forEach(function (p, i) { var r = ((p % conc) + conc) % conc; laneRow[i] = r; members[r].push(p); });
      members.forEach(function (ps, w) {
        labels.push("w" + w + (ps.length > 1 ? " (" + ps.length + " procs)" : ps.length ? " p" + ps[0] : ""));
      });
    } else {
      m.lanes.forEach(function (p, i) { laneRow[i] = i; labels.push("p" + p); });
    }
    return { labels: labels, laneRow: laneRow };
  }

  function ticks(lo, hi, n) {
    var span = hi - lo, raw = span / Math.max(1, n), p = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    var r = raw / p, step = (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * p, out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
    return { values: out, step: step };
  }
  function tickText(v, step) {
    var digits = Math.max(0, -Math.floor(Math.log10(step || 1)));
    return v.toFixed(Math.min(digits, 6));
  }
  /* The page's time axis (reports/data.py's TimeAxis.describe): x values are in axis.unit
   * (s, ms, µs or ns since the first op, or history positions). */
  var UNITS = [["s", 1e9], ["ms", 1e6], ["µs", 1e3], ["ns", 1]];
  function durText(ns) { // a duration in the unit that fits it: "2.31 ms", "17 ns"
    var a = Math.abs(ns);
    for (var i = 0; i < UNITS.length; i++) {
      if (a >= UNITS[i][1] || i === UNITS.length - 1) return +(ns / UNITS[i][1]).toPrecision(3) + " " + UNITS[i][0];
    }
  }
  function xDurText(axis, dx) { // a span of x units, as words
    if (axis.positions) return +dx.toPrecision(4) + (Math.abs(dx) === 1 ? " position" : " positions");
    return durText(dx * axis.ns_per_unit);
  }
  function xText(axis, v) { // an x value with its unit: "12.5 ms", "position 40"
    if (axis.positions) return "position " + +v.toFixed(2);
    return +v.toPrecision(6) + " " + axis.unit;
  }

  /* ---- The canvas timeline ------------------------------------------------------------ */
  function opsTimeline(node, d, h) {
    var tDecode = performance.now();
    var m = opsModel(d);
    tDecode = performance.now() - tDecode;
    if (!m.n) { node.appendChild(h.el("p", { "class": "note" }, "No client ops.")); return null; }
    var faults = d.faults || [];
    var logs = d.node_logs;
    var logT = logs ? decode(logs.t, Float32Array) : null, logNode = logs ? decode(logs.node, Uint8Array) : null;
    var nodeNames = logs ? logs.nodes.slice() : [];
    var ag = agentsModel(d);
    if (ag) ag.nodes.forEach(function (n) { if (nodeNames.indexOf(n) < 0) nodeNames.push(n); });
    faults.forEach(function (w) { (w.targets || []).forEach(function (t) { if (nodeNames.indexOf(t) < 0) nodeNames.push(t); }); });
    var conc = d.concurrency && m.lanes.every(function (p) { return typeof p === "number"; }) ? d.concurrency : 0;
    var byWorker = conc > 0 && m.lanes.length > conc;
    var rows = rowsOf(m, byWorker, conc);

    var controls = h.el("div", { "class": "tl-controls" });
    var legend = h.el("span", { "class": "legend" });
    ["ok", "fail", "info", "pending"].forEach(function (k) {
      var s = h.el("span"); s.appendChild(h.el("span", { "class": "swatch", style: "background:" + h.COLORS[k] }));
      s.appendChild(document.createTextNode(k)); legend.appendChild(s);
    });
    var kinds = [];
    faults.forEach(function (w) { if (kinds.indexOf(w.f) < 0) kinds.push(w.f); });
    kinds.forEach(function (k) {
      var s = h.el("span"); s.appendChild(h.el("span", { "class": "swatch", style: "background:" + alpha(faultColor(k), 0.45) }));
      s.appendChild(document.createTextNode("fault: " + faultSummary(faults, k, d.axis, m.hi))); legend.appendChild(s);
    });
    if (logs) {
      var s = h.el("span"); s.appendChild(h.el("span", { "class": "swatch", style: "background:#777" }));
      s.appendChild(document.createTextNode("node log line")); legend.appendChild(s);
    }
    if (ag) {
      [["#b03a2e", "agent's act (strike, heal)"], ["#2471a3", "agent saw (process, log)"]].forEach(function (p) {
        var s = h.el("span"); s.appendChild(h.el("span", { "class": "swatch", style: "background:" + p[0] }));
        s.appendChild(document.createTextNode(p[1])); legend.appendChild(s);
      });
    }
    controls.appendChild(legend);
    if (conc) {
      var sel = h.el("select", { "aria-label": "rows" });
      [["worker", "a row per worker"], ["process", "a row per process"]].forEach(function (p) {
        var o = h.el("option", { value: p[0] }, p[1]); if ((p[0] === "worker") === byWorker) o.selected = true; sel.appendChild(o);
      });
      sel.addEventListener("change", function () { byWorker = sel.value === "worker"; rows = rowsOf(m, byWorker, conc); layout(); draw(); });
      controls.appendChild(sel);
    }
    var reset = h.el("button", { type: "button" }, "whole run");
    controls.appendChild(reset);
    var where = h.el("span", { "class": "note tl-where" });
    controls.appendChild(where);
    node.appendChild(controls);
    var canvas = h.el("canvas", { "class": "timeline-canvas", "data-ops": String(m.n) });
    node.appendChild(canvas);
    var ctx = canvas.getContext("2d");

    var left = 110, right = 16, top = 30, laneH = 10, nodeH = 16, gap = 8, axisH = 26, W = 900, H = 400;
    var view = { lo: m.lo, hi: m.hi };
    var dpr = window.devicePixelRatio || 1;
    function layout() {
      W = Math.max(600, (node.clientWidth || 1000) - 4);
      var nRows = rows.labels.length;
      laneH = Math.max(2, Math.min(14, Math.floor(520 / Math.max(1, nRows))));
      H = top + nRows * laneH + (nodeNames.length ? gap + nodeNames.length * nodeH : 0) + axisH;
      canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
      canvas.style.width = W + "px"; canvas.style.height = H + "px";
    }
    function X(v) { return left + (v - view.lo) / (view.hi - view.lo) * (W - left - right); }
    function T(px) { return view.lo + (px - left) / (W - left - right) * (view.hi - view.lo); }
    function firstFrom(t) { // first op whose start >= t (ops are in invocation order)
      var a = 0, b = m.n;
      while (a < b) { var c = (a + b) >> 1; if (m.start[c] < t) a = c + 1; else b = c; }
      return a;
    }
    var nodesTop = function () { return top + rows.labels.length * laneH + gap; };

    function draw() {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, W, H);
      ctx.font = "11px system-ui, sans-serif";
      var lanesBottom = top + rows.labels.length * laneH;
      var bottom = H - axisH;
      // Fault bands over the op rows, labelled with kind and targets.
      ctx.save();
      ctx.beginPath(); ctx.rect(left, 0, W - left - right, H); ctx.clip();
      var labelRow = 0;
      faults.forEach(function (w) {
        var stop = w.stop === null ? m.hi : w.stop;
        if (stop < view.lo || w.start > view.hi) return;
        var x0 = X(w.start), x1 = Math.max(X(stop), x0 + 2), c = faultColor(w.f);
        ctx.fillStyle = alpha(c, 0.13); ctx.fillRect(x0, top, x1 - x0, lanesBottom - top);
        ctx.fillStyle = c; ctx.fillRect(x0, top - 4, x1 - x0, 3);
        var label = w.f + (w.targets && w.targets.length ? " → " + w.targets.join(" ") : "");
        ctx.fillText(label, Math.max(x0, left) + 2, 10 + 11 * (labelRow++ % 2));
      });
      ctx.restore();
      // Rows' labels.
      ctx.fillStyle = "#444"; ctx.textAlign = "right";
      var every = Math.ceil(12 / laneH);
      rows.labels.forEach(function (l, i) { if (i % every === 0) ctx.fillText(l, left - 6, top + i * laneH + Math.min(laneH, 11) - 1); });
      // Ops: runs of one kind in a row merged below a pixel, one fill per kind.
      var t0 = view.lo - m.maxDur, i0 = firstFrom(t0), i1 = firstFrom(view.hi + 1e-9);
      var nR = rows.labels.length, runX0 = new Float64Array(nR), runX1 = new Float64Array(nR), runK = new Int8Array(nR).fill(-1);
      var rects = [[], [], [], []];
      var scale = (W - left - right) / (view.hi - view.lo), off = left - view.lo * scale;
      for (var i = i0; i < i1; i++) {
        var s = m.start[i], e = s + m.dur[i];
        if (e < view.lo) continue;
        var x0 = s * scale + off, x1 = e * scale + off, r = rows.laneRow[m.lane[i]], k = m.kind[i];
        if (x1 - x0 < 1) x1 = x0 + 1;
        if (runK[r] === k && x0 <= runX1[r] + 0.5) { if (x1 > runX1[r]) runX1[r] = x1; continue; }
        if (runK[r] >= 0) rects[runK[r]].push(r, runX0[r], runX1[r]);
        runK[r] = k; runX0[r] = x0; runX1[r] = x1;
      }
      for (var rr = 0; rr < nR; rr++) if (runK[rr] >= 0) rects[runK[rr]].push(rr, runX0[rr], runX1[rr]);
      ctx.save();
      ctx.beginPath(); ctx.rect(left, top, W - left - right, lanesBottom - top); ctx.clip();
      var bh = Math.max(1, laneH - (laneH > 4 ? 2 : 0)), drawn = 0, ext0 = Infinity, ext1 = -Infinity;
      [0, 3, 2, 1].forEach(function (k) { // fail and info on top of ok
        var a = rects[k], name = ["ok", "fail", "info", "pending"][k];
        ctx.fillStyle = h.COLORS[name];
        for (var j = 0; j < a.length; j += 3) {
          var w = a[j + 2] - a[j + 1];
          ctx.fillRect(a[j + 1], top + a[j] * laneH, w > 3 && laneH > 4 ? w - 1 : w, bh);
          if (a[j + 1] < ext0) ext0 = a[j + 1];
          if (a[j + 2] > ext1) ext1 = a[j + 2];
        }
        drawn += a.length / 3;
      });
      ctx.restore();
      canvas.setAttribute("data-drawn-runs", String(drawn));
      // What is drawn, for tests: the bars' pixel extent against the plot area's.
      canvas.setAttribute("data-drawn-extent", Math.round(Math.max(ext0, left)) + "," + Math.round(Math.min(ext1, W - right)));
      canvas.setAttribute("data-plot-extent", left + "," + (W - right));
      canvas.setAttribute("data-view", view.lo + "," + view.hi);
      // One row per node: the faults that struck it, and its log lines.
      if (nodeNames.length) {
        var nt = nodesTop();
        ctx.fillStyle = "#444"; ctx.textAlign = "right";
        nodeNames.forEach(function (n, i) { ctx.fillText(n, left - 6, nt + i * nodeH + 11); });
        ctx.save();
        ctx.beginPath(); ctx.rect(left, nt, W - left - right, nodeNames.length * nodeH); ctx.clip();
        ctx.fillStyle = "#f3f3f3"; ctx.fillRect(left, nt, W - left - right, nodeNames.length * nodeH);
        faults.forEach(function (w) {
          var stop = w.stop === null ? m.hi : w.stop, c = faultColor(w.f);
          (w.targets || []).forEach(function (t) {
            var r = nodeNames.indexOf(t);
            ctx.fillStyle = alpha(c, 0.55);
            ctx.fillRect(X(w.start), nt + r * nodeH + 2, Math.max(2, X(stop) - X(w.start)), nodeH - 4);
          });
        });
        if (logT) {
          ctx.fillStyle = "rgba(60,60,60,0.55)";
          var lastPx = new Float64Array(nodeNames.length).fill(-1);
          for (var q = 0; q < logT.length; q++) {
            var px = Math.round(X(logT[q])), ln = nodeNames.indexOf(logs.nodes[logNode[q]]);
            if (px < left || px > W - right || px === lastPx[ln]) continue;
            lastPx[ln] = px;
            ctx.fillRect(px, nt + ln * nodeH + 4, 1, nodeH - 8);
          }
        }
        if (ag) { // the agents' acts (full height) and observations (upper half); not pressure
          for (var qa = 0; qa < ag.t.length; qa++) {
            var kd = ag.kind[qa];
            if (kd > 1) continue; // pressure and the agent's own running: in the list only
            var pa = Math.round(X(ag.t[qa])), la = nodeNames.indexOf(ag.nodes[ag.node[qa]]);
            if (pa < left || pa > W - right) continue;
            ctx.fillStyle = kd === 0 ? "#b03a2e" : "#2471a3";
            ctx.fillRect(pa - (kd === 0 ? 1 : 0), nt + la * nodeH + 1, kd === 0 ? 2 : 1, kd === 0 ? nodeH - 2 : nodeH / 2);
          }
        }
        ctx.restore();
      }
      // The time axis.
      ctx.fillStyle = "#444"; ctx.strokeStyle = "#999"; ctx.textAlign = "center";
      ctx.beginPath(); ctx.moveTo(left, bottom + 2); ctx.lineTo(W - right, bottom + 2); ctx.stroke();
      var tk = ticks(view.lo, view.hi, 10);
      tk.values.forEach(function (v) {
        var x = X(v); ctx.beginPath(); ctx.moveTo(x, bottom + 2); ctx.lineTo(x, bottom + 6); ctx.stroke();
        ctx.fillText(tickText(v, tk.step), x, bottom + 18);
      });
      ctx.textAlign = "right";
      ctx.fillText(d.axis.positions ? "position" : "time (" + d.axis.unit + ")", left - 22, bottom + 18);
      canvas.setAttribute("data-axis-unit", d.axis.unit);
      canvas.setAttribute("data-ticks", tk.values.map(function (v) { return tickText(v, tk.step); }).join(" "));
      ctx.textAlign = "left";
      where.textContent = " showing " + tickText(view.lo, tk.step / 10) + "–" + tickText(view.hi, tk.step / 10) +
        " " + (d.axis.positions ? "(positions)" : d.axis.unit) + " of " + m.n + " ops; wheel: zoom, drag: pan, double-click: whole run";
    }

    var listeners = [];
    function setView(lo, hi, quiet) {
      var span = m.hi - m.lo, min = span / 1e6;
      if (hi - lo < min) { var c = (lo + hi) / 2; lo = c - min / 2; hi = c + min / 2; }
      view.lo = Math.max(m.lo - span * 0.02, lo); view.hi = Math.min(m.hi + span * 0.02, hi);
      draw();
      if (!quiet) listeners.forEach(function (fn) { fn(view.lo, view.hi); });
    }
    canvas.addEventListener("wheel", function (e) {
      e.preventDefault();
      var rect = canvas.getBoundingClientRect(), t = T(e.clientX - rect.left);
      var f = Math.pow(1.0015, e.deltaY);
      setView(t - (t - view.lo) * f, t + (view.hi - t) * f);
    }, { passive: false });
    var dragging = null;
    canvas.addEventListener("mousedown", function (e) { dragging = { x: e.clientX, lo: view.lo, hi: view.hi }; });
    window.addEventListener("mouseup", function () { dragging = null; });
    canvas.addEventListener("dblclick", function () { setView(m.lo, m.hi); });
    reset.addEventListener("click", function () { setView(m.lo, m.hi); });
    canvas.addEventListener("mouseleave", h.hideTip);
    canvas.addEventListener("mousemove", function (e) {
      var rect = canvas.getBoundingClientRect(), x = e.clientX - rect.left, y = e.clientY - rect.top;
      if (dragging) {
        var dt = (e.clientX - dragging.x) / (W - left - right) * (dragging.hi - dragging.lo);
        setView(dragging.lo - dt, dragging.hi - dt);
        return;
      }
      var hit = hitTest(x, y);
      if (hit) h.showTip(e, hit.title, hit.pairs); else h.hideTip();
    });
    function hitTest(x, y) {
      if (x < left || x > W - right) return null;
      var t = T(x), tol = 3 * (view.hi - view.lo) / (W - left - right);
      var lanesBottom = top + rows.labels.length * laneH;
      if (y >= top && y < lanesBottom) {
        var r = Math.floor((y - top) / laneH), best = -1;
        for (var i = firstFrom(t + tol) - 1; i >= 0 && m.start[i] >= t - m.maxDur - tol; i--) {
          if (rows.laneRow[m.lane[i]] !== r) continue;
          if (m.start[i] - tol <= t && t <= m.start[i] + m.dur[i] + tol) { best = i; break; }
        }
        if (best < 0) return null;
        var KIND = ["ok", "fail", "info", "pending"], unit = d.axis.positions ? " (positions)" : " " + d.axis.unit;
        return {
          title: "op #" + m.index[best] + " · p" + m.lanes[m.lane[best]],
          pairs: [["op", opText(m, best)], ["outcome", KIND[m.kind[best]]],
            ["invoked … completed", +m.start[best].toPrecision(6) + " … " + +(m.start[best] + m.dur[best]).toPrecision(6) + unit],
            ["latency", xDurText(d.axis, m.dur[best])],
            ["node", m.node[best] < m.nodes.length ? m.nodes[m.node[best]] : "—"]]
        };
      }
      var nt = nodesTop();
      if (nodeNames.length && y >= nt && y < nt + nodeNames.length * nodeH) {
        var name = nodeNames[Math.floor((y - nt) / nodeH)], pairs = [];
        faults.forEach(function (w) {
          var stop = w.stop === null ? m.hi : w.stop;
          if ((w.targets || []).indexOf(name) >= 0 && w.start - tol <= t && t <= stop + tol)
            pairs.push([w.f + " " + +w.start.toPrecision(4) + "–" + (w.stop === null ? "end" : +stop.toPrecision(4)) + " " + d.axis.unit, w.value]);
        });
        if (logT) {
          var a = 0, b = logT.length; // nearest log line of this node
          while (a < b) { var c = (a + b) >> 1; if (logT[c] < t - tol) a = c + 1; else b = c; }
          for (var q = a; q < logT.length && logT[q] <= t + tol; q++) {
            if (logs.nodes[logNode[q]] === name) { pairs.push([xText(d.axis, logT[q]), logs.text[q]]); if (pairs.length > 6) break; }
          }
        }
        if (ag) {
          var a2 = 0, b2 = ag.t.length; // the agent's records of this node near the pointer
          while (a2 < b2) { var c2 = (a2 + b2) >> 1; if (ag.t[c2] < t - tol) a2 = c2 + 1; else b2 = c2; }
          for (var q2 = a2, got = 0; q2 < ag.t.length && ag.t[q2] <= t + tol && got < 6; q2++) {
            if (ag.nodes[ag.node[q2]] === name && ag.kind[q2] < 2) { pairs.push([xText(d.axis, ag.t[q2]), "agent: " + ag.text[q2]]); got++; }
          }
        }
        return pairs.length ? { title: name + " at " + xText(d.axis, t), pairs: pairs } : null;
      }
      return null;
    }
    layout();
    var tDraw = performance.now();
    draw();
    canvas.setAttribute("data-ms", "decode " + Math.round(tDecode) + ", draw " + Math.round(performance.now() - tDraw));
    window.addEventListener("resize", function () { layout(); draw(); });
    return {
      setView: setView,
      onView: function (fn) { listeners.push(fn); },
      focus: function (t) { var half = Math.max((m.hi - m.lo) / 200, 1e-6); setView(t - half, t + half); canvas.scrollIntoView({ block: "center" }); },
      model: m
    };
  }

  /* ---- The merged list: node logs, agents' records, fault ledger and client ops ------- */
  var AGENT_KINDS = ["act", "seen", "pressure", "own"];
  function agentsModel(d) {
    var a = d.agents;
    if (!a) return null;
    return { t: decode(a.t, Float32Array), node: decode(a.node, Uint8Array), kind: decode(a.kind, Uint8Array),
      text: a.text, nodes: a.nodes };
  }
  function nodeView(node, d, h, m, timeline) {
    var logs = d.node_logs, faults = d.faults || [], ag = agentsModel(d);
    var logT = logs ? decode(logs.t, Float32Array) : new Float32Array(0);
    var logNode = logs ? decode(logs.node, Uint8Array) : new Uint8Array(0);
    var agT = ag ? ag.t : new Float32Array(0);
    var names = logs ? logs.nodes.slice() : [];
    (ag ? ag.nodes : []).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); });
    (m ? m.nodes : []).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); });
    faults.forEach(function (w) { (w.targets || []).forEach(function (t) { if (names.indexOf(t) < 0) names.push(t); }); });
    // Fault ledger rows: a start and a stop per window.
    var fRows = [];
    faults.forEach(function (w) {
      var what = w.value === "null" || w.value === "" ? "" : ": " + w.value;
      fRows.push({ t: w.start, text: "fault " + w.f + " struck" + (w.targets && w.targets.length ? " → " + w.targets.join(", ") : "") + what, targets: w.targets || [] });
      if (w.stop !== null) fRows.push({ t: w.stop, text: "fault " + w.f + " healed", targets: w.targets || [] });
    });
    fRows.sort(function (a, b) { return a.t - b.t; });
    // Merge the four sorted sources into one order: src 0 log, 1 fault, 2 op, 3 agent.
    var nOps = m ? m.n : 0, total = logT.length + fRows.length + nOps + agT.length;
    var src = new Uint8Array(total), idx = new Uint32Array(total);
    var a = 0, b = 0, c = 0, g = 0;
    for (var k = 0; k < total; k++) {
      var ta = a < logT.length ? logT[a] : Infinity, tb = b < fRows.length ? fRows[b].t : Infinity,
        tc = c < nOps ? m.start[c] : Infinity, tg = g < agT.length ? agT[g] : Infinity;
      if (tb <= ta && tb <= tc && tb <= tg) { src[k] = 1; idx[k] = b++; }
      else if (tg <= ta && tg <= tc) { src[k] = 3; idx[k] = g++; }
      else if (ta <= tc) { src[k] = 0; idx[k] = a++; } else { src[k] = 2; idx[k] = c++; }
    }
    function timeOf(k) { return src[k] === 0 ? logT[idx[k]] : src[k] === 1 ? fRows[idx[k]].t : src[k] === 3 ? agT[idx[k]] : m.start[idx[k]]; }
    function nodeOf(k) {
      if (src[k] === 0) return logs.nodes[logNode[idx[k]]];
      if (src[k] === 1) return fRows[idx[k]].targets.join(" ") || "all";
      if (src[k] === 3) return ag.nodes[ag.node[idx[k]]];
      var nd = m.node[idx[k]]; return nd < m.nodes.length ? m.nodes[nd] : "—";
    }
    function textOf(k) {
      if (src[k] === 0) return logs.text[idx[k]];
      if (src[k] === 1) return fRows[idx[k]].text;
      if (src[k] === 3) return "agent: " + ag.text[idx[k]];
      var i = idx[k]; return "client op #" + m.index[i] + " p" + m.lanes[m.lane[i]] + ": " + opText(m, i);
    }
    var controls = h.el("div", { "class": "nv-controls" });
    var boxes = Object.create(null);  // (a node named "__proto__" is a key like any)
    names.forEach(function (n) {
      var lab = h.el("label"), cb = h.el("input", { type: "checkbox", "data-node": n }); cb.checked = true;
      boxes[n] = cb; lab.appendChild(cb); lab.appendChild(document.createTextNode(" " + n)); controls.appendChild(lab);
    });
    var kinds = [["log", "node logs"], ["fault", "fault ledger"], ["op", "client ops"], ["agent", "agents"]], kindBoxes = [];
    kinds.forEach(function (p, i) {
      var lab = h.el("label"), cb = h.el("input", { type: "checkbox", "data-source": p[0] }); cb.checked = true;
      kindBoxes[i] = cb; lab.appendChild(cb); lab.appendChild(document.createTextNode(" " + p[1])); controls.appendChild(lab);
    });
    var search = h.el("input", { type: "search", "class": "filter", placeholder: "search the merged timeline", "aria-label": "search the merged timeline" });
    controls.appendChild(search);
    var count = h.el("span", { "class": "note" });
    controls.appendChild(count);
    node.appendChild(controls);
    var head = h.el("div", { "class": "nv-head" });
    head.appendChild(h.el("span", { "class": "nv-t" }, d.axis.positions ? "position" : "time (" + d.axis.unit + ")"));
    head.appendChild(h.el("span", { "class": "nv-n" }, "node"));
    head.appendChild(h.el("span", { "class": "nv-x" }, "node log line, agent's record, fault or client op"));
    node.appendChild(head);
    var box = h.el("div", { "class": "nv-list", role: "list" }), spacer = h.el("div", { "class": "nv-spacer" });
    box.appendChild(spacer);
    node.appendChild(box);
    var ROW = 19, shown = null;
    function applyFilter() {
      var q = search.value.toLowerCase(), want = new Uint32Array(total), n = 0;
      var on = Object.create(null), all = kindBoxes.every(function (b) { return b.checked; });
      names.forEach(function (nm) { on[nm] = boxes[nm].checked; all = all && on[nm]; });
      if (all && !q) { for (n = 0; n < total; n++) want[n] = n; } // nothing filtered out
      else for (var k = 0; k < total; k++) {
        if (!kindBoxes[src[k]].checked) continue;
        var nd = nodeOf(k);
        if (src[k] === 1) { if (!fRows[idx[k]].targets.some(function (t) { return on[t]; }) && fRows[idx[k]].targets.length) continue; }
        else if (nd in on && !on[nd]) continue;
        if (q && (textOf(k) + " " + nd).toLowerCase().indexOf(q) < 0) continue;
        want[n++] = k;
      }
      shown = want.subarray(0, n);
      node.setAttribute("data-shown", String(n));
      count.textContent = " " + n + " of " + total + " lines" + (logs && !logs.exact ? " (node log times aligned approximately: the run has no clock.json)" : "");
      spacer.style.height = n * ROW + "px";
      paint();
    }
    var pool = [];
    function paint() {
      var first = Math.floor(box.scrollTop / ROW), rowsIn = Math.ceil((box.clientHeight || 480) / ROW) + 2;
      for (var r = 0; r < rowsIn; r++) {
        var row = pool[r];
        if (!row) {
          row = h.el("div", { "class": "nv-row", role: "listitem" });
          row.appendChild(h.el("span", { "class": "nv-t" })); row.appendChild(h.el("span", { "class": "nv-n" })); row.appendChild(h.el("span", { "class": "nv-x" }));
          row.addEventListener("click", function () { if (timeline && this.hasAttribute("data-t")) timeline.focus(Number(this.getAttribute("data-t"))); });
          box.appendChild(row); pool[r] = row;
        }
        var p = first + r;
        if (p >= shown.length) { row.style.display = "none"; continue; }
        var k = shown[p];
        row.style.display = ""; row.style.top = p * ROW + "px";
        row.className = "nv-row nv-" + ["log", "fault", "op", "agent"][src[k]] + (src[k] === 3 ? " nv-agent-" + AGENT_KINDS[ag.kind[idx[k]]] : "");
        row.setAttribute("data-t", String(timeOf(k)));
        row.childNodes[0].textContent = d.axis.positions ? String(Math.round(timeOf(k))) : timeOf(k).toFixed(3);
        row.childNodes[1].textContent = nodeOf(k);
        row.childNodes[2].textContent = textOf(k);
      }
    }
    var timer = null;
    search.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(applyFilter, 200); });
    controls.addEventListener("change", applyFilter);
    box.addEventListener("scroll", paint);
    applyFilter();
    node.setAttribute("data-lines", String(total));
    node.setAttribute("data-agent-lines", String(agT.length));
  }

  /* A fault kind in words, for legends: "partition ×2, 12.3 s in all, on n1 n2". */
  function faultSummary(faults, kind, axis, end) {
    var n = 0, total = 0, open = 0, targets = [];
    faults.forEach(function (w) {
      if (w.f !== kind) return;
      n++;
      if (w.stop === null) open++;
      total += (w.stop === null ? end : w.stop) - w.start;
      (w.targets || []).forEach(function (t) { if (targets.indexOf(t) < 0) targets.push(t); });
    });
    return kind + " ×" + n + ", " + xDurText(axis, total) + " in all" + (open ? " (" + open + " still open at the end)" : "") +
      (targets.length ? ", on " + targets.join(" ") : "");
  }

  window.clewViews = { opsTimeline: opsTimeline, nodeView: nodeView, faultColor: faultColor, alpha: alpha,
    faultSummary: faultSummary, durText: durText, xDurText: xDurText, xText: xText };
})();
