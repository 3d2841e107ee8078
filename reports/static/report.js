/* clew report: charts (uPlot), the timeline, and the linearizability failure view.
 * Data comes from <script type="application/json" id="clew-data">; it is put into the page
 * with textContent and setAttribute only, never as HTML. */
(function () {
  "use strict";
  var errors = [];
  var root = document.documentElement;
  // when the page (data included) had been parsed and its scripts began
  root.setAttribute("data-script-start-ms", String(Math.round(performance.now())));
  function mark() {
    root.setAttribute("data-errors", String(errors.length));
    if (errors.length) root.setAttribute("data-error-text", errors.join(" | ").slice(0, 2000));
  }
  window.addEventListener("error", function (e) { errors.push(String(e.message)); mark(); });

  var COLORS = { ok: "#2f7fd8", fail: "#e0457b", info: "#f29d1a", pending: "#9a9a9a" };
  var BG = { ok: "#cfe2f9", fail: "#f9cadb", info: "#fde0b3", pending: "#e4e4e4" };
  var KINDS = ["ok", "fail", "info", "pending"];
  var SVGNS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function json(v) {
    if (v === undefined) return "—";
    try { return JSON.stringify(v); } catch (e) { return String(v); }
  }
  function fmt(x) {
    if (x === null || x === undefined) return "—";
    var a = Math.abs(x);
    return a >= 100 ? x.toFixed(0) : a >= 1 ? x.toFixed(2) : x.toPrecision(3);
  }
  var timings = [];
  function safely(name, target, fn) {
    var t0 = performance.now();
    try { fn(); timings.push(name + ": " + Math.round(performance.now() - t0) + " ms"); } catch (e) {
      errors.push(name + ": " + (e && e.message ? e.message : e));
      console.error("clew report: " + name + " failed", e);
      if (target) target.appendChild(el("p", { "class": "render-error" }, "Could not draw " + name + ": " + e));
      mark();
    }
  }
  function niceStep(span, n) {
    var raw = span / Math.max(1, n), p = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    var m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }
  function dl(parent, pairs) {
    var d = el("dl");
    pairs.forEach(function (p) { d.appendChild(el("dt", null, p[0])); d.appendChild(el("dd", null, p[1])); });
    parent.appendChild(d);
    return d;
  }

  var tooltip = el("div", { "class": "tooltip", role: "tooltip" });
  document.body.appendChild(tooltip);
  function showTip(evt, title, pairs) {
    while (tooltip.firstChild) tooltip.removeChild(tooltip.firstChild);
    tooltip.appendChild(el("strong", null, title));
    dl(tooltip, pairs);
    tooltip.style.display = "block";
    var x = evt.clientX + 14, y = evt.clientY + 14;
    var w = tooltip.offsetWidth, h = tooltip.offsetHeight;
    if (x + w > window.innerWidth) x = Math.max(0, evt.clientX - w - 14);
    if (y + h > window.innerHeight) y = Math.max(0, evt.clientY - h - 14);
    tooltip.style.left = x + "px";
    tooltip.style.top = y + "px";
  }
  function hideTip() { tooltip.style.display = "none"; }

  /* ---- Over time: uPlot charts with fault bands -------------------------------------- */
  function faultColor(k) { return window.clewViews ? window.clewViews.faultColor(k) : "#777"; }
  function faultAlpha(k, a) { return window.clewViews ? window.clewViews.alpha(faultColor(k), a) : "rgba(120,120,120," + a + ")"; }
  function faultBands(faults) {
    function px(u, v) { return u.valToPos(v, "x", true); }
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
          ctx.save();
          faults.forEach(function (w) {
            var stop = w.stop === null ? u.scales.x.max : w.stop;
            var x0 = Math.max(px(u, w.start), u.bbox.left), x1 = Math.min(px(u, stop), u.bbox.left + u.bbox.width);
            ctx.fillStyle = faultAlpha(w.f, 0.14);
            if (x1 >= x0) ctx.fillRect(x0, top, Math.max(x1 - x0, 2), h);
          });
          ctx.restore();
        }],
        draw: [function (u) {
          var ctx = u.ctx, r = window.devicePixelRatio || 1;
          ctx.save();
          ctx.font = Math.round(11 * r) + "px system-ui, sans-serif";
          faults.forEach(function (w, i) {
            var x0 = px(u, w.start);
            ctx.fillStyle = faultColor(w.f);
            if (x0 >= u.bbox.left && x0 <= u.bbox.left + u.bbox.width)
              ctx.fillText(w.f + (w.targets && w.targets.length ? " → " + w.targets.join(" ") : ""), x0 + 3 * r, u.bbox.top + (12 + 12 * (i % 3)) * r);
          });
          ctx.restore();
        }]
      }
    };
  }
  /* What a chart's axes show, as attributes of its root (for tests and for people reading the
   * DOM): data-x-label, data-x-ticks, data-y-label, data-y-ticks (the tick texts drawn). */
  function axesShown() {
    return {
      hooks: {
        draw: [function (u) {
          ["x", "y"].forEach(function (name, i) {
            var a = u.axes[i];
            if (!a) return;
            u.root.setAttribute("data-" + name + "-label", a.label || "");
            u.root.setAttribute("data-" + name + "-ticks", (a._values || []).filter(function (v) { return v !== null && v !== ""; }).join(" "));
          });
        }]
      }
    };
  }
  /* Zoom linked across the charts and the timeline: a chart's x range is pushed to all. */
  var linked = [], syncing = false;
  function link(apply) {
    var entry = { apply: apply };
    linked.push(entry);
    return function (lo, hi) {
      if (syncing) return;
      syncing = true;
      try { linked.forEach(function (o) { if (o !== entry) o.apply(lo, hi); }); } finally { syncing = false; }
    };
  }
  function linkChart(u) {
    var push = link(function (lo, hi) { u.setScale("x", { min: lo, max: hi }); }), first = true;
    return function (uu, key) {
      if (key !== "x") return;
      if (first) { first = false; return; } // the chart's own initial range, not a zoom
      push(uu.scales.x.min, uu.scales.x.max);
    };
  }
  var QDASH = [[], [6, 3], [2, 3]], QBORDER = ["solid", "dashed", "dotted"];
  var FCOL = ["#222", "#2f7fd8", "#c0392b", "#16a085", "#8e44ad", "#d35400", "#7f8c8d", "#b7950b"];
  /* Numbers for axes and legends: 3 significant digits, thousands as k, millions as M. */
  function compact(v) {
    if (v === null || v === undefined || !isFinite(v)) return "—";
    var a = Math.abs(v);
    if (a >= 1e9) return +(v / 1e9).toPrecision(3) + "G";
    if (a >= 1e6) return +(v / 1e6).toPrecision(3) + "M";
    if (a >= 1e4) return +(v / 1e3).toPrecision(3) + "k";
    return a >= 100 ? v.toFixed(0) : String(+v.toPrecision(3));
  }
  function compactTicks(u, splits) { return splits.map(function (v) { return v === null || v === undefined ? "" : compact(v); }); }
  /* "3 ms", "1 position", "2 positions". */
  function withUnit(v, unit) { return compact(v) + " " + (unit === "positions" && v === 1 ? "position" : unit); }
  /* A legend entry's value: with no point under the pointer (idx null: before any hover, and
   * after the pointer leaves) the series' summary, else its value there. uPlot would show
   * "--" in both cases. */
  function legendValue(summary, show) {
    return function (u, v, si, idx) {
      if (idx === null || idx === undefined) return summary;
      return v === null || v === undefined ? "—" : show(v);
    };
  }
  function xSeries(d, xs) {
    var ax = d.axis, lo = xs.length ? xs[0] : 0, hi = xs.length ? xs[xs.length - 1] : 0;
    return {
      label: ax.positions ? "position" : "time (" + ax.unit + ")",
      value: legendValue((ax.positions ? "positions " : "") + compact(lo) + (hi !== lo ? "–" + compact(hi) : "") + (ax.positions ? "" : " " + ax.unit),
        function (v) { return ax.positions ? "position " + compact(v) : compact(v) + " " + ax.unit; })
    };
  }
  /* The x scale: the data's extent with a 2% margin, so points at either end are drawn whole
   * (and one lone x value gets a range around it); zooms are taken as they are. */
  function xScale(xs) {
    var lo = xs[0], hi = xs[xs.length - 1];
    return { time: false, range: function (u, min, max) {
      if (min === null || min === undefined || min !== lo || max !== hi) return [min, max];
      var pad = (hi - lo) * 0.02 || Math.max(Math.abs(hi) * 0.02, 1);
      return [lo - pad, hi + pad];
    } };
  }
  /* The x axis; positions are whole numbers, so their ticks are too. */
  var WHOLE = [];
  for (var e = 0; e < 10; e++) [1, 2, 5].forEach(function (m) { WHOLE.push(m * Math.pow(10, e)); });
  function xAxis(d, label) { return d.axis.positions ? { label: label, incrs: WHOLE } : { label: label }; }
  /* Solid legend markers in the series' colour (uPlot's default is a hollow outline). */
  var SOLID = { markers: { fill: function (u, i) { return u.series[i]._color || null; } } };
  function allPositive(cols) {
    return cols.every(function (c) { return c.every(function (v) { return v === null || v > 0; }); });
  }
  function quantiles(box, d, axisLabel) {
    var q = d.quantiles;
    if (!q || !q.x.length) { box.appendChild(el("p", { "class": "note" }, "No completed client ops.")); return; }
    var series = [xSeries(d, q.x)], cols = [q.x], dashes = [null];
    q.series.forEach(function (s, i) {
      s.q.forEach(function (vals, j) {
        var name = "p" + Math.round(q.quantiles[j] * 100), overall = s.overall ? s.overall[j] : null;
        series.push({ label: s.f + " " + name, stroke: FCOL[i % FCOL.length],
          width: j === 0 ? 2 : 1.3, dash: QDASH[j % 3], points: { show: q.x.length < 3 }, spanGaps: true,
          value: legendValue(overall === null || overall === undefined ? "—" : "whole run " + withUnit(overall, q.unit),
            function (v) { return withUnit(v, q.unit); }) });
        dashes.push(QBORDER[j % 3]);
        cols.push(vals);
      });
    });
    var u = new uPlot({
      width: chartWidth(box), height: 280,
      scales: { x: xScale(q.x), y: { distr: allPositive(cols.slice(1)) ? 3 : 1 } },
      axes: [xAxis(d, axisLabel), { label: "latency (" + q.unit + ")", values: compactTicks }],
      series: series, plugins: [faultBands(d.faults), axesShown()],
      cursor: { drag: { x: true, y: false } },
      legend: { markers: { dash: function (u, i) { return dashes[i] || "solid"; } } }
    }, cols, box);
    u.hooks.setScale = [linkChart(u)];
    charts.push(u);
  }
  var charts = [];
  function chartWidth(node) { return Math.max(480, (node.clientWidth || 900) - 10); }
  function plural(n, one) { return n + " " + one + (n === 1 ? "" : "s"); }

  /* The fault kinds of the charts' coloured bands, in words, before any hover. */
  function faultLegend(node, d) {
    var box = node.querySelector("[data-legend=faults]");
    if (!box) return;
    var kinds = [], end = d.latency && d.latency.x.length ? d.latency.x[d.latency.x.length - 1] : 0;
    if (d.ops && d.ops.hi !== undefined) end = Math.max(end, d.ops.hi);
    (d.faults || []).forEach(function (w) { if (kinds.indexOf(w.f) < 0) kinds.push(w.f); });
    if (!kinds.length) { box.appendChild(el("span", { "class": "note" }, "No faults recorded: no bands on these charts.")); return; }
    box.appendChild(el("strong", null, "Fault bands: "));
    kinds.forEach(function (k) {
      var s = el("span", { "data-fault": k }), sw = el("span", { "class": "swatch" });
      sw.style.background = faultAlpha(k, 0.35); sw.style.borderColor = faultColor(k);
      s.appendChild(sw);
      s.appendChild(document.createTextNode(window.clewViews ? window.clewViews.faultSummary(d.faults, k, d.axis, end) : k));
      box.appendChild(s);
    });
  }

  function overTime(node, d) {
    var axisLabel = d.axis.label || (d.axis.positions ? "history position" : "time since start (s)");
    faultLegend(node, d);
    var lat = d.latency;
    var latBox = node.querySelector("[data-chart=latency]");
    if (latBox && lat.x.length) {
      var size = lat.x.length < 100 ? 7 : 4; // a few points are drawn larger, to be seen
      var pts = function (c) { return { show: true, size: size, width: 0, fill: c, stroke: c }; };
      var sum = lat.summary || {};
      var ul = new uPlot({
        width: chartWidth(latBox), height: 280,
        scales: { x: xScale(lat.x), y: { distr: allPositive([lat.ok, lat.fail, lat.info]) ? 3 : 1 } },
        axes: [xAxis(d, axisLabel), { label: "latency (" + lat.unit + ")", values: compactTicks }],
        series: [xSeries(d, lat.x)].concat(["ok", "fail", "info"].map(function (k) {
          var sm = sum[k] || { count: 0, median: null };
          var summary = sm.count ? plural(sm.count, "op") + ", median " + withUnit(sm.median, lat.unit) : "no ops";
          return { label: k, stroke: COLORS[k], _color: COLORS[k], paths: function () { return null; }, points: pts(COLORS[k]), spanGaps: false,
            value: legendValue(summary, function (v) { return withUnit(v, lat.unit); }) };
        })),
        plugins: [faultBands(d.faults), axesShown()],
        cursor: { drag: { x: true, y: false } }, legend: SOLID
      }, [lat.x, lat.ok, lat.fail, lat.info], latBox);
      ul.hooks.setScale = [linkChart(ul)];
      charts.push(ul);
    } else if (latBox) {
      latBox.appendChild(el("p", { "class": "note" }, "No completed client ops."));
    }
    var qBox = node.querySelector("[data-chart=quantiles]");
    if (qBox) quantiles(qBox, d, axisLabel);
    var tp = d.throughput;
    var tpBox = node.querySelector("[data-chart=throughput]");
    if (tpBox && tp.x.length) {
      var tunit = tp.unit || (d.axis.positions ? "ops per position" : "ops/s"), means = tp.mean || {};
      var ut = new uPlot({
        width: chartWidth(tpBox), height: 220,
        scales: { x: xScale(tp.x) },
        axes: [xAxis(d, axisLabel), { label: tunit, values: compactTicks }],
        series: [xSeries(d, tp.x)].concat(["ok", "fail", "info"].map(function (k) {
          var mean = means[k];
          return { label: k, stroke: COLORS[k], _color: COLORS[k], width: 1.5, points: { show: tp.x.length < 3 },
            value: legendValue(mean === null || mean === undefined ? "—" : "mean " + compact(mean) + " " + tunit,
              function (v) { return compact(v) + " " + tunit; }) };
        })),
        plugins: [faultBands(d.faults), axesShown()],
        cursor: { drag: { x: true, y: false } }, legend: SOLID
      }, [tp.x, tp.ok, tp.fail, tp.info], tpBox);
      ut.hooks.setScale = [linkChart(ut)];
      charts.push(ut);
    } else if (tpBox) {
      tpBox.appendChild(el("p", { "class": "note" }, "No completed client ops."));
    }
  }

  /* ---- Linearizability failure view ---------------------------------------------------- */
  /* An op as people write it (checkers/linear/counterexample.py's describe_call): "write 3",
   * "read → nil", "cas [1,2] (failed)"; a read's result is named even when it is nil. */
  function callText(o) {
    var nil = function (v) { return v === null || v === undefined ? "nil" : json(v); };
    var text = o.f + (o.value !== null && o.value !== undefined ? " " + json(o.value) : "");
    var reads = o.value === null || o.value === undefined;
    if (o.type === "ok" && (reads || (o.output !== null && o.output !== undefined)) && json(o.output) !== json(o.value))
      text += " → " + nil(o.output);
    else if (o.type === "ok" && reads) text += " → nil";
    else if (o.type !== "ok") text += { fail: " (failed)", info: " (outcome unknown)", pending: " (pending)" }[o.type] || "";
    return text;
  }
  function failureView(node, cex, viewId) {
    var ops = {}, order = [];
    function add(op) { if (op && !(op.call in ops)) { ops[op.call] = { op: op, role: "other" }; order.push(op.call); } return ops[op.call]; }
    (cex.ops || []).forEach(add);
    var offset = cex.linearized_offset || 0;
    cex.linearized.forEach(function (s, i) {
      var r = add(s.op); r.role = "linearized"; r.k = offset + i + 1; r.before = s.state_before; r.after = s.state_after;
    });
    cex.could_not_follow.forEach(function (s) {
      var r = add(s.op); r.role = s.legal ? "dead-end" : "illegal"; r.why = s.why;
      r.before = cex.state; r.after = s.legal ? s.state_after : undefined;
    });
    var deadline = cex.deadline_op ? add(cex.deadline_op) : null;
    if (deadline) deadline.deadline = true;

    var controls = el("div", { "class": "fv-controls" });
    var label = el("label", null, "Context: last ");
    var sel = el("select", { "aria-label": "linearized ops shown" });
    [10, 25, 50, 100, "all"].forEach(function (n) {
      var o = el("option", { value: String(n) }, String(n)); if (n === 25) o.selected = true; sel.appendChild(o);
    });
    label.appendChild(sel);
    label.appendChild(document.createTextNode(" linearized ops"));
    controls.appendChild(label);
    var legend = el("span", { "class": "legend" });
    [["ok", "ok"], ["info", "info (may or may not have happened)"], ["fail", "fail"]].forEach(function (p) {
      var s = el("span"); var sw = el("span", { "class": "swatch" }); sw.style.background = BG[p[0]]; sw.style.borderColor = COLORS[p[0]];
      s.appendChild(sw); s.appendChild(document.createTextNode(p[1])); legend.appendChild(s);
    });
    var s2 = el("span", null, "● linearization point, in order · red outline: could not follow · ✗ stuck here");
    legend.appendChild(s2);
    controls.appendChild(legend);
    node.appendChild(controls);
    var layout = el("div", { "class": "fv-layout" });
    var drawing = el("div", { "class": "scroll" });
    var details = el("div", { "class": "fv-details" });
    details.appendChild(el("p", { "class": "note" }, "Hover over an op for its details; click to pin it (and get a permalink)."));
    layout.appendChild(drawing); layout.appendChild(details);
    node.appendChild(layout);

    var selected = null;
    function describe(r) {
      var o = r.op, pairs = [
        ["op", "#" + o.index + "  process " + o.process + "  " + o.type],
        ["call", callText(o)],
        ["returned", json(o.output)],
        ["invoked / completed", fmt(o.invoke_time) + " / " + (o.complete_time === null ? "never" : fmt(o.complete_time)) +
          "  (history positions " + o.call + " / " + (o["return"] < 0 ? "—" : o["return"]) + ")"]
      ];
      if (o.key !== null && o.key !== undefined) pairs.splice(1, 0, ["key", json(o.key)]);
      if (r.role === "linearized") {
        pairs.push(["linearized", "#" + r.k + " of the longest linearizable prefix"]);
        pairs.push(["state before", json(r.before)]); pairs.push(["state after", json(r.after)]);
      } else if (r.role === "illegal" || r.role === "dead-end") {
        pairs.push(["could not follow", r.why]);
        pairs.push(["state before", json(r.before)]);
        pairs.push(["state after", r.role === "illegal" ? "— (illegal in this state)" : json(r.after)]);
      } else {
        pairs.push(["linearized", "not in the prefix"]);
      }
      if (r.deadline) pairs.push(["stuck", "the search could not linearize past this op's completion"]);
      return pairs;
    }
    function pin(r, g) {
      if (selected) selected.classList.remove("selected");
      selected = g; g.classList.add("selected");
      while (details.firstChild) details.removeChild(details.firstChild);
      var h = el("h4"); var a = el("a", { href: "#" + viewId + "-op-" + r.op.index }, "op #" + r.op.index);
      h.appendChild(a); details.appendChild(h);
      dl(details, describe(r));
    }

    function draw(n) {
      while (drawing.firstChild) drawing.removeChild(drawing.firstChild);
      var lin = cex.linearized, tail = n === "all" ? lin : lin.slice(Math.max(0, lin.length - n));
      var focus = tail.map(function (s) { return s.op; }).concat(cex.could_not_follow.map(function (s) { return s.op; }));
      if (cex.deadline_op) focus.push(cex.deadline_op);
      var wlo = Infinity, whi = -Infinity;
      focus.forEach(function (o) { wlo = Math.min(wlo, o.call); whi = Math.max(whi, o["return"] < 0 ? o.call : o["return"]); });
      if (!isFinite(wlo)) { order.forEach(function (c) { wlo = Math.min(wlo, c); whi = Math.max(whi, c); }); }
      var shown = order.map(function (c) { return ops[c]; }).filter(function (r) {
        var o = r.op, end = (o["return"] < 0 || o.type === "info") ? Infinity : o["return"];
        return o.call <= whi && end >= wlo;
      });
      var ev = {};
      shown.forEach(function (r) {
        var o = r.op; ev[o.call] = 1;
        if (o["return"] >= 0 && o["return"] <= whi) ev[o["return"]] = 1;
      });
      var evs = Object.keys(ev).map(Number).sort(function (a, b) { return a - b; });
      var rank = {}; evs.forEach(function (e, i) { rank[e] = i; });
      var endRank = evs.length;  // "later than everything shown"
      var procs = [];
      shown.forEach(function (r) { if (procs.indexOf(r.op.process) < 0) procs.push(r.op.process); });
      procs.sort(function (a, b) { return (typeof a === "number" && typeof b === "number") ? a - b : String(a) < String(b) ? -1 : 1; });
      var laneOf = Object.create(null); procs.forEach(function (p, i) { laneOf[String(p)] = i; });
      var left = 60, top = 30, laneH = 34, stepX = Math.max(14, ((drawing.clientWidth || 900) - left - 30) / Math.max(1, endRank + 1));
      var W = left + (endRank + 1) * stepX + 30, H = top + procs.length * laneH + 20;
      var X = function (rk) { return left + rk * stepX; };
      var svg = sv("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "failure-svg" });
      svg.appendChild(sv("text", { x: left - 8, y: top - 8, "font-size": 10, "text-anchor": "end", fill: "#777" }, "process"));
      procs.forEach(function (p, i) {
        svg.appendChild(sv("line", { x1: left, x2: W - 10, y1: top + i * laneH + laneH / 2, y2: top + i * laneH + laneH / 2, stroke: "#eee" }));
        svg.appendChild(sv("text", { x: left - 8, y: top + i * laneH + laneH / 2 + 4, "font-size": 11, "text-anchor": "end", fill: "#333" }, "p" + p));
      });
      var points = [];
      shown.forEach(function (r) {
        var o = r.op, a = X(rank[o.call]) + 2;
        var open = o["return"] < 0 || o.type === "info" || !(o["return"] in rank);
        var b = open ? X(endRank) + 14 : X(rank[o["return"]]) - 2;
        var y = top + laneOf[String(o.process)] * laneH + 5, h = laneH - 10;
        var kind = o.type in COLORS ? o.type : "pending";
        var g = sv("g", { "class": "op role-" + r.role, id: viewId + "-op-" + o.index, "data-index": o.index, "data-role": r.role });
        var bad = r.role === "illegal" || r.role === "dead-end";
        var rect = sv("rect", { "class": "bar", x: a, y: y, width: Math.max(6, b - a), height: h, rx: 3, fill: BG[kind],
          stroke: bad || r.deadline ? "#c0103f" : COLORS[kind], "stroke-width": bad || r.deadline ? 2.2 : 1,
          "stroke-dasharray": open ? "5 3" : "none", opacity: r.role === "other" ? 0.55 : 1 });
        g.appendChild(rect);
        var text = callText(o);
        var room = Math.floor((b - a - 8) / 6.2);
        if (room > 2) g.appendChild(sv("text", { x: a + 4, y: y + h / 2 + 4, "font-size": 11, fill: "#222" }, text.length > room ? text.slice(0, room - 1) + "…" : text));
        if (bad) g.appendChild(sv("text", { x: b - 12, y: y - 1, "font-size": 12, fill: "#c0103f" }, "✗"));
        g.addEventListener("mousemove", function (e) { showTip(e, "op #" + o.index, describe(r)); });
        g.addEventListener("mouseleave", hideTip);
        g.addEventListener("click", function () { pin(r, g); history.replaceState(null, "", "#" + viewId + "-op-" + o.index); });
        svg.appendChild(g);
        if (r.role === "linearized") points.push({ k: r.k, a: a, b: b, y: y + h / 2 });
      });
      points.sort(function (p, q) { return p.k - q.k; });
      var prev = -Infinity, path = [];
      points.forEach(function (p) {
        var x = Math.min(Math.max(prev + 3, p.a + 6), p.b - 4);
        prev = x; path.push(x + "," + p.y); p.x = x;
      });
      if (path.length > 1) svg.appendChild(sv("polyline", { points: path.join(" "), fill: "none", stroke: "#2f7fd8", "stroke-width": 1.2, "stroke-opacity": 0.7 }));
      points.forEach(function (p) {
        svg.appendChild(sv("circle", { cx: p.x, cy: p.y, r: 3.5, fill: "#1b4f8f", "pointer-events": "none" }));
        svg.appendChild(sv("text", { x: p.x, y: p.y - 6, "font-size": 9, "text-anchor": "middle", fill: "#1b4f8f", "pointer-events": "none" }, String(p.k)));
      });
      if (deadline && deadline.op["return"] in rank) {
        var dx = X(rank[deadline.op["return"]]);
        svg.appendChild(sv("line", { x1: dx, x2: dx, y1: top - 12, y2: H - 10, stroke: "#c0103f", "stroke-dasharray": "4 3" }));
        svg.appendChild(sv("text", { x: dx - 4, y: top - 16, "font-size": 11, fill: "#c0103f", "text-anchor": "end" }, "stuck: op #" + deadline.op.index + " must be linearized by here"));
      }
      drawing.appendChild(svg);
      drawing.scrollLeft = drawing.scrollWidth;  // the stuck point is at the right
      drawing.appendChild(el("p", { "class": "note" }, "Showing " + shown.length + " ops (" + tail.length +
        " of " + (cex.linearized_total || lin.length) + " linearized, " + cex.could_not_follow.length +
        (cex.could_not_follow_total > cex.could_not_follow.length ? " of " + cex.could_not_follow_total : "") +
        " that could not follow, and the concurrent ops) of " + (cex.ops_total || order.length) +
        " on this key. x: order of invocations and completions; dashed: no known completion (info)."));
    }
    sel.addEventListener("change", function () { draw(sel.value === "all" ? "all" : Number(sel.value)); });
    draw(25);
    var want = decodeURIComponent(location.hash.slice(1));
    if (want.indexOf(viewId + "-op-") === 0) {
      var g = document.getElementById(want);
      var idx = g && g.getAttribute("data-index");
      if (g && idx !== null) {
        for (var c in ops) if (String(ops[c].op.index) === idx) { pin(ops[c], g); g.scrollIntoView({ block: "center" }); break; }
      }
    }
  }

  /* ---- Table filters ------------------------------------------------------------------- */
  function filters() {
    var boxes = document.querySelectorAll("input[data-filter]");
    Array.prototype.forEach.call(boxes, function (box) {
      var table = document.getElementById(box.getAttribute("data-filter"));
      if (!table) return;
      box.addEventListener("input", function () {
        var q = box.value.toLowerCase();
        Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
          row.style.display = row.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
        });
      });
    });
  }

  var dataNode = document.getElementById("clew-data");
  var tParse = performance.now();
  var data = dataNode ? JSON.parse(dataNode.textContent) : {};
  timings.push("parsing the data: " + Math.round(performance.now() - tParse) + " ms");
  var over = document.getElementById("over-time-charts");
  if (over && data.latency) safely("the charts", over, function () { overTime(over, data); });
  var helpers = { el: el, showTip: showTip, hideTip: hideTip, COLORS: COLORS };
  var tl = document.getElementById("timeline-chart"), api = null;
  if (tl && data.ops && window.clewViews) safely("the timeline", tl, function () {
    api = window.clewViews.opsTimeline(tl, data, helpers);
    if (api) api.onView(link(function (lo, hi) { api.setView(lo, hi, true); }));
  });
  var nv = document.getElementById("node-view");
  if (nv && data.ops && window.clewViews) safely("the merged node timeline", nv, function () {
    window.clewViews.nodeView(nv, data, helpers, api ? api.model : null, api);
  });
  (data.failures || []).forEach(function (f, i) {
    var node = document.getElementById("failure-view-" + i);
    if (node) safely("the failure view", node, function () { failureView(node, f.counterexample, "f" + i); });
  });
  safely("the filters", null, filters);
  root.setAttribute("data-rendered", "ok");
  root.setAttribute("data-render-ms", String(Math.round(performance.now())));
  root.setAttribute("data-timings", timings.join("; "));
  mark();
})();
