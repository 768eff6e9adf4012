// ocireg web UI: the only script. Pages work without it; it adds suggestions while typing in
// the search box and "Copy" buttons next to commands.
"use strict";

function setUpSuggestions(input) {
  const list = document.getElementById(input.getAttribute("aria-controls"));
  const endpoint = input.dataset.suggest;
  let timer = null;
  let active = -1;
  let asked = 0;

  function close() {
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    active = -1;
  }

  function show(items) {
    list.replaceChildren();
    items.forEach((item, index) => {
      const li = document.createElement("li");
      li.setAttribute("role", "option");
      li.id = "suggestion-" + index;
      const a = document.createElement("a");
      a.href = item.url;
      a.textContent = item.label;
      li.append(a);
      list.append(li);
    });
    list.hidden = items.length === 0;
    input.setAttribute("aria-expanded", items.length ? "true" : "false");
    active = -1;
  }

  function highlight(index) {
    const options = list.querySelectorAll("li");
    options.forEach((li, i) => li.setAttribute("aria-selected", i === index ? "true" : "false"));
    active = index;
    input.setAttribute("aria-activedescendant", index >= 0 ? "suggestion-" + index : "");
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (!text) { close(); return; }
    timer = setTimeout(async () => {
      const mine = ++asked;
      try {
        const answer = await fetch(endpoint + "?q=" + encodeURIComponent(text), {credentials: "same-origin"});
        const items = answer.ok ? await answer.json() : [];
        if (mine === asked) show(items);
      } catch (error) {
        close();
      }
    }, 120);
  });

  input.addEventListener("keydown", (event) => {
    const options = list.querySelectorAll("li");
    if (event.key === "ArrowDown" && options.length) {
      event.preventDefault();
      highlight((active + 1) % options.length);
    } else if (event.key === "ArrowUp" && options.length) {
      event.preventDefault();
      highlight((active - 1 + options.length) % options.length);
    } else if (event.key === "Enter" && active >= 0) {
      event.preventDefault();
      window.location.href = options[active].querySelector("a").href;
    } else if (event.key === "Escape") {
      close();
    }
  });

  input.addEventListener("blur", () => setTimeout(close, 150));
}

function setUpCopyButtons() {
  document.querySelectorAll("button.copy[data-copy]").forEach((button) => {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input[data-suggest]").forEach(setUpSuggestions);
  setUpCopyButtons();
});
