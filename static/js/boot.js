// Runs first, in <head>, before any module: a static file rather than an inline script, so
// the Content-Security-Policy needs no 'unsafe-inline' and no nonce.
(function () {
  "use strict";
  document.documentElement.classList.replace("no-js", "js");
  // model-viewer's decoders come from our own static files, never a CDN. Their URLs are
  // written by the template onto this script's own tag (hashed names in production).
  var urls = document.currentScript.dataset;
  self.ModelViewerElement = self.ModelViewerElement || {};
  self.ModelViewerElement.dracoDecoderLocation = urls.draco;
  self.ModelViewerElement.ktx2TranscoderLocation = urls.ktx2;
  self.ModelViewerElement.meshoptDecoderLocation = urls.meshopt;
})();
