//! OCI/Docker image model: references, config, manifest, index, canonical JSON.
