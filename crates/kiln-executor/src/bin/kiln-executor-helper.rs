//! A stand-alone libcontainer helper, for tests and for callers without their own hook.

fn main() {
    kiln_executor::helper_main();
    eprintln!(
        "kiln-executor-helper: only runs as a helper (argv[1] = {})",
        kiln_executor::HELPER_ARG
    );
    std::process::exit(2);
}
