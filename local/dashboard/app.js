// The Agentry dashboard: reads the API on its own origin once a second and redraws. Every value
// from the API goes into the page as text (textContent), never as HTML.
import { drawThroughputChart, formatMs } from "./charts.js";

const REFRESH_MS = 1000;
const CHART_MINUTES = 10;
const MAX_JOBS = 8;
const TERMINAL_JOB = new Set(["completed", "failed", "canceled"]);

const $ = (id) => document.getElementById(id);
const jobs = new Map(); // jobId → last view; finished jobs are not read again
let openTaskId;
let connected;

async function api(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  if (!response.ok) {
    const error = new Error(`${path}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function el(name, options = {}, ...children) {
  const element = document.createElement(name);
  if (options.className) element.className = options.className;
  if (options.text !== undefined) element.textContent = String(options.text);
  for (const [key, value] of Object.entries(options.attrs ?? {})) element.setAttribute(key, String(value));
  element.append(...children);
  return element;
}

function statusBadge(status) {
  return el("span", { className: `status status-${status}`, text: status });
}

function ago(iso) {
  if (!iso) return "-";
  const ms = Math.max(0, Date.now() - Date.parse(iso));
  return `${formatMs(ms)} ago`;
}

function setConnection(ok, detail) {
  if (connected === ok && ok) return;
  connected = ok;
  const line = $("connection");
  line.classList.toggle("down", !ok);
  line.textContent = ok ? "Live: refreshes every second" : `Cannot reach the API (${detail}); retrying`;
}

function renderCounts(stats) {
  const counts = [
    ["submitted", stats.tasksPending, "Pending"],
    ["working", stats.tasksInProgress, "In progress"],
    ["completed", stats.tasksCompleted, "Completed"],
    ["failed", stats.tasksFailed, "Failed"],
    ["canceled", stats.tasksCanceled, "Canceled"],
    ["rejected", stats.tasksRejected, "Rejected"],
  ];
  $("status-counts").replaceChildren(
    ...counts.map(([status, value, label]) =>
      el(
        "li",
        { attrs: { "data-status": status } },
        el("span", { className: `status status-${status}`, text: label }),
        el("span", { className: "value", text: value }),
      ),
    ),
    el(
      "li",
      {},
      el("span", { text: "Total submitted" }),
      el("span", { className: "value", text: stats.totalTasksSubmitted }),
    ),
  );
}

function renderTasks(tasks) {
  $("task-rows").replaceChildren(
    ...tasks.map((task) => {
      const open = el("button", {
        className: "link",
        text: task.taskId.slice(0, 8),
        attrs: { type: "button", "aria-label": `Task ${task.taskId}` },
      });
      open.addEventListener("click", () => openTask(task.taskId));
      return el(
        "tr",
        { attrs: { "data-task-id": task.taskId } },
        el("td", {}, open),
        el("td", { text: task.taskType }),
        el("td", { className: "task-status" }, statusBadge(task.status)),
        el("td", { className: "num", text: `${task.attempts}/${task.maxAttempts}` }),
        el("td", { text: ago(task.createdAt) }),
      );
    }),
  );
}

function renderJobs() {
  const views = [...jobs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).slice(0, MAX_JOBS);
  $("jobs-empty").hidden = views.length > 0;
  $("jobs").replaceChildren(
    ...views.map((job) => {
      const done = job.completed + job.failed + job.canceled;
      const percent = job.total === 0 ? 100 : Math.floor((done / job.total) * 100);
      const label = `Job ${job.jobId.slice(0, 8)}`;
      return el(
        "li",
        { attrs: { "data-job-id": job.jobId } },
        el("span", {}, el("span", { className: "mono", text: label }), " ", statusBadge(job.status)),
        el("span", {
          className: "job-progress",
          text: `${percent} % · ${done}/${job.total}${job.failed + job.canceled ? ` (${job.failed + job.canceled} failed)` : ""}`,
        }),
        el("progress", { attrs: { max: job.total, value: done, "aria-label": `${label} progress` } }),
      );
    }),
  );
}

function renderAgents(agents) {
  $("agent-rows").replaceChildren(
    ...agents.map((agent) =>
      el(
        "tr",
        { attrs: { "data-agent-id": agent.agentId } },
        el("td", { className: "mono", text: agent.agentId }),
        el("td", { className: "agent-status" }, statusBadge(agent.status)),
        el("td", {
          className: "num",
          text: `${agent.currentTaskCount}/${agent.capabilities.maxConcurrentTasks}`,
        }),
        el("td", { text: ago(agent.lastHeartbeat) }),
      ),
    ),
  );
}

function renderQueues(queues) {
  $("queues-note").hidden = queues !== undefined;
  $("queue-rows").replaceChildren(
    ...(queues?.capabilities ?? []).map((q) =>
      el(
        "tr",
        { attrs: { "data-capability": q.capability } },
        el("td", { text: q.capability }),
        el("td", { className: "num", text: q.available }),
        el("td", { className: "num", text: q.inFlight }),
        el("td", { className: "num", text: q.delayed }),
        el("td", { className: `num${q.deadLettered > 0 ? " status-failed" : ""}`, text: q.deadLettered }),
      ),
    ),
  );
}

/** Per-minute buckets of the tasks that ended in the last minutes, from the newest finished tasks. */
function renderChart(finished) {
  const now = Date.now();
  const minuteOf = (ms) => Math.floor(ms / 60_000);
  const current = minuteOf(now);
  const buckets = Array.from({ length: CHART_MINUTES }, (_, i) => {
    const minute = current - (CHART_MINUTES - 1 - i);
    const at = new Date(minute * 60_000);
    return {
      minute,
      label: `${String(at.getHours()).padStart(2, "0")}:${String(at.getMinutes()).padStart(2, "0")}`,
      completed: 0,
      failed: 0,
      totalLatency: 0,
      n: 0,
    };
  });
  for (const task of finished) {
    if (!task.completedAt) continue;
    const bucket = buckets.find((b) => b.minute === minuteOf(Date.parse(task.completedAt)));
    if (!bucket) continue;
    if (task.status === "completed") bucket.completed += 1;
    else bucket.failed += 1;
    bucket.totalLatency += Date.parse(task.completedAt) - Date.parse(task.createdAt);
    bucket.n += 1;
  }
  const series = buckets.map((b) => ({ ...b, latencyMs: b.n === 0 ? undefined : b.totalLatency / b.n }));
  drawThroughputChart($("chart"), series);
  const ended = series.reduce((sum, b) => sum + b.n, 0);
  const latency = series.reduce((sum, b) => sum + b.totalLatency, 0);
  $("chart-summary").textContent =
    ended === 0
      ? "No task ended in the last 10 minutes."
      : `${ended} tasks ended in the last 10 minutes (${(ended / CHART_MINUTES).toFixed(1)} per minute), mean latency ${formatMs(latency / ended)} from submission to end. Counted over the newest 100 completed and 100 failed tasks.`;
}

async function refreshJobs(tasks) {
  for (const task of tasks) if (task.jobId && !jobs.has(task.jobId)) jobs.set(task.jobId, undefined);
  const due = [...jobs.entries()].filter(([, view]) => view === undefined || !TERMINAL_JOB.has(view.status));
  await Promise.all(
    due.map(async ([jobId]) => {
      try {
        jobs.set(jobId, await api(`/jobs/${encodeURIComponent(jobId)}`));
      } catch {
        jobs.delete(jobId);
      }
    }),
  );
  for (const [jobId, view] of jobs) if (view === undefined) jobs.delete(jobId);
}

function fillDetail(task) {
  $("detail-heading").textContent = `Task ${task.taskId}`;
  const fields = [
    ["Status", statusBadge(task.status)],
    ["Type", task.taskType],
    ["Capability", task.requiredCapability],
    ["Attempts", `${task.attempts} of ${task.maxAttempts}`],
    ["Priority", task.priority],
    ["Worker", task.workerAgentId ?? "-"],
    ["Job", task.jobId ?? "-"],
    ["Error", task.error ? `${task.error.code}: ${task.error.message}` : "-"],
  ];
  $("detail-fields").replaceChildren(
    ...fields.flatMap(([name, value]) => [
      el("dt", { text: name }),
      el("dd", {}, value instanceof Node ? value : String(value)),
    ]),
  );
  const timeline = [
    ["submitted", task.createdAt],
    ["started", task.startedAt],
    [task.status, task.completedAt],
    ["last update", task.updatedAt],
  ].filter(([, at]) => at);
  $("detail-timeline").replaceChildren(...timeline.map(([what, at]) => el("li", { text: `${what}: ${at}` })));
  $("detail-input").textContent = JSON.stringify(task.input, null, 2);
  $("detail-result").textContent = task.result
    ? JSON.stringify(task.result, null, 2)
    : task.error
      ? JSON.stringify(task.error, null, 2)
      : "(none yet)";
}

async function openTask(taskId) {
  openTaskId = taskId;
  fillDetail(await api(`/tasks/${encodeURIComponent(taskId)}`));
  const dialog = $("task-detail");
  if (!dialog.open) dialog.showModal();
  $("detail-close").focus();
}

async function refresh() {
  try {
    const filter = $("status-filter").value;
    const [stats, page, completed, failed, agents, queues] = await Promise.all([
      api("/stats"),
      api(`/tasks?limit=25${filter ? `&status=${encodeURIComponent(filter)}` : ""}`),
      api("/tasks?status=completed&limit=100"),
      api("/tasks?status=failed&limit=100"),
      api("/agents"),
      api("/stats/queues").catch((error) => {
        if (error.status === 404) return undefined;
        throw error;
      }),
    ]);
    await refreshJobs([...page.items, ...completed.items, ...failed.items]);
    renderCounts(stats);
    renderTasks(page.items);
    renderJobs();
    renderAgents(agents.items);
    renderQueues(queues);
    renderChart([...completed.items, ...failed.items]);
    if (openTaskId && $("task-detail").open)
      fillDetail(await api(`/tasks/${encodeURIComponent(openTaskId)}`));
    document.body.dataset.refreshed = String(Date.now());
    setConnection(true);
  } catch (error) {
    setConnection(false, error instanceof Error ? error.message : String(error));
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

$("detail-close").addEventListener("click", () => $("task-detail").close());
$("task-detail").addEventListener("close", () => {
  openTaskId = undefined;
});
$("status-filter").addEventListener("change", () => {
  $("task-rows").replaceChildren();
});
refresh();
