"""The bench's static storage: production's, minus the rewriting of source-map URLs."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class BenchStaticStorage(CompressedManifestStaticFilesStorage):
    # Keep url() and @import rewriting in CSS; drop the JS sourceMappingURL pattern,
    # whose target (model-viewer.min.js.map) is not vendored.
    patterns = tuple(
        (glob, tuple(p for p in rules if "sourceMappingURL" not in str(p)))
        for glob, rules in CompressedManifestStaticFilesStorage.patterns
    )
