// The delivery-insight page: everything shown comes from GET /v1/stats (and the alerts from data.json).
(function () {
  "use strict";
  var token = new URLSearchParams(location.search).get("token");
  var headers = token ? { Authorization: "Bearer " + token } : {};
  var charts = [];

  function get(path) {
    return fetch(path, { headers: headers, cache: "no-store" }).then(function (r) {
      if (!r.ok) { return r.json().then(function (e) { throw new Error(e.error || r.status); }); }
      return r.json();
    });
  }
  function stats(groupBy, extra) {
    var range = document.getElementById("range").value;
    return get("/v1/stats?group_by=" + groupBy + "&since=" + range + (extra || "")).then(function (d) { return d.groups; });
  }
  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }
  function secs(v) {
    if (v === null || v === undefined) { return "–"; }
    if (v < 60) { return v.toFixed(1) + "s"; }
    if (v < 3600) { return (v / 60).toFixed(1) + "m"; }
    return (v / 3600).toFixed(1) + "h";
  }
  function money(spend) {
    var parts = Object.keys(spend).sort().map(function (c) { return spend[c] + " " + c; });
    return parts.length ? parts.join(", ") : "–";
  }
  function text(id, value) { document.getElementById(id).textContent = value; }
  function table(id, columns, rows) {
    var el = document.getElementById(id);
    el.textContent = "";
    var head = el.insertRow();
    columns.forEach(function (c) { var th = document.createElement("th"); th.textContent = c[0]; head.appendChild(th); });
    rows.forEach(function (row) {
      var tr = el.insertRow();
      columns.forEach(function (c) {
        var td = tr.insertCell();
        td.textContent = c[1](row);
        if (c[2]) { td.className = c[2]; }
      });
    });
    if (!rows.length) { el.insertRow().insertCell().textContent = "no messages in this range"; }
  }
  function worst(groups) {
    return groups.filter(function (g) { return g.final > 0; })
      .sort(function (a, b) { return a.delivery_rate - b.delivery_rate || b.final - a.final; }).slice(0, 8);
  }
  var worstColumns = [
    ["", function (g) { return g.label || g.key || "(unknown)"; }],
    ["sent", function (g) { return g.sent; }, "num"],
    ["rate", function (g) { return pct(g.delivery_rate); }, "num rate"],
    ["failed", function (g) { return g.failed; }, "num"],
    ["failure codes", function (g) {
      return (g.failures || []).map(function (f) { return f.code + " " + f.description + " (" + f.count + ")"; }).join("; ");
    }]
  ];

  function chart(id, opts, data) {
    var el = document.getElementById(id);
    el.textContent = "";
    opts.width = Math.min(1100, Math.max(420, el.parentNode.clientWidth || 900));
    charts.push(new uPlot(opts, data, el));
  }

  function volumeChart(hours) {
    // Every hour of the range, so quiet hours show as zero rather than as a gap the line jumps over.
    var seconds = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 }[document.getElementById("range").value];
    var byHour = {};
    hours.forEach(function (g) { byHour[Date.parse(g.key) / 1000] = g; });
    var last = Math.floor(Date.now() / 3600000) * 3600, xs = [], sent = [], rate = [];
    for (var t = last - Math.floor(seconds / 3600) * 3600; t <= last; t += 3600) {
      var g = byHour[t];
      xs.push(t);
      sent.push(g ? g.sent : 0);
      rate.push(g && g.delivery_rate !== null ? 100 * g.delivery_rate : null);
    }
    chart("volume-chart", {
      height: 260,
      series: [{}, { label: "sent", stroke: "#3366cc", fill: "rgba(51,102,204,.15)", paths: uPlot.paths.bars({ size: [0.8] }) },
               { label: "delivery rate %", stroke: "#109618", width: 2, scale: "%", spanGaps: true, points: { show: true } }],
      axes: [{}, { label: "messages" }, { side: 1, scale: "%", label: "%", grid: { show: false } }],
      scales: { "%": { range: [0, 100] } }
    }, [xs, sent, rate]);
  }

  function ttfChart(total) {
    var buckets = (total && total.ttf_histogram) || [];
    var xs = buckets.map(function (b, i) { return i; });
    chart("ttf-chart", {
      height: 220, width: 520,
      scales: { x: { time: false } },
      series: [{ label: "up to", value: function (u, i) { return i === null || !buckets[i] ? "" : secs(buckets[i][1]); } },
               { label: "messages", stroke: "#dc3912", fill: "rgba(220,57,18,.2)", paths: uPlot.paths.bars({ size: [0.9] }) }],
      axes: [{ values: function (u, splits) { return splits.map(function (i) { return buckets[i] ? secs(buckets[i][1]) : ""; }); } }, {}]
    }, [xs, buckets.map(function (b) { return b[2]; })]);
  }

  function load() {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    Promise.all([stats("channel", "&histogram=1"), stats("hour"), stats("carrier"), stats("country"), stats("day"),
                 get("/dashboard/data.json").catch(function () { return { alerts: [] }; })])
      .then(function (r) {
        var channels = r[0], hours = r[1], days = r[4];
        var sum = function (f) { return channels.reduce(function (a, g) { return a + g[f]; }, 0); };
        var final = sum("final"), good = sum("delivered") + sum("read");
        text("sent", sum("sent"));
        text("final", final);
        text("failed", sum("failed"));
        text("rate", final ? pct(good / final) : "–");
        table("channels", [
          ["channel", function (g) { return g.key || "(unknown)"; }],
          ["sent", function (g) { return g.sent; }, "num"],
          ["delivery rate", function (g) { return pct(g.delivery_rate); }, "num"],
          ["read rate", function (g) { return pct(g.read_rate); }, "num"],
          ["p50", function (g) { return secs(g.time_to_final_s.p50); }, "num"],
          ["p90", function (g) { return secs(g.time_to_final_s.p90); }, "num"],
          ["p99", function (g) { return secs(g.time_to_final_s.p99); }, "num"],
          ["spend", function (g) { return money(g.spend); }, "num"]
        ], channels);
        // The distribution over all channels: bucket counts add up exactly.
        var merged = {};
        channels.forEach(function (g) { (g.ttf_histogram || []).forEach(function (b) {
          var k = String(b[0]); merged[k] = merged[k] || [b[0], b[1], 0]; merged[k][2] += b[2]; }); });
        var total = { ttf_histogram: Object.keys(merged).map(function (k) { return merged[k]; })
                                        .sort(function (a, b) { return a[0] - b[0]; }) };
        volumeChart(hours);
        table("carriers", worstColumns, worst(r[2]));
        table("countries", worstColumns, worst(r[3]));
        ttfChart(total);
        table("spend-days", [["day", function (g) { return g.key; }], ["spend", function (g) { return money(g.spend); }, "num"]],
              days.filter(function (g) { return Object.keys(g.spend).length; }));
        table("alerts", [["when", function (a) { return a.occurred_at; }], ["what", function (a) { return a.description; }]],
              r[4].alerts || []);
        text("status", "updated " + new Date().toLocaleTimeString());
        document.body.setAttribute("data-loaded", "1");
      })
      .catch(function (e) { text("status", "error: " + e.message); });
  }
  document.getElementById("range").addEventListener("change", load);
  load();
  setInterval(load, 30000);
})();
