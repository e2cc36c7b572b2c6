// Upload page: drag-and-drop, several files, a URL; results update live over a websocket,
// with polling as a fallback while anything is still being analysed.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  const drop = document.getElementById("dropzone");
  const input = document.getElementById("files");
  const list = document.getElementById("items");
  const errors = document.getElementById("errors");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const labels = {processing: "Processing", passed: "Passed", review: "In review",
    flagged: "Flagged", approved: "Approved", rejected: "Rejected"};

  function card(item) {
    let li = list.querySelector(`[data-id="${item.id}"]`);
    if (!li) {
      li = document.createElement("li");
      li.dataset.id = item.id;
      li.innerHTML = '<div class="thumb"></div><div class="meta"><div class="name"></div>' +
        '<div class="badges"></div><div class="reason"></div></div>';
      const empty = list.querySelector(".empty");
      if (empty) empty.remove();
      list.prepend(li);
    }
    li.className = "item status-" + item.status;
    const thumb = li.querySelector(".thumb");
    const hidden = item.status === "flagged" || item.status === "rejected";
    if (hidden) {
      thumb.innerHTML = '<span class="blocked">blocked</span>';
    } else if (!thumb.querySelector("img")) {
      const img = document.createElement("img");
      img.src = `/uploads/items/${item.id}/original/`;
      img.alt = "";
      thumb.replaceChildren(img);
    }
    li.querySelector(".name").textContent = item.name || "image";
    const badges = li.querySelector(".badges") || li.querySelector(".meta div:nth-child(2)");
    badges.replaceChildren();
    const out = document.createElement("span");
    out.className = "badge outcome";
    out.textContent = labels[item.status] || item.status;
    badges.append(out);
    if (item.category) {
      const cls = document.createElement("span");
      cls.className = "badge cls-" + item.category;
      cls.textContent = `${item.category} ${Math.round((item.confidence || 0) * 100)}%`;
      badges.append(cls);
    }
    li.querySelector(".reason").textContent = item.reason_text || "Analysing…";
  }

  function showErrors(list_) {
    errors.replaceChildren(...list_.map((e) => {
      const li = document.createElement("li");
      li.textContent = e.name ? `${e.name}: ${e.detail}` : e.detail;
      return li;
    }));
  }

  async function send(files, url) {
    const data = new FormData();
    for (const f of files) data.append("files", f);
    if (url) data.append("url", url);
    const res = await fetch(form.action, {method: "POST", body: data,
      headers: {"X-CSRFToken": csrf, "Accept": "application/json"}, credentials: "same-origin"});
    let body = {items: [], errors: [{name: "", detail: `Upload failed (${res.status}).`}]};
    try { body = await res.json(); } catch (e) { /* keep the generic message */ }
    body.items.forEach(card);
    showErrors(body.errors || []);
    poll();
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const url = document.getElementById("url").value.trim();
    send(input.files, url);
    input.value = "";
    document.getElementById("url").value = "";
  });
  input.addEventListener("change", () => { if (input.files.length) send(input.files, ""); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) send(e.dataTransfer.files, ""); });

  // Live updates.
  let socket;
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${proto}://${location.host}/ws/uploads/`);
    socket.onmessage = (ev) => { const msg = JSON.parse(ev.data); if (msg.item) card(msg.item); };
    socket.onclose = () => setTimeout(connect, 3000);
  }
  connect();

  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    for (let round = 0; round < 120; round++) {
      const pending = [...list.querySelectorAll(".status-processing")];
      if (!pending.length) break;
      await new Promise((r) => setTimeout(r, 1500));
      for (const li of pending) {
        const res = await fetch(`/uploads/items/${li.dataset.id}/status/`, {credentials: "same-origin"});
        if (res.ok) card(await res.json());
      }
    }
    polling = false;
  }
  poll();
})();
