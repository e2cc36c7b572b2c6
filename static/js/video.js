// A video on its item page (templates/uploads/_video.html): the player starts at the chosen
// moment (the first flagged frame, ?t=, or a strip frame's "play from"); for moderators it
// stays blurred, like pictures, until revealed on purpose (its button, or "v").
(function () {
  "use strict";
  const box = document.querySelector(".video-player");
  if (!box) return;
  const player = box.querySelector("video");
  const start = parseFloat(box.dataset.start || "0") || 0;

  function seek(seconds) {
    const go = () => { player.currentTime = seconds; };
    if (player.readyState >= 1) go(); else player.addEventListener("loadedmetadata", go, {once: true});
  }

  seek(start);
  const reveal = box.querySelector("button.reveal-video");
  if (reveal) {
    reveal.addEventListener("click", () => {
      const shown = !box.classList.contains("revealed");
      box.classList.toggle("revealed", shown);
      reveal.setAttribute("aria-pressed", shown ? "true" : "false");
      reveal.textContent = shown ? "Blur the video" : "Reveal the video";
    });
  }
  document.querySelectorAll("[data-seek]").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      seek(parseFloat(link.dataset.seek));
      player.scrollIntoView({block: "nearest"});
    });
  });
})();
