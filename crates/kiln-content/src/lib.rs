//! Content-addressed blob store laid out as an OCI image layout.
