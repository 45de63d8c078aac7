// The workspace's few behaviours that need a script. Every one is optional: the
// pages work without it (plain forms, full-page GETs). Listeners are delegated
// from the document, so content swapped in by htmx needs no re-binding.
(function () {
  "use strict";

  var ACCEPTED = ["image/png", "image/jpeg", "image/webp"];

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (e) {
      return "";
    }
  }

  // --- reference images: preview, drag and drop --------------------------------------
  function showPreview(input) {
    var slot = input.closest("[data-dropzone]");
    if (!slot) return;
    var img = slot.querySelector("img.preview");
    var file = input.files && input.files[0];
    var note = slot.querySelector(".client-note");
    if (note) note.remove();
    if (!file) return;
    if (ACCEPTED.indexOf(file.type) === -1) {
      // The server decides by content; this is only an early hint.
      note = document.createElement("p");
      note.className = "client-note error";
      note.textContent = "This does not look like a PNG, JPEG or WebP image.";
      slot.appendChild(note);
    }
    if (img) {
      if (img.dataset.objectUrl) URL.revokeObjectURL(img.dataset.objectUrl);
      img.dataset.objectUrl = URL.createObjectURL(file);
      img.src = img.dataset.objectUrl;
      img.hidden = false;
    }
    slot.classList.add("has-file");
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-dropzone] input[type=file]")) showPreview(target);
  });

  ["dragenter", "dragover"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var drop = event.target.closest && event.target.closest("[data-dropzone] .drop");
      if (!drop) return;
      event.preventDefault();
      drop.classList.add("dragging");
    });
  });
  document.addEventListener("dragleave", function (event) {
    var drop = event.target.closest && event.target.closest("[data-dropzone] .drop");
    if (drop) drop.classList.remove("dragging");
  });
  document.addEventListener("drop", function (event) {
    var drop = event.target.closest && event.target.closest("[data-dropzone] .drop");
    if (!drop) return;
    event.preventDefault();
    drop.classList.remove("dragging");
    var input = drop.querySelector("input[type=file]");
    if (!input || !event.dataTransfer.files.length) return;
    var transfer = new DataTransfer();
    transfer.items.add(event.dataTransfer.files[0]);
    input.files = transfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // --- upload progress of the new-generation form -------------------------------------
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest && event.target.closest("#generation-form");
    var bar = form && form.querySelector("#upload-progress");
    if (!bar || !event.detail.lengthComputable || !form.querySelector("input[type=file]")) return;
    bar.hidden = false;
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
  });

  // --- focus after swaps ---------------------------------------------------------------
  document.addEventListener("htmx:afterSettle", function (event) {
    // After an outerHTML swap the event's target is the old, detached element: look again.
    var config = event.detail.requestConfig || {};
    var verb = (config.verb || "").toLowerCase();
    var errors = document.getElementById("form-errors");
    if (verb === "post" && errors) {
      errors.focus();
    } else if (config.elt && config.elt.closest && config.elt.closest(".pager")) {
      var results = document.getElementById("results");
      if (results) results.focus();
    }
  });

  // --- the viewer ----------------------------------------------------------------------
  var clayState = new WeakMap();

  function setClay(viewer, on) {
    if (!viewer.model) return;
    var saved = clayState.get(viewer);
    if (on && !saved) {
      saved = viewer.model.materials.map(function (material) {
        var pbr = material.pbrMetallicRoughness;
        var state = {
          material: material,
          texture: pbr.baseColorTexture ? pbr.baseColorTexture.texture : null,
          color: pbr.baseColorFactor.slice(),
          metal: pbr.metallicFactor,
          rough: pbr.roughnessFactor,
        };
        if (pbr.baseColorTexture) pbr.baseColorTexture.setTexture(null);
        pbr.setBaseColorFactor([0.78, 0.76, 0.74, 1]);
        pbr.setMetallicFactor(0);
        pbr.setRoughnessFactor(0.85);
        return state;
      });
      clayState.set(viewer, saved);
    } else if (!on && saved) {
      saved.forEach(function (state) {
        var pbr = state.material.pbrMetallicRoughness;
        if (pbr.baseColorTexture) pbr.baseColorTexture.setTexture(state.texture);
        pbr.setBaseColorFactor(state.color);
        pbr.setMetallicFactor(state.metal);
        pbr.setRoughnessFactor(state.rough);
      });
      clayState.delete(viewer);
    }
  }

  function viewerFor(control) {
    var wrap = control.closest(".viewer-wrap");
    return wrap && wrap.querySelector("model-viewer");
  }

  document.addEventListener("input", function (event) {
    var t = event.target;
    if (t.id === "viewer-exposure") viewerFor(t).exposure = parseFloat(t.value);
  });
  document.addEventListener("change", function (event) {
    var t = event.target;
    var viewer = t.closest && t.closest(".viewer-controls") && viewerFor(t);
    if (!viewer) return;
    if (t.id === "viewer-rotate") viewer.autoRotate = t.checked;
    if (t.id === "viewer-clay") setClay(viewer, t.checked);
    if (t.id === "viewer-environment") viewer.environmentImage = t.value;
  });
  document.addEventListener("click", function (event) {
    var t = event.target;
    if (t.id !== "viewer-reset") return;
    var viewer = viewerFor(t);
    viewer.cameraOrbit = "auto auto auto";
    viewer.cameraTarget = "auto auto auto";
    viewer.fieldOfView = "auto";
    viewer.jumpCameraToGoal();
  });

  // model-viewer's events do not bubble: listen in the capture phase.
  document.addEventListener("progress", function (event) {
    var viewer = event.target;
    if (!viewer.tagName || viewer.tagName !== "MODEL-VIEWER") return;
    var bar = viewer.querySelector(".viewer-progress");
    var fill = bar && bar.querySelector(".viewer-progress-bar");
    if (!fill) return;
    var progress = event.detail.totalProgress;
    bar.style.display = progress < 1 ? "block" : "none";
    fill.style.width = Math.round(progress * 100) + "%";
  }, true);

  // A GLB that cannot be loaded (its file gone, the network down) says so rather than
  // leaving an empty viewer.
  document.addEventListener("error", function (event) {
    var viewer = event.target;
    if (!viewer.tagName || viewer.tagName !== "MODEL-VIEWER") return;
    var bar = viewer.querySelector(".viewer-progress");
    if (bar) bar.style.display = "none";
    var next = viewer.nextElementSibling;
    if (next && next.classList.contains("viewer-error")) return;
    var note = document.createElement("p");
    note.className = "viewer-error error";
    note.setAttribute("role", "alert");
    note.textContent = "The 3D preview could not be loaded. Reload the page to try again.";
    viewer.insertAdjacentElement("afterend", note);
  }, true);

  document.addEventListener("load", function (event) {
    var viewer = event.target;
    if (!viewer.tagName || viewer.tagName !== "MODEL-VIEWER") return;
    viewer.dataset.loaded = "true";
    var url = viewer.dataset.posterUrl;
    if (!url) return;
    delete viewer.dataset.posterUrl;
    // Let one frame render before capturing the poster for the history list.
    setTimeout(function () {
      viewer.toBlob({ mimeType: "image/png", idealAspect: true }).then(function (blob) {
        var data = new FormData();
        data.append("poster", blob, "poster.png");
        return fetch(url, {
          method: "POST",
          body: data,
          headers: { "X-CSRFToken": csrfToken() },
          credentials: "same-origin",
        });
      }).catch(function () { /* a poster is a nicety */ });
    }, 800);
  }, true);
})();
