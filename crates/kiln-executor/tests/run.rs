//! Runs real containers on a busybox rootfs made from the host's /bin/busybox. Needs root, runc
//! and busybox-static; fails loudly when any is missing. Every test runs against both executors.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use kiln_executor::{
    DEFAULT_PATH, Error, Executor, LibcontainerExecutor, MountSpec, Network, RunSpec, RuncExecutor,
    StepIo, Stream, resolve_user,
};
use kiln_snapshot::{OverlaySnapshotter, Snapshotter};

const APPLETS: [&str; 14] = [
    "sh", "echo", "id", "cat", "hostname", "ls", "pwd", "sleep", "true", "false", "touch", "wc",
    "grep", "mkdir",
];

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "executor tests create containers and must run as root"
    );
}

/// A minimal image tree: busybox, its applet links, and passwd/group but no /etc/hosts.
fn busybox_tree(dir: &Path) {
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox missing: apt-get install busybox-static"
    );
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::create_dir_all(dir.join("tmp")).unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        dir.join("etc/group"),
        "root:x:0:\nwheel:x:10:root,app\naudio:x:29:app\napp:x:1000:\n",
    )
    .unwrap();
}

#[derive(Default)]
struct Capture {
    chunks: Vec<(Stream, Vec<u8>)>,
}

impl StepIo for Capture {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        self.chunks.push((stream, data.to_vec()));
    }
}

impl Capture {
    fn text(&self, stream: Stream) -> String {
        self.chunks
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, d)| String::from_utf8_lossy(d))
            .collect()
    }

    /// Index of the first chunk of `stream` containing `needle`.
    fn position(&self, stream: Stream, needle: &str) -> usize {
        self.chunks
            .iter()
            .position(|(s, d)| *s == stream && String::from_utf8_lossy(d).contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in {stream:?}"))
    }
}

struct Env {
    tmp: tempfile::TempDir,
    rootfs: PathBuf,
}

impl Env {
    fn new() -> Self {
        require_root();
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path().join("rootfs");
        busybox_tree(&rootfs);
        Self { tmp, rootfs }
    }

    fn spec(&self, script: &str) -> RunSpec {
        RunSpec::new(
            &self.rootfs,
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        )
    }
}

fn run(exec: &dyn Executor, spec: &RunSpec) -> (i32, Capture) {
    let mut io = Capture::default();
    let status = exec
        .run(spec, &mut io)
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    (status.code(), io)
}

fn streams_stdout_and_stderr_in_order(exec: &dyn Executor) {
    let env = Env::new();
    let spec = env.spec("echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three");
    let mut io = Capture::default();
    let status = exec.run(&spec, &mut io).unwrap();
    assert!(
        status.success(),
        "{}",
        String::from_utf8_lossy(status.tail())
    );
    assert_eq!(io.text(Stream::Stdout), "one\nthree\n");
    assert_eq!(io.text(Stream::Stderr), "two\n");
    assert!(io.position(Stream::Stdout, "one") < io.position(Stream::Stderr, "two"));
    assert!(io.position(Stream::Stderr, "two") < io.position(Stream::Stdout, "three"));
    assert_eq!(String::from_utf8_lossy(status.tail()), "one\ntwo\nthree\n");
}

fn reports_exit_codes(exec: &dyn Executor) {
    let env = Env::new();
    assert_eq!(run(exec, &env.spec("exit 3")).0, 3);
    assert_eq!(run(exec, &env.spec("true")).0, 0);
    let (code, io) = run(exec, &env.spec("/no/such/program"));
    assert_eq!(code, 127, "stderr: {}", io.text(Stream::Stderr));
}

fn honours_cwd_and_env(exec: &dyn Executor) {
    let env = Env::new();
    let mut spec = env.spec("pwd; echo \"$FOO\"; echo \"$PATH\"");
    spec.cwd = "/tmp".into();
    spec.env = vec!["FOO=bar baz".into()];
    let (code, io) = run(exec, &spec);
    assert_eq!(code, 0, "{}", io.text(Stream::Stderr));
    assert_eq!(
        io.text(Stream::Stdout),
        format!("/tmp\nbar baz\n{DEFAULT_PATH}\n")
    );
}

fn runs_as_user_with_supplementary_groups(exec: &dyn Executor) {
    let env = Env::new();
    let mut spec = env.spec("id -u; id -g; id -G; echo \"$HOME\"");
    spec.user = resolve_user(&env.rootfs, "app").unwrap();
    let (code, io) = run(exec, &spec);
    assert_eq!(code, 0, "{}", io.text(Stream::Stderr));
    let out = io.text(Stream::Stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["1000", "1000"]);
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort_unstable();
    assert_eq!(groups, ["10", "1000", "29"]);
    assert_eq!(
        lines[3], "/home/app",
        "HOME comes from the rootfs's /etc/passwd"
    );
}

fn sets_hostname_and_etc_files(exec: &dyn Executor) {
    let env = Env::new();
    let (code, io) = run(
        exec,
        &env.spec("hostname; cat /etc/hostname; cat /etc/hosts"),
    );
    assert_eq!(code, 0, "{}", io.text(Stream::Stderr));
    let out = io.text(Stream::Stdout);
    assert!(
        out.starts_with("buildkitsandbox\nbuildkitsandbox\n127.0.0.1\tlocalhost buildkitsandbox\n"),
        "{out}"
    );
    assert!(
        !env.rootfs.join("etc/hosts").exists(),
        "the /etc/hosts mountpoint stub was left in the rootfs"
    );
    assert!(
        !env.rootfs.join("proc").exists(),
        "the /proc mountpoint stub was left in the rootfs"
    );
}

fn etc_files_stay_out_of_the_upper_dir(exec: &dyn Executor) {
    let env = Env::new();
    let snap = OverlaySnapshotter
        .prepare(
            std::slice::from_ref(&env.rootfs),
            &env.tmp.path().join("step"),
        )
        .unwrap();
    let mut spec = env.spec("cat /etc/hosts /etc/resolv.conf > /dev/null && echo made > /made");
    spec.rootfs = snap.rootfs().to_path_buf();
    let (code, io) = run(exec, &spec);
    assert_eq!(code, 0, "{}", io.text(Stream::Stderr));
    let upper = snap.finish().unwrap();
    let names: Vec<String> = fs::read_dir(&upper)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert_eq!(
        names,
        ["made"],
        "upper dir holds more than the step's own change"
    );
}

fn network_none_has_only_loopback(exec: &dyn Executor) {
    let env = Env::new();
    let mut spec = env.spec("ls /sys/class/net");
    spec.network = Network::None;
    let (code, io) = run(exec, &spec);
    assert_eq!(code, 0, "{}", io.text(Stream::Stderr));
    assert_eq!(
        io.text(Stream::Stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["lo"]
    );
}

fn network_host_sees_host_interfaces(exec: &dyn Executor) {
    let env = Env::new();
    let mut host: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    host.sort();
    let (code, io) = run(exec, &env.spec("ls /sys/class/net"));
    assert_eq!(code, 0, "{}", io.text(Stream::Stderr));
    assert_eq!(
        io.text(Stream::Stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        host
    );
}

fn has_its_own_pid_namespace(exec: &dyn Executor) {
    let env = Env::new();
    // The glob is expanded by the shell itself, before it forks anything.
    let (code, io) = run(exec, &env.spec("echo $$; echo /proc/[0-9]*"));
    assert_eq!(code, 0, "{}", io.text(Stream::Stderr));
    assert_eq!(
        io.text(Stream::Stdout),
        "1\n/proc/1\n",
        "the shell is pid 1 and alone"
    );
}

fn bind_and_tmpfs_mounts(exec: &dyn Executor) {
    let env = Env::new();
    let shared = env.tmp.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::write(shared.join("in"), "from host").unwrap();
    let mut spec =
        env.spec("cat /mnt/in && echo back > /mnt/out && touch /scratch/x && ls /scratch");
    spec.mounts = vec![
        MountSpec::Bind {
            source: shared.clone(),
            target: "/mnt".into(),
            readonly: false,
        },
        MountSpec::Tmpfs {
            target: "/scratch".into(),
        },
    ];
    let (code, io) = run(exec, &spec);
    assert_eq!(code, 0, "{}", io.text(Stream::Stderr));
    assert_eq!(io.text(Stream::Stdout), "from hostx\n");
    assert_eq!(fs::read_to_string(shared.join("out")).unwrap(), "back\n");
    assert!(
        !env.rootfs.join("scratch").exists(),
        "the tmpfs mountpoint stub was left in the rootfs"
    );
}

fn readonly_rootfs_rejects_writes(exec: &dyn Executor) {
    let env = Env::new();
    let mut spec = env.spec("touch /x");
    spec.readonly_rootfs = true;
    let (code, io) = run(exec, &spec);
    assert_ne!(code, 0, "writing to a read-only rootfs succeeded");
    assert!(
        io.text(Stream::Stderr).contains("Read-only file system"),
        "{}",
        io.text(Stream::Stderr)
    );
    assert!(!env.rootfs.join("x").exists());
}

fn a_missing_executable_is_an_error(exec: &dyn Executor) {
    let env = Env::new();
    let spec = RunSpec::new(&env.rootfs, vec!["/no/such/program".into()]);
    let result = exec.run(&spec, &mut Capture::default());
    assert!(matches!(result, Err(Error::Runtime(_))), "{result:?}");
}

fn runs_steps_in_parallel(exec: &dyn Executor) {
    let (left, right) = (Env::new(), Env::new());
    std::thread::scope(|s| {
        let runs = [&left, &right]
            .map(|env| s.spawn(move || run(exec, &env.spec("sleep 0.5; echo done > /marker")).0));
        for handle in runs {
            assert_eq!(handle.join().unwrap(), 0);
        }
    });
    for env in [&left, &right] {
        assert_eq!(
            fs::read_to_string(env.rootfs.join("marker")).unwrap(),
            "done\n"
        );
    }
}

macro_rules! executor_tests {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            fn with_executor(test: fn(&dyn Executor)) {
                let state = tempfile::tempdir().unwrap();
                let make: fn(&Path) -> Box<dyn Executor> = $make;
                test(make(state.path()).as_ref());
                let leftovers: Vec<_> = fs::read_dir(state.path().join("bundles"))
                    .unwrap()
                    .collect();
                assert!(leftovers.is_empty(), "bundles left behind: {leftovers:?}");
            }

            #[test]
            fn streams_stdout_and_stderr_in_order() {
                with_executor(super::streams_stdout_and_stderr_in_order);
            }
            #[test]
            fn reports_exit_codes() {
                with_executor(super::reports_exit_codes);
            }
            #[test]
            fn honours_cwd_and_env() {
                with_executor(super::honours_cwd_and_env);
            }
            #[test]
            fn runs_as_user_with_supplementary_groups() {
                with_executor(super::runs_as_user_with_supplementary_groups);
            }
            #[test]
            fn sets_hostname_and_etc_files() {
                with_executor(super::sets_hostname_and_etc_files);
            }
            #[test]
            fn etc_files_stay_out_of_the_upper_dir() {
                with_executor(super::etc_files_stay_out_of_the_upper_dir);
            }
            #[test]
            fn network_none_has_only_loopback() {
                with_executor(super::network_none_has_only_loopback);
            }
            #[test]
            fn network_host_sees_host_interfaces() {
                with_executor(super::network_host_sees_host_interfaces);
            }
            #[test]
            fn has_its_own_pid_namespace() {
                with_executor(super::has_its_own_pid_namespace);
            }
            #[test]
            fn bind_and_tmpfs_mounts() {
                with_executor(super::bind_and_tmpfs_mounts);
            }
            #[test]
            fn readonly_rootfs_rejects_writes() {
                with_executor(super::readonly_rootfs_rejects_writes);
            }
            #[test]
            fn a_missing_executable_is_an_error() {
                with_executor(super::a_missing_executable_is_an_error);
            }
            #[test]
            fn runs_steps_in_parallel() {
                with_executor(super::runs_steps_in_parallel);
            }
        }
    };
}

executor_tests!(runc, |state| Box::new(RuncExecutor::new(state)));
executor_tests!(libcontainer, |state| Box::new(
    LibcontainerExecutor::new(state).with_helper(env!("CARGO_BIN_EXE_kiln-executor-helper"))
));

#[test]
fn a_helper_that_does_not_report_is_an_error() {
    let env = Env::new();
    let state = tempfile::tempdir().unwrap();
    let exec = LibcontainerExecutor::new(state.path()).with_helper("/bin/true");
    let result = exec.run(&env.spec("true"), &mut Capture::default());
    assert!(matches!(result, Err(Error::HelperDied(_))), "{result:?}");
}
