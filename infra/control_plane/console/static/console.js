// Live status for an execution's graph: poll the console's status.json and recolour the steps, without a reload.
"use strict";
(function () {
  const graph = document.querySelector(".graph[data-status-url]");
  if (!graph || graph.dataset.terminal === "true") return;
  const classOf = { Succeeded: "ok", Executing: "running", Starting: "running", Stopping: "running",
    Failed: "failed", Stopped: "failed" };
  async function refresh() {
    let body;
    try {
      const answer = await fetch(graph.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (!answer.ok) throw new Error(String(answer.status));
      body = await answer.json();
    } catch (error) {
      setTimeout(refresh, 3000);
      return;
    }
    for (const node of graph.querySelectorAll("g.step")) {
      const status = body.steps[node.dataset.step] || "NotStarted";
      node.dataset.status = status;
      node.setAttribute("class", "step st-" + (classOf[status] || "idle"));
      node.querySelector(".step-status").textContent = status;
    }
    const label = document.getElementById("execution-status");
    if (label) {
      label.textContent = body.status;
      label.className = "status st-" + (classOf[body.status] || "idle");
    }
    if (body.terminal) {
      setTimeout(() => window.location.reload(), 500);  // the table, durations and failure reasons are final now
    } else {
      setTimeout(refresh, 1000);
    }
  }
  setTimeout(refresh, 1000);
})();

// A job's logs stream while it runs: poll logs.json for events at or after the last one shown, append the new ones.
(function () {
  const logs = document.getElementById("logs");
  if (!logs || logs.dataset.terminal === "true") return;
  let after = Number(logs.dataset.after || 0);
  let atLast = Number(logs.dataset.atLast || 0);
  async function poll() {
    let body;
    try {
      const answer = await fetch(logs.dataset.logsUrl + "?after=" + after, { headers: { Accept: "application/json" } });
      if (!answer.ok) throw new Error(String(answer.status));
      body = await answer.json();
    } catch (error) {
      setTimeout(poll, 3000);
      return;
    }
    let skip = atLast;
    for (const event of body.events) {
      if (event.timestamp === after && skip > 0) { skip -= 1; continue; }
      logs.appendChild(document.createTextNode(event.message + "\n"));
      atLast = event.timestamp === after ? atLast + 1 : 1;
      after = event.timestamp;
    }
    const missing = document.getElementById("no-logs");
    if (missing && logs.textContent) missing.remove();
    const status = document.querySelector("#job-status .status");
    if (status && body.status) {
      status.textContent = body.status;
    }
    if (!body.terminal) setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();

// A running training job's metric charts: refetch the server-drawn fragment until the job ends.
(function () {
  const charts = document.getElementById("metric-charts");
  if (!charts || charts.dataset.terminal === "true") return;
  async function refresh() {
    try {
      const answer = await fetch(charts.dataset.fragmentUrl, { headers: { Accept: "text/html" } });
      if (!answer.ok) throw new Error(String(answer.status));
      const fragment = new DOMParser().parseFromString(await answer.text(), "text/html");
      charts.replaceChildren(...fragment.body.childNodes);
      if (answer.headers.get("X-Job-Terminal") === "True") return;
    } catch (error) {
      setTimeout(refresh, 3000);
      return;
    }
    setTimeout(refresh, 2000);
  }
  setTimeout(refresh, 2000);
})();
