// The batch upload form: one request carries at most DATA_UPLOAD_MAX_NUMBER_FILES files
// (the form's data-max-files), so a larger choice of images goes in several requests.
// The first creates (or updates) the draft; the next add their images to it, each saying
// that more follow so the rows are checked once, after the last. Without this script the
// form posts as it is, and a member adds images a few at a time.
(function () {
  "use strict";

  function chunks(files, first, size) {
    var out = [files.slice(0, first)];
    for (var i = first; i < files.length; i += size) out.push(files.slice(i, i + size));
    return out;
  }

  async function send(form, event) {
    var input = form.querySelector("input[type=file][name=images]");
    var sheet = form.querySelector("input[type=file][name=sheet]");
    var perRequest = Number(form.dataset.maxFiles);
    var files = Array.from(input.files);
    var withSheet = sheet.files.length;
    if (!perRequest || files.length + withSheet <= perRequest) return; // one request will do
    event.preventDefault();
    var status = form.querySelector(".upload-status");
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    var parts = chunks(files, perRequest - withSheet, perRequest);
    var url = form.action;
    for (var n = 0; n < parts.length; n++) {
      var data = new FormData(form);
      data.delete("images");
      if (n > 0) data.delete("sheet");
      if (n < parts.length - 1) data.set("more", "on");
      parts[n].forEach(function (file) { data.append("images", file, file.name); });
      status.textContent = "Uploading images " + (n + 1) + " of " + parts.length + "…";
      var response = await fetch(url, { method: "POST", body: data, credentials: "same-origin" });
      if (!response.ok || !response.redirected) {
        // The form came back with its errors (or the server refused): show that page.
        status.textContent = "";
        button.disabled = false;
        document.documentElement.innerHTML = await response.text();
        return;
      }
      url = response.url; // the draft's page: the next images join this draft
    }
    window.location.assign(url);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form.batch-upload");
    if (form) send(form, event);
  });
})();
