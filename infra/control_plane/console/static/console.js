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
