//! Image archives: docker-archive and OCI layout import and export.
