//! Filesystem snapshots for build steps: overlayfs, with a copy fallback.
