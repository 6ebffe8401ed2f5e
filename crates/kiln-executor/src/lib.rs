//! Runs RUN steps in isolated containers (libcontainer in-process or runc).
