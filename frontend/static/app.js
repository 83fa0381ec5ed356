// Progressive touches only: every feature works without this file.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});

document.addEventListener("submit", (event) => {
  // Prevent double submissions while the server answers.
  const form = event.target;
  if (form.dataset.submitting === "1") {
    event.preventDefault();
    return;
  }
  form.dataset.submitting = "1";
  form.classList.add("is-busy");
});

document.addEventListener("DOMContentLoaded", () => {
  const messages = document.getElementById("messages");
  if (messages) {
    messages.scrollTop = messages.scrollHeight;
  }
  for (const flash of document.querySelectorAll(".flash-success")) {
    setTimeout(() => flash.classList.add("fade"), 5000);
  }
});

window.addEventListener("pageshow", (event) => {
  // Coming back through the history cache: let the forms be submitted again.
  if (event.persisted) {
    for (const form of document.querySelectorAll("form[data-submitting]")) {
      delete form.dataset.submitting;
      form.classList.remove("is-busy");
    }
  }
});
