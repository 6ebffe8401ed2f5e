//! Stage graph, target selection and build order for multi-stage Dockerfiles.
