//! Local image store: SQLite metadata over the content store, tags, GC, leases.
