// Polls /dashboard/data.json and fills the page; callbacks/s is the difference between two polls.
(function () {
  "use strict";
  var token = new URLSearchParams(location.search).get("token");
  var insight = document.getElementById("insight-link");
  if (token && insight) { insight.search = "?token=" + encodeURIComponent(token); }
  var previous = null;

  function text(id, value) { document.getElementById(id).textContent = value === null || value === undefined ? "–" : String(value); }

  function table(id, columns, rows) {
    var el = document.getElementById(id);
    el.textContent = "";
    var head = el.insertRow();
    columns.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; head.appendChild(th); });
    rows.forEach(function (row) {
      var tr = el.insertRow();
      columns.forEach(function (c) { tr.insertCell().textContent = row[c] === null || row[c] === undefined ? "" : String(row[c]); });
    });
  }

  function render(d) {
    if (previous && d.now > previous.now) {
      text("rate", ((d.callbacks_total - previous.callbacks_total) / (d.now - previous.now)).toFixed(1));
    }
    previous = d;
    text("total", d.callbacks_total);
    text("queue", d.queue_depth);
    text("lag", d.lag_avg_seconds);
    text("optouts", d.optouts_today);
    text("dlq", d.deadletters.count);
    text("quarantine", d.quarantine.count);
    var outcomes = {};
    Object.keys(d.outcomes_by_channel).forEach(function (ch) {
      Object.keys(d.outcomes_by_channel[ch]).forEach(function (o) { outcomes[o] = true; });
    });
    var cols = ["channel"].concat(Object.keys(outcomes).sort());
    table("outcomes", cols, Object.keys(d.outcomes_by_channel).sort().map(function (ch) {
      var row = { channel: ch };
      cols.slice(1).forEach(function (o) { row[o] = d.outcomes_by_channel[ch][o] || 0; });
      return row;
    }));
    table("events", ["received_at", "reference_id", "kind", "channel", "code", "outcome", "action"], d.latest_events);
    table("dlq-latest", ["failed_at", "kind", "target", "attempts", "error"], d.deadletters.latest);
    table("quarantine-latest", ["quarantined_at", "request_id", "reason"], d.quarantine.latest);
    text("status", "updated " + new Date(d.now * 1000).toISOString());
    document.body.setAttribute("data-loaded", "1");
  }

  function poll() {
    var headers = token ? { Authorization: "Bearer " + token } : {};
    fetch("/dashboard/data.json", { headers: headers, cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(render)
      .catch(function (e) { text("status", "error: " + e.message); });
  }
  poll();
  setInterval(poll, 2000);
})();
