//! OCI layer tars: deterministic diff tars with whiteouts, compression, safe unpacking.
