// Pictures of items shown to moderators (templates/review/_picture.html): blurred until a
// person reveals one on purpose (a click on it, Enter or Space on it, "v" for the current
// card on the review page or for every picture on an item page), never on hover or focus.
// Blur and greyscale are page-wide choices (classes on <html>) remembered in this browser.
(function () {
  "use strict";
  const html = document.documentElement;
  const stored = {blur: "review.blur", grey: "review.grey"};
  const defaults = {blur: true, grey: false};

  function read(name) {
    try {
      const value = localStorage.getItem(stored[name]);
      return value === null ? defaults[name] : value === "on";
    } catch (e) {
      return defaults[name];
    }
  }

  const state = {blur: read("blur"), grey: read("grey")};

  function apply() {
    html.classList.toggle("pics-unblurred", !state.blur);
    html.classList.toggle("pics-grey", state.grey);
    document.querySelectorAll("input[data-picture-pref]").forEach((box) => {
      box.checked = state[box.dataset.picturePref];
    });
    document.dispatchEvent(new CustomEvent("pictures:prefs", {detail: {...state}}));
  }

  function set(name, on) {
    state[name] = Boolean(on);
    try { localStorage.setItem(stored[name], state[name] ? "on" : "off"); } catch (e) {}
    apply();
  }

  function reveal(pic, on) {
    const show = on === undefined ? !pic.classList.contains("revealed") : Boolean(on);
    pic.classList.toggle("revealed", show);
    pic.setAttribute("aria-pressed", show ? "true" : "false");
    const label = pic.querySelector(".pic-label");
    if (label) label.textContent = show ? "Hide" : "Reveal";
  }

  // One key for a group of pictures: reveal them all unless all are revealed, then hide them.
  function toggleAll(pics) {
    pics = Array.from(pics);
    const show = pics.some((p) => !p.classList.contains("revealed"));
    pics.forEach((p) => reveal(p, show));
  }

  function hideAll(scope) {
    scope.querySelectorAll("button.pic.revealed").forEach((p) => reveal(p, false));
  }

  document.addEventListener("click", (event) => {
    const pic = event.target.closest("button.pic");
    if (pic) {
      event.preventDefault();
      reveal(pic);
    }
  });
  document.addEventListener("change", (event) => {
    const box = event.target.closest("input[data-picture-pref]");
    if (box) set(box.dataset.picturePref, box.checked);
  });

  function typing(target) {
    return target.closest && target.closest("input:not([type=checkbox]), select, textarea");
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const actions = {
      v: () => {
        const card = document.querySelector(".review-card.current");
        toggleAll((card || document).querySelectorAll("button.pic"));
      },
      b: () => set("blur", !state.blur),
      g: () => set("grey", !state.grey),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  window.Pictures = {state, set, reveal, toggleAll, hideAll};
  apply();
})();
