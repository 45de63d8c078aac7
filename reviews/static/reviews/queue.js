// Keyboard shortcuts for the review queue: j/k next/previous, a approve,
// r reject, c request changes (they need a comment: the box gets focus and
// Enter sends), Esc leaves the comment box. Buttons and forms work without it.
(function () {
  "use strict";
  let index = 0;
  const items = () => Array.from(document.querySelectorAll("[data-queue-item]"));

  function select(i, focus = true) {
    const list = items();
    if (!list.length) return;
    index = Math.max(0, Math.min(i, list.length - 1));
    list.forEach((item, n) => {
      item.classList.toggle("selected", n === index);
      if (n === index) item.setAttribute("aria-current", "true");
      else item.removeAttribute("aria-current");
    });
    if (focus) {
      list[index].focus({ preventScroll: true });
      list[index].scrollIntoView({ block: "nearest" });
    }
  }

  function act(decision) {
    const item = items()[index];
    if (!item) return;
    const form = item.querySelector("form.decide");
    const button = form.querySelector(`button[value="${decision}"]`);
    if (!button || button.disabled) return;
    const comment = form.querySelector("textarea");
    if (decision !== "approved" && !comment.value.trim()) {
      form.dataset.pending = decision;
      comment.placeholder = button.textContent.replace(/\s+\w$/, "").trim() + ": say why, then press Enter";
      comment.focus();
      return;
    }
    button.click(); // a click, not requestSubmit: htmx sends the clicked button's value
  }

  document.addEventListener("keydown", (event) => {
    if (!document.querySelector("#queue")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.matches("textarea, input, select")) {
      const form = target.closest("form.decide");
      if (event.key === "Escape") {
        target.blur();
        select(index);
      } else if (event.key === "Enter" && !event.shiftKey && form) {
        event.preventDefault();
        const decision = form.dataset.pending || "approved";
        const button = form.querySelector(`button[value="${decision}"]`);
        if (button && !button.disabled) button.click(); // a click, not requestSubmit: htmx sends the clicked button's value
      }
      return;
    }
    const actions = {
      j: () => select(index + 1),
      k: () => select(index - 1),
      a: () => act("approved"),
      r: () => act("rejected"),
      c: () => act("changes_requested"),
    };
    if (actions[event.key]) {
      event.preventDefault();
      actions[event.key]();
    }
  });

  // Clicking or tabbing into an item selects it.
  document.addEventListener("focusin", (event) => {
    const item = event.target.closest && event.target.closest("[data-queue-item]");
    if (item) {
      const n = items().indexOf(item);
      if (n >= 0 && n !== index) select(n, false);
    }
  });

  // After a decision the item is replaced by a "done" line, and the next item
  // takes its place in the list; an item sent back with errors keeps the focus.
  document.addEventListener("htmx:afterSettle", () => {
    if (!document.querySelector("#queue")) return;
    const item = items()[Math.min(index, items().length - 1)];
    const field = item && item.querySelector(".errors") && item.querySelector("textarea");
    if (field) field.focus();
    else select(index);
  });

  document.addEventListener("DOMContentLoaded", () => select(0, false));
})();
